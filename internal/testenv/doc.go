// Package testenv gives fmtconv's tests access to real, independent peers:
// an in-process OCI distribution registry (distribution/v3's own code),
// skopeo run in isolation from the machine's configuration, and a private
// containerd 1.6 daemon driven through ctr.
//
// Peers and fixtures follow one policy (see RequireTool and RequireFile):
// when something is missing, a test is skipped with a loud "PEER MISSING" or
// "FIXTURE MISSING" message on a developer machine, and fails when the
// environment variable CI is true, so that CI can never pass by skipping.
// scripts/setup-peers.sh installs the peers on Debian bookworm.
//
// Everything a helper starts is stopped, and every temporary directory is
// removed, in t.Cleanup.
package testenv

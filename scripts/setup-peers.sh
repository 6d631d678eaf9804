#!/usr/bin/env bash
# setup-peers.sh -- install the independent peers fmtconv's tests run against
# (Debian bookworm, as root). Idempotent: apt-get runs only if a peer binary
# is missing, and then installs only the packages that provide the missing
# binaries. Starts no daemons: tests start their own registry and containerd
# (internal/testenv).
#
# Called by `make test` before `go test`. Exit status:
#   0  every peer is present (or was installed);
#   1  apt-get failed (its output is printed), a peer is still missing after
#      the installation, or peers are missing and cannot be installed here
#      (not root, no apt-get) while CI=true.
# Outside CI, a machine that cannot install the peers gets a loud warning and
# exit status 0: the tests then skip with "PEER MISSING: ...".
set -euo pipefail

# binary -> Debian package providing it
declare -A PACKAGE_OF=(
  [skopeo]=skopeo
  [podman]=podman
  [buildah]=buildah
  [containerd]=containerd
  [ctr]=containerd
  [ctr-remote]=stargz-snapshotter
  [mkfs.erofs]=erofs-utils
  [fsck.erofs]=erofs-utils
  [dump.erofs]=erofs-utils
  [umoci]=umoci
  [pigz]=pigz
  [zstd]=zstd
  [time]=time
  [docker-registry]=docker-registry
  [curl]=curl
  [mount]=mount
)

log() { printf 'setup-peers: %s\n' "$*" >&2; }

is_ci() {
  case "${CI:-}" in
    1 | t | T | true | TRUE | True) return 0 ;;
    *) return 1 ;;
  esac
}

# cannot_install REASON: fail in CI, warn loudly elsewhere.
cannot_install() {
  log "!!! PEERS MISSING: ${missing_bins[*]} (packages: ${missing_pkgs[*]})"
  log "!!! $1"
  log "!!! install them with: apt-get install -y ${missing_pkgs[*]}"
  if is_ci; then
    log "!!! CI=true: failing"
    exit 1
  fi
  log "!!! tests that need them will be SKIPPED (PEER MISSING)"
  exit 0
}

# Also look in the sbin directories, which a non-root PATH may lack.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing_bins=()
missing_pkgs=()
for bin in $(printf '%s\n' "${!PACKAGE_OF[@]}" | sort); do
  if ! command -v "$bin" >/dev/null 2>&1; then
    missing_bins+=("$bin")
    pkg=${PACKAGE_OF[$bin]}
    case " ${missing_pkgs[*]} " in
      *" $pkg "*) ;;
      *) missing_pkgs+=("$pkg") ;;
    esac
  fi
done

if [ ${#missing_bins[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  cannot_install "not running as root (uid $(id -u)); re-run: sudo $0"
fi
if ! command -v apt-get >/dev/null 2>&1; then
  cannot_install "apt-get not found: this script supports Debian bookworm only"
fi

log "installing ${missing_pkgs[*]} (missing: ${missing_bins[*]})"
export DEBIAN_FRONTEND=noninteractive
apt_log=$(mktemp "${TMPDIR:-/tmp}/setup-peers-apt.XXXXXX")
trap 'rm -f "$apt_log"' EXIT

# run_apt ARGS...: apt-get quietly; on failure print its output and exit 1.
run_apt() {
  if ! apt-get -q -o DPkg::Lock::Timeout=300 "$@" >"$apt_log" 2>&1; then
    log "!!! apt-get $* FAILED; its output:"
    cat "$apt_log" >&2
    exit 1
  fi
}

run_apt update
run_apt install -y "${missing_pkgs[@]}"

still_missing=()
for bin in "${missing_bins[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || still_missing+=("$bin")
done
if [ ${#still_missing[@]} -ne 0 ]; then
  log "!!! still missing after apt-get install: ${still_missing[*]}"
  exit 1
fi
log "peers installed: ${missing_pkgs[*]}"

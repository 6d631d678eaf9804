// Package check holds what every verifier reports: findings with stable check ids. It is a leaf
// package so that format packages (zstdchunked, nydus, ...) and package verify share one type.
package check

import (
	"fmt"

	digest "github.com/opencontainers/go-digest"
)

// Severity of a finding. Any Error makes an image invalid.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Finding is one problem found, with a stable check id ("area.name", documented in the README).
type Finding struct {
	Check    string        `json:"check"`
	Severity Severity      `json:"severity"`
	Message  string        `json:"message"`
	Manifest digest.Digest `json:"manifest,omitempty"`
	Layer    *int          `json:"layer,omitempty"`
	Blob     digest.Digest `json:"blob,omitempty"`
	Path     string        `json:"path,omitempty"`
}

// Errorf builds an error finding.
func Errorf(id, format string, a ...any) Finding {
	return Finding{Check: id, Severity: Error, Message: fmt.Sprintf(format, a...)}
}

// Warnf builds a warning finding.
func Warnf(id, format string, a ...any) Finding {
	return Finding{Check: id, Severity: Warning, Message: fmt.Sprintf(format, a...)}
}

// At returns f with a path.
func (f Finding) At(path string) Finding { f.Path = path; return f }

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == Error {
			return true
		}
	}
	return false
}

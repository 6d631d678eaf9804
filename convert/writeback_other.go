//go:build !linux

package convert

import "os"

// writebackWriter is the file itself where sync_file_range does not exist.
type writebackWriter struct{ *os.File }

func newWritebackWriter(f *os.File) *writebackWriter { return &writebackWriter{f} }

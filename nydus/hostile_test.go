package nydus

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
)

// Hostile sizes and counts give a FormatError with the right check id, quickly
// and without allocating anything near the claimed sizes.
func TestHostileBootstraps(t *testing.T) {
	boot := readFixture(t, fxBoot22)
	blob := readFixture(t, fxBlobBe7d)
	const rootInode, libInode = 12288, 12448
	cases := []struct {
		name string
		fn   func(c []byte)
		want string
	}{
		{"directory of 2^40 bytes", func(c []byte) { le.PutUint64(c[rootInode+8:], 1<<40) }, CheckInodeRange},
		{"file of 2^62 bytes", func(c []byte) { le.PutUint64(c[libInode+8:], 1<<62) }, CheckInodeRange},
		{"chunk table of 2^60 bytes", func(c []byte) { le.PutUint64(c[SuperBlockExtOffset+32:], 80<<54) }, CheckBootstrap},
		{"blob table of 4 GiB", func(c []byte) { le.PutUint32(c[SuperBlockExtOffset+16:], 0xffffff00) }, CheckBootstrap},
		{"255 devices over the blob table", func(c []byte) { le.PutUint16(c[SuperBlockOffset+86:], 255) }, CheckBootstrap},
		{"256 devices", func(c []byte) { le.PutUint16(c[SuperBlockOffset+86:], 256) }, CheckBlobTable},
		{"symlink of 1 MiB", func(c []byte) {
			le.PutUint16(c[libInode:], FormatExtended|LayoutFlatInline<<1)
			le.PutUint16(c[libInode+4:], ModeSymlink|0o777)
			le.PutUint64(c[libInode+8:], 1<<20)
		}, CheckInode},
		{"xattr count 65535", func(c []byte) { le.PutUint16(c[libInode+2:], 0xffff) }, CheckInodeRange},
		{"root nid beyond the file", func(c []byte) { le.PutUint16(c[SuperBlockOffset+14:], 0xffff) }, CheckInodeRange},
		{"meta block beyond the file", func(c []byte) { le.PutUint32(c[SuperBlockOffset+40:], 1<<30) }, CheckBootstrap},
		{"dirent count 0", func(c []byte) { le.PutUint16(c[rootDirents+8:], 0) }, CheckDirent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := corrupt(boot, c.fn)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			_, err := Open(bytes.NewReader(b), int64(len(b)), anyResolver(blob))
			runtime.ReadMemStats(&ms1)
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Check != c.want {
				t.Fatalf("err = %v, want a %s FormatError", err, c.want)
			}
			if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 4<<20 {
				t.Errorf("allocated %d bytes", alloc)
			}
			t.Logf("%v", err)
		})
	}
}

// A blob claiming absurd chunk sizes is refused before any large allocation.
func TestHostileChunks(t *testing.T) {
	boot := readFixture(t, fxBoot22)
	blob := readFixture(t, fxBlobBe7d)
	// ci entry 0: uncompressed size 16 MiB (V1: (usize−1) low 20 bits at 44, high 4 at 8)
	b := corrupt(blob, func(c []byte) {
		u := le.Uint64(c[be7dCI:])
		u |= 0xfffff<<44 | 0xf00
		le.PutUint64(c[be7dCI:], u)
	})
	f, err := Open(bytes.NewReader(boot), int64(len(boot)), anyResolver(b))
	if err != nil {
		t.Fatal(err)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	_, err = f.ReadFile("lib.rs")
	runtime.ReadMemStats(&ms1)
	var fe *FormatError
	if !errors.As(err, &fe) || fe.Check != CheckChunkInfo {
		t.Fatalf("err = %v", err)
	}
	if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 1<<20 {
		t.Errorf("allocated %d bytes", alloc)
	}
	fs := Verify(bytes.NewReader(boot), int64(len(boot)), anyResolver(b), nil)
	if !hasError(fs, CheckChunkInfo) || !hasError(fs, CheckChunkDigest) {
		t.Fatalf("Verify: %s", dumpFindings(fs))
	}
}

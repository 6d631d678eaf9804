package zstdchunked

import (
	"archive/tar"
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/fmtconv/fmtconv/check"
	"github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/storage"
)

// smallRich is a small tar with every entry type, a multi-chunk file with a
// zero run, xattrs and nanosecond times.
func smallRich(t testing.TB) []byte {
	r := rand.New(rand.NewSource(99))
	big := cat(splitPrefix(r), randBytes(r, 3000), zeros(4096), splitPrefix(r), randBytes(r, 500))
	return buildTar(t, []tarEntry{
		{hdrDir("d/"), nil},
		{hdrFile("d/big", int64(len(big))), big},
		{hdrFile("d/a", 300), textBytes(r, 300)},
		{hdrFile("d/empty", 0), nil},
		{hdrLink("d/sym", "a"), nil},
		{&tar.Header{Typeflag: tar.TypeLink, Name: "d/hard", Linkname: "d/a", ModTime: epoch, Mode: 0o644}, nil},
		{&tar.Header{Typeflag: tar.TypeChar, Name: "d/null", Devmajor: 1, Devminor: 3, ModTime: epoch, Mode: 0o666}, nil},
		{&tar.Header{Typeflag: tar.TypeFifo, Name: "d/fifo", ModTime: epoch, Mode: 0o600}, nil},
		{&tar.Header{Typeflag: tar.TypeReg, Name: "d/x", Size: 20, Format: tar.FormatPAX, Mode: 0o640, Uid: 7, Gid: 8,
			ModTime: time.Date(2023, 1, 2, 3, 4, 5, 123456789, time.UTC), AccessTime: epoch,
			PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}}, textBytes(r, 20)},
		{hdrFile("d/z", 5), []byte("zzzzz")},
	}, 0)
}

// editTOC makes one random edit that changes what some reader would see;
// "" when the drawn edit does not apply to the drawn entry.
func editTOC(r *rand.Rand, toc *TOC, iter int) (what string, i int) {
	var offsets []int64
	for _, e := range toc.Entries {
		if e.Offset > 0 {
			offsets = append(offsets, e.Offset)
		}
		if e.EndOffset > 0 {
			offsets = append(offsets, e.EndOffset)
		}
	}
	other := func(v int64) int64 {
		for {
			if o := offsets[r.Intn(len(offsets))]; o != v {
				return o
			}
		}
	}
	es := toc.Entries
	i = r.Intn(len(es))
	e := &es[i]
	if e.Type == TypeChunk || (e.Type == TypeReg && e.Size > 0 && r.Intn(2) == 0) {
		switch r.Intn(7) {
		case 0:
			e.Offset = other(e.Offset)
			return "offset", i
		case 1:
			d := int64(1 + r.Intn(50))
			if r.Intn(2) == 0 {
				d = -d
			}
			e.Offset += d
			return "offset±", i
		case 2:
			if e.ChunkSize == 0 {
				return "", i
			}
			e.ChunkSize += int64(1 + r.Intn(3))
			return "chunkSize", i
		case 3:
			if e.Type != TypeChunk {
				return "", i
			}
			e.ChunkOffset++
			return "chunkOffset", i
		case 4:
			if e.ChunkDigest == "" {
				return "", i
			}
			e.ChunkDigest = digest.FromString(fmt.Sprint(iter)).String()
			return "chunkDigest", i
		case 5:
			if e.ChunkDigest == "" || e.ChunkType == ChunkTypeZeros || toc.Shape == ShapeEStargz {
				return "", i // zeros marked as data: the same content for every reader
			}
			e.ChunkType = ChunkTypeZeros
			return "chunkType", i
		case 6:
			if e.EndOffset == 0 {
				return "", i
			}
			e.EndOffset = other(e.EndOffset)
			return "endOffset", i
		}
	}
	switch r.Intn(12) {
	case 0:
		e.Name += "x"
		return "name", i
	case 1:
		types := []string{TypeReg, TypeLink, TypeChar, TypeBlock, TypeDir, TypeFifo, TypeSymlink}
		nt := types[r.Intn(len(types))]
		if nt == e.Type || (e.Type == TypeReg && e.Size > 0) {
			return "", i
		}
		e.Type = nt
		return "type", i
	case 2:
		e.Linkname += "y"
		return "linkName", i
	case 3:
		e.Mode ^= 1 << r.Intn(12)
		return "mode", i
	case 4:
		e.Size++
		return "size", i
	case 5:
		e.UID++
		return "uid", i
	case 6:
		e.GID++
		return "gid", i
	case 7:
		if e.ModTime == nil || r.Intn(3) == 0 {
			tm := epoch.Add(time.Duration(1+r.Intn(1000)) * time.Second)
			e.ModTime = &tm
		} else {
			tm := e.ModTime.Add(time.Nanosecond)
			e.ModTime = &tm
		}
		return "modtime", i
	case 8:
		tm := epoch.Add(time.Hour)
		e.ChangeTime = &tm
		return "changetime", i
	case 9:
		e.Devminor++
		return "devminor", i
	case 10:
		x := map[string]string{"user.new": "dg=="}
		for k, v := range e.Xattrs {
			x[k] = v
		}
		e.Xattrs = x
		return "xattrs", i
	case 11:
		if e.Type != TypeReg {
			return "", i
		}
		e.Digest = digest.FromString(fmt.Sprint("d", iter)).String()
		return "digest", i
	}
	return "", i
}

// TestVerifyCatchesEveryTOCEdit makes random edits to a TOC that change
// what some reader would see, recomputes every digest, position and the
// footer, and requires at least one error finding for each, in every
// dialect.
func TestVerifyCatchesEveryTOCEdit(t *testing.T) {
	in := smallRich(t)
	blob, res := ourEncode(t, in, 3)
	lb, lann, _ := legacyBlob(t, in)
	sb, sann, sdiff := stargzBlob(t, in)
	dialects := []struct {
		name     string
		diffID   digest.Digest
		blob     []byte
		ann      map[string]string
		assemble func(func(*TOC)) ([]byte, map[string]string)
	}{
		{"containers", digest.FromBytes(in), blob, res.Annotations, func(edit func(*TOC)) ([]byte, map[string]string) {
			c := splitContainers(t, blob, res.Annotations)
			edit(c.toc)
			return c.assemble(t, assembleOpts{})
		}},
		{"legacy", digest.FromBytes(in), lb, lann, func(edit func(*TOC)) ([]byte, map[string]string) {
			return reassembleLegacy(t, lb, lann, edit)
		}},
		{"stargz", sdiff, sb, sann, func(edit func(*TOC)) ([]byte, map[string]string) {
			return reassembleStargz(t, sb, sann, edit)
		}},
	}
	n := 300
	if testing.Short() {
		n = 50
	}
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			if _, fs := verifyBlob(t, d.blob, d.ann, VerifyOptions{DiffID: d.diffID}); len(fs) != 0 {
				t.Fatalf("base blob:%s", dumpFindings(fs))
			}
			r := rand.New(rand.NewSource(5))
			for iter, done := 0, 0; done < n; iter++ {
				var what, name, typ string
				var idx int
				b, a := d.assemble(func(toc *TOC) {
					what, idx = editTOC(r, toc, iter)
					name, typ = toc.Entries[idx].Name, toc.Entries[idx].Type
				})
				if what == "" {
					continue
				}
				done++
				_, fs := verifyBlob(t, b, a, VerifyOptions{DiffID: d.diffID})
				if !check.HasErrors(fs) {
					t.Fatalf("edit %d: %s of entry #%d %q (%s) not detected:%s", iter, what, idx, name, typ, dumpFindings(fs))
				}
			}
		})
	}
}

// TestVerifyDeterministic: the same blob gives the same findings in the
// same order, although the two views run concurrently.
func TestVerifyDeterministic(t *testing.T) {
	in := smallRich(t)
	blob, res := ourEncode(t, in, 3)
	c := splitContainers(t, blob, res.Annotations)
	for i := range c.toc.Entries {
		c.toc.Entries[i].UID += i % 3 // findings from both views and the tar-split
	}
	b, a := c.assemble(t, assembleOpts{})
	_, first := verifyBlob(t, b, a, VerifyOptions{DiffID: digest.FromString("x")})
	if len(first) < 5 {
		t.Fatalf("only %d findings", len(first))
	}
	for k := 0; k < 10; k++ {
		_, fs := verifyBlob(t, b, a, VerifyOptions{DiffID: digest.FromString("x")})
		if dumpFindings(fs) != dumpFindings(first) {
			t.Fatalf("run %d differs:%s\nvs%s", k, dumpFindings(fs), dumpFindings(first))
		}
	}
}

// TestVerifyCatchesEveryTarSplitEdit: random edits of the tar-split, its
// digest in the TOC and everything else recomputed, are errors.
func TestVerifyCatchesEveryTarSplitEdit(t *testing.T) {
	in := smallRich(t)
	blob, res := ourEncode(t, in, 3)
	diffID := digest.FromBytes(in)
	r := rand.New(rand.NewSource(11))
	n := 300
	if testing.Short() {
		n = 50
	}
	for iter := 0; iter < n; iter++ {
		c := splitContainers(t, blob, res.Annotations)
		es := tarSplitEntries(t, c.tarSplit)
		k := r.Intn(len(es))
		e := &es[k]
		var what string
		switch r.Intn(5) {
		case 0:
			if e.Type != storage.SegmentType || len(e.Payload) == 0 {
				continue
			}
			p := slices.Clone(e.Payload)
			p[r.Intn(len(p))] ^= byte(1 + r.Intn(255))
			what, e.Payload = "segment byte", p
		case 1:
			if e.Type != storage.FileType {
				continue
			}
			what, e.Size = "file size", e.Size+int64(1+r.Intn(3))
		case 2:
			if e.Type != storage.FileType || e.Size == 0 {
				continue
			}
			p := slices.Clone(e.Payload)
			p[r.Intn(len(p))] ^= 1
			what, e.Payload = "crc", p
		case 3:
			if e.Type == storage.FileType && e.Size == 0 {
				continue // never read: the headers are in the segments
			}
			what, es = "drop entry", slices.Delete(es, k, k+1)
		case 4:
			if e.Type != storage.SegmentType {
				continue
			}
			what, es = "duplicate segment", slices.Insert(es, k, *e)
		}
		c.tarSplit = packTarSplit(t, es)
		b, a := c.assemble(t, assembleOpts{})
		_, fs := verifyBlob(t, b, a, VerifyOptions{DiffID: diffID})
		if !check.HasErrors(fs) {
			t.Fatalf("edit %d: %s of tar-split entry %d not detected:%s", iter, what, k, dumpFindings(fs))
		}
	}
}

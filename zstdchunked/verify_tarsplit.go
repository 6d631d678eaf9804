package zstdchunked

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/archive/tar"
	"github.com/vbatts/tar-split/tar/storage"
)

// maxTarSplitLine bounds one JSON line of a tar-split (a legitimate line
// holds at most one entry's headers, which archive/tar bounds to about
// 1 MiB per extended header, base64-encoded).
const maxTarSplitLine = 64 << 20

// locateTarSplit finds the tar-split (containers schema) by its annotation
// or the 64-byte footer and verifies its compressed digest against
// TOC.tarSplitDigest (or the deprecated annotation).
func (v *verifier) locateTarSplit() error {
	if v.stargzSem {
		return nil
	}
	t := v.toc
	var pos *position
	from := ""
	switch {
	case v.annTSPos != nil:
		pos, from = v.annTSPos, "the "+AnnotationTarSplitPosition+" annotation"
	case !v.hasTSPosKey && v.footer != nil && v.footer.Size == FooterSize && v.footer.TarSplitOffset != 0:
		f := v.footer
		pos = &position{offset: f.TarSplitOffset, length: f.TarSplitLength, uncompressed: f.TarSplitUncompressedLength}
		from = "the footer"
	}
	if pos != nil && pos.offset >= SkippableFrameHeaderSize && pos.offset <= uint64(v.size) {
		v.tsClaimed = int64(pos.offset) - SkippableFrameHeaderSize
	}
	want, wantFrom := t.TarSplitDigest, "the TOC's tarSplitDigest"
	if want == "" && v.annTSSum != "" {
		want, wantFrom = v.annTSSum, "the deprecated "+AnnotationTarSplitChecksum+" annotation"
	}
	if pos == nil {
		if t.TarSplitDigest != "" && v.annDialect != DialectContainers {
			v.f.errorf(CheckTarSplit, "the TOC names a tar-split digest but nothing locates the tar-split")
		}
		return nil
	}
	if pos.length > uint64(v.lim.MaxTarSplitSize) || pos.uncompressed > uint64(v.lim.MaxTarSplitSize) {
		v.f.errorf(CheckLimitTarSplitSize, "the tar-split (%s) is %d bytes compressed, %d uncompressed: more than the limit of %d", from, pos.length, pos.uncompressed, v.lim.MaxTarSplitSize)
		return nil
	}
	msg, err := v.checkSkippable(*pos)
	if err != nil {
		return err
	}
	if msg != "" {
		v.f.errorf(CheckTarSplit, "the tar-split position from %s: %s", from, msg)
		return nil
	}
	v.tsPos = pos
	if want == "" {
		// c/storage >= 1.55 ignores a tar-split nothing authenticates.
		return nil
	}
	if !want.Algorithm().Available() {
		v.f.errorf(CheckTarSplitDigest, "%s %s uses an unsupported algorithm", wantFrom, want)
		return nil
	}
	d := want.Algorithm().Digester()
	if _, err := io.Copy(d.Hash(), io.NewSectionReader(v.ra, int64(pos.offset), int64(pos.length))); err != nil {
		return fmt.Errorf("reading the tar-split: %w", err)
	}
	if got := d.Digest(); got != want {
		v.f.errorf(CheckTarSplitDigest, "%s is %s, the compressed tar-split's digest is %s; it is not used", wantFrom, want, got)
		return nil
	}
	v.tsTrusted = true
	v.info.HasTarSplit = true
	return nil
}

// countingReader counts what passes and fails lines longer than maxLine.
type countingReader struct {
	r       io.Reader
	n       int64
	line    int64
	maxLine int64
	err     error // the first non-EOF error of r
}

var errLineTooLong = errors.New("tar-split line too long")

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.maxLine > 0 {
		for _, b := range p[:n] {
			if b == '\n' {
				c.line = 0
			} else if c.line++; c.line > c.maxLine {
				return n, errLineTooLong
			}
		}
	}
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

var errStopIter = errors.New("stop")

// iterTarSplit streams the verified tar-split's entries to handle. Problems
// of the tar-split are reported (unless quiet) and make it return false;
// the error is for I/O and ctx.
func (v *verifier) iterTarSplit(quiet bool, handle func(*storage.Entry) error) (bool, error) {
	pos := v.tsPos
	report := func(id, format string, a ...any) (bool, error) {
		if err := v.ra.failed(); err != nil {
			return false, err
		}
		if !quiet {
			v.f.errorf(id, format, a...)
		}
		return false, nil
	}
	dec, err := getDecoder(bufio.NewReaderSize(io.NewSectionReader(v.ra, int64(pos.offset), int64(pos.length)), 256<<10))
	if err != nil {
		return report(CheckTarSplit, "the tar-split frame does not decompress: %v", err)
	}
	defer putDecoder(dec)
	cr := &countingReader{r: io.LimitReader(dec, int64(pos.uncompressed)+1), maxLine: maxTarSplitLine}
	up := storage.NewJSONUnpacker(cr)
	for i := 0; ; i++ {
		if i%1024 == 0 {
			if err := v.ctx.Err(); err != nil {
				return false, err
			}
		}
		e, err := up.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			switch {
			case uint64(cr.n) > pos.uncompressed:
				return report(CheckLimitDecompressedSize, "the tar-split decompresses to more than the %d bytes claimed", pos.uncompressed)
			case cr.err != nil:
				return report(CheckTarSplit, "the tar-split frame does not decompress: %v", cr.err)
			case errors.Is(err, errLineTooLong):
				return report(CheckTarSplit, "the tar-split has a line longer than %d bytes", maxTarSplitLine)
			}
			return report(CheckTarSplit, "the tar-split is not valid tar-split JSON (entry %d): %v", i, err)
		}
		if err := handle(e); err != nil {
			if err == errStopIter {
				return false, nil
			}
			return false, err
		}
	}
	if _, err := io.Copy(io.Discard, cr); err != nil && cr.err == nil {
		return report(CheckTarSplit, "the tar-split has trailing data: %v", err)
	}
	switch {
	case uint64(cr.n) > pos.uncompressed:
		return report(CheckLimitDecompressedSize, "the tar-split decompresses to more than the %d bytes claimed", pos.uncompressed)
	case cr.err != nil:
		return report(CheckTarSplit, "the tar-split frame does not decompress: %v", cr.err)
	case uint64(cr.n) != pos.uncompressed:
		return report(CheckTarSplit, "the tar-split decompresses to %d bytes, %d claimed", cr.n, pos.uncompressed)
	}
	return true, nil
}

// tarSplitAgainstTOC is c/storage's ensureTOCMatchesTarSplit: the tar-split's
// headers and the TOC's non-chunk entries must have exactly the same names
// and equal attributes. It also sums the length of the stream the tar-split
// describes.
func (v *verifier) tarSplitAgainstTOC() error {
	es := v.toc.Entries
	seen := make([]bool, len(es)) // by TOC index; duplicates are reported as CheckTOC
	clean := !v.f.hasError(CheckTOC)
	var pad, total int64
	n := 0
	ok, err := v.iterTarSplit(false, func(e *storage.Entry) error {
		switch e.Type {
		case storage.FileType:
			if e.Size < 0 {
				v.f.errorf(CheckTarSplit, "tar-split file entry %q has a negative size", e.GetName())
				return errStopIter
			}
			total = satAdd(total, e.Size)
		case storage.SegmentType:
			total = satAdd(total, int64(len(e.Payload)))
			payload := e.Payload
			if int64(len(payload)) < pad {
				v.f.errorf(CheckTarSplit, "a tar-split segment has %d bytes, the previous file's padding needs %d", len(payload), pad)
				return errStopIter
			}
			payload, pad = payload[pad:], 0
			tr := tar.NewReader(bytes.NewReader(payload))
			hdr, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				v.f.errorf(CheckTarSplit, "a tar-split segment does not hold a readable tar header: %v", err)
				return errStopIter
			}
			n++
			pad = tr.ExpectedPadding()
			i32, found := v.byName[hdr.Name]
			i := int(i32)
			if !found || seen[i] {
				v.f.errorAt(hdr.Name, CheckViewMismatch, "the tar-split has an entry %q the TOC lacks (c/storage fails: TOC and tar-split inconsistent)", hdr.Name)
				clean = false
				return nil
			}
			seen[i] = true
			if diffs := diffContainers(&es[i], hdr); len(diffs) > 0 {
				v.f.errorAt(hdr.Name, CheckViewMismatch, "tar-split and TOC disagree on %q (c/storage fails): %s", hdr.Name, strings.Join(diffs, "; "))
				clean = false
			}
		default:
			v.f.errorf(CheckTarSplit, "unexpected tar-split entry type %d", e.Type)
			return errStopIter
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !ok {
		return nil
	}
	var missing []string
	nMissing := 0
	for i := range es {
		if es[i].Type != TypeChunk && !seen[i] && v.byName[es[i].Name] == int32(i) {
			if nMissing++; len(missing) < 5 {
				missing = append(missing, es[i].Name)
			}
		}
	}
	if nMissing > 0 {
		v.f.errorf(CheckViewMismatch, "%d TOC entries are not in the tar-split (c/storage fails), e.g. %q", nMissing, missing)
		clean = false
	}
	v.tsTotal = total
	v.tsConsistent = clean
	return nil
}

// ---- attribute comparison ----

var tocTypeOfTar = map[byte]string{
	tar.TypeReg:     TypeReg,
	tar.TypeLink:    TypeLink,
	tar.TypeChar:    TypeChar,
	tar.TypeBlock:   TypeBlock,
	tar.TypeDir:     TypeDir,
	tar.TypeFifo:    TypeFifo,
	tar.TypeSymlink: TypeSymlink,
}

func typeName(flag byte) string {
	if flag >= ' ' && flag < 0x7f {
		return fmt.Sprintf("%q", flag)
	}
	return fmt.Sprintf("%d", flag)
}

// diffContainers compares a TOC entry with a tar header the way c/storage's
// ensureFileMetadataAttributesMatch does with minimal.NewFileMetadata(hdr).
func diffContainers(e *FileMetadata, hdr *tar.Header) []string {
	var d []string
	typ, ok := tocTypeOfTar[hdr.Typeflag]
	if !ok {
		return []string{fmt.Sprintf("tar type %s has no TOC type (TOC: %q)", typeName(hdr.Typeflag), e.Type)}
	}
	if e.Type != typ {
		d = append(d, fmt.Sprintf("type: TOC %q, tar %q", e.Type, typ))
	}
	if e.Name != hdr.Name {
		d = append(d, fmt.Sprintf("name: TOC %q, tar %q", e.Name, hdr.Name))
	}
	if e.Linkname != hdr.Linkname {
		d = append(d, fmt.Sprintf("link target: TOC %q, tar %q", e.Linkname, hdr.Linkname))
	}
	if e.Mode != hdr.Mode {
		d = append(d, fmt.Sprintf("mode: TOC %#o, tar %#o", e.Mode, hdr.Mode))
	}
	if e.Size != hdr.Size {
		d = append(d, fmt.Sprintf("size: TOC %d, tar %d", e.Size, hdr.Size))
	}
	if e.UID != hdr.Uid || e.GID != hdr.Gid {
		d = append(d, fmt.Sprintf("uid/gid: TOC %d/%d, tar %d/%d", e.UID, e.GID, hdr.Uid, hdr.Gid))
	}
	for _, t := range []struct {
		what string
		toc  *time.Time
		tar  time.Time
	}{{"mtime", e.ModTime, hdr.ModTime}, {"atime", e.AccessTime, hdr.AccessTime}, {"ctime", e.ChangeTime, hdr.ChangeTime}} {
		if s := diffTime(t.toc, t.tar); s != "" {
			d = append(d, t.what+": "+s)
		}
	}
	if e.Devmajor != hdr.Devmajor || e.Devminor != hdr.Devminor {
		d = append(d, fmt.Sprintf("device: TOC %d:%d, tar %d:%d", e.Devmajor, e.Devminor, hdr.Devmajor, hdr.Devminor))
	}
	if s := diffXattrs(e.Xattrs, hdr); s != "" {
		d = append(d, s)
	}
	return d
}

// diffEstargz compares an eStargz JTOC entry with the tar header it was
// made from by estargz's Writer: link names only for links, size only for
// regular files, device numbers only for devices, mtime rounded to seconds
// (absent for a zero or Unix-0 time), no atime/ctime.
func diffEstargz(e *FileMetadata, hdr *tar.Header) []string {
	var d []string
	typ, ok := tocTypeOfTar[hdr.Typeflag]
	if !ok {
		return []string{fmt.Sprintf("tar type %s has no TOC type (TOC: %q)", typeName(hdr.Typeflag), e.Type)}
	}
	if e.Type != typ {
		d = append(d, fmt.Sprintf("type: TOC %q, tar %q", e.Type, typ))
	}
	if e.Name != hdr.Name {
		d = append(d, fmt.Sprintf("name: TOC %q, tar %q", e.Name, hdr.Name))
	}
	link := ""
	if typ == TypeLink || typ == TypeSymlink {
		link = hdr.Linkname
	}
	if e.Linkname != link {
		d = append(d, fmt.Sprintf("link target: TOC %q, tar %q", e.Linkname, link))
	}
	if e.Mode != hdr.Mode {
		d = append(d, fmt.Sprintf("mode: TOC %#o, tar %#o", e.Mode, hdr.Mode))
	}
	size := int64(0)
	if typ == TypeReg {
		size = hdr.Size
	}
	if e.Size != size {
		d = append(d, fmt.Sprintf("size: TOC %d, tar %d", e.Size, size))
	}
	if e.UID != hdr.Uid || e.GID != hdr.Gid {
		d = append(d, fmt.Sprintf("uid/gid: TOC %d/%d, tar %d/%d", e.UID, e.GID, hdr.Uid, hdr.Gid))
	}
	mt := hdr.ModTime
	if !mt.IsZero() && mt.Unix() != 0 {
		mt = mt.UTC().Round(time.Second)
	}
	if s := diffTime(e.ModTime, mt); s != "" {
		d = append(d, "mtime: "+s)
	}
	var maj, mnr int64
	if typ == TypeChar || typ == TypeBlock {
		maj, mnr = hdr.Devmajor, hdr.Devminor
	}
	if e.Devmajor != maj || e.Devminor != mnr {
		d = append(d, fmt.Sprintf("device: TOC %d:%d, tar %d:%d", e.Devmajor, e.Devminor, maj, mnr))
	}
	if s := diffXattrs(e.Xattrs, hdr); s != "" {
		d = append(d, s)
	}
	return d
}

// diffTime is c/storage's ensureTimePointersMatch: nil, the zero time and
// Unix 0 are the same.
func diffTime(toc *time.Time, tarTime time.Time) string {
	norm := func(t *time.Time) *time.Time {
		if t == nil || t.IsZero() || t.Equal(time.Unix(0, 0)) {
			return nil
		}
		return t
	}
	a, b := norm(toc), norm(&tarTime)
	switch {
	case a == nil && b == nil:
		return ""
	case a == nil:
		return fmt.Sprintf("TOC none, tar %s", b.Format(time.RFC3339Nano))
	case b == nil:
		return fmt.Sprintf("TOC %s, tar none", a.Format(time.RFC3339Nano))
	case !a.Equal(*b):
		return fmt.Sprintf("TOC %s, tar %s", a.Format(time.RFC3339Nano), b.Format(time.RFC3339Nano))
	}
	return ""
}

func diffXattrs(tocX map[string]string, hdr *tar.Header) string {
	var tarX map[string]string
	for k, val := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxSchilyXattr); ok {
			if tarX == nil {
				tarX = map[string]string{}
			}
			tarX[name] = base64.StdEncoding.EncodeToString([]byte(val))
		}
	}
	if maps.Equal(tocX, tarX) {
		return ""
	}
	return fmt.Sprintf("xattrs: TOC %v, tar %v", slices.Sorted(maps.Keys(tocX)), slices.Sorted(maps.Keys(tarX)))
}

// digestOf returns the sha256 digest of a finished hash.
func digestOf(sum []byte) digest.Digest { return digest.NewDigestFromBytes(digest.SHA256, sum) }

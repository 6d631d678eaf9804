// Package tarcheck checks one layer's uncompressed tar stream for safety and
// consistency problems in a single streaming pass with bounded memory, and
// enforces resource limits on it. fmtconv verify runs it on every layer;
// convert can use it to refuse hostile layers.
//
// Scan reads the stream once. Problems in the layer are findings
// (check.Finding with the stable check ids of ids.go); Scan returns an error
// only when reading fails or the context ends. Parsing is done by Go's
// archive/tar, behind a counting reader of our own that gives every entry its
// stream offset, sees the raw header bytes (to report what archive/tar hides),
// bounds the bytes archive/tar may consume for the headers of one entry, and
// reads what follows the end-of-archive marker.
//
// Memory and time: Scan never reads entry data itself (archive/tar skips it
// in small buffered copies, and the holes of sparse files are not expanded)
// and allocates nothing from a size a header claims. The headers of one
// entry are held only up to about Limits.MaxPAXRecordsSize plus two names.
// The path table costs 35-70 bytes per entry whatever the name lengths
// (paths are kept as 128-bit hashes): about 65 MB at the default limit of
// one million entries. Result.Entries (only with Options.KeepEntries) and
// the findings (at most Limits.MaxFindings per check id) come on top.
package tarcheck

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fmtconv/fmtconv/check"
	digest "github.com/opencontainers/go-digest"
)

// Limits bound the resources one layer may make Scan use. A zero or negative
// field means its default (see DefaultLimits); MaxTotalSize 0 means
// unlimited. Hitting a limit gives an error finding with a "limit.*" check id
// and stops the scan at once, without reading further.
type Limits struct {
	// MaxEntries is the most entries (PAX global headers included) a layer
	// may have. Default 1,000,000.
	MaxEntries int
	// MaxNameLength is the longest name or link target, in bytes. Default
	// 4096.
	MaxNameLength int
	// MaxPAXRecordsSize is the most extended header data (PAX records,
	// summed over the 'x' headers before one entry, or of one 'g' header)
	// one entry may have. Default 1 MiB, which is also archive/tar's own
	// hard limit (per extended header, GNU long name or sparse map): larger
	// values act as 1 MiB.
	MaxPAXRecordsSize int64
	// MaxEntrySize is the most data one header may claim (the logical size
	// for sparse files). Default 64 GiB.
	MaxEntrySize int64
	// MaxTotalSize, when positive, is the most bytes the stream may have;
	// Scan reads at most one byte beyond it. Default 0: unlimited.
	MaxTotalSize int64
	// MaxFindings is the most findings kept per check id; the rest are
	// counted in one last finding of that id. Default 100.
	MaxFindings int
}

// DefaultLimits returns the limits Scan applies to zero fields.
func DefaultLimits() Limits {
	return Limits{
		MaxEntries:        1_000_000,
		MaxNameLength:     4096,
		MaxPAXRecordsSize: 1 << 20,
		MaxEntrySize:      64 << 30,
		MaxTotalSize:      0,
		MaxFindings:       100,
	}
}

// archiveTarSpecialMax is archive/tar's maxSpecialFileSize.
const archiveTarSpecialMax = 1 << 20

// maxSequence is the most entries a layer may have: tar-split numbers them with a uint32. A
// variable, so that the comparison also compiles where int has 32 bits.
var maxSequence int64 = math.MaxUint32 - 1

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if int64(l.MaxEntries) > maxSequence { // sequence numbers are uint32 (a 64-bit int only)
		l.MaxEntries = int(maxSequence)
	}
	if l.MaxNameLength <= 0 {
		l.MaxNameLength = d.MaxNameLength
	}
	if l.MaxPAXRecordsSize <= 0 {
		l.MaxPAXRecordsSize = d.MaxPAXRecordsSize
	}
	if l.MaxEntrySize <= 0 {
		l.MaxEntrySize = d.MaxEntrySize
	}
	if l.MaxTotalSize < 0 {
		l.MaxTotalSize = 0
	}
	if l.MaxFindings <= 0 {
		l.MaxFindings = d.MaxFindings
	}
	return l
}

// headerBudget is the most bytes archive/tar may consume for the headers of
// one entry (extension headers and their data, the entry's header, old GNU
// sparse extension blocks, a PAX 1.0 sparse map): every legitimate
// combination within the limits fits; more stops the scan with
// limit.pax-size.
func (l Limits) headerBudget() int64 {
	pax := min(l.MaxPAXRecordsSize, archiveTarSpecialMax)
	name := min(int64(l.MaxNameLength), archiveTarSpecialMax)
	return pax + 2*(name+2*blockSize) + 64<<10 + 8*blockSize
}

// Entry is the normalised view of one tar entry: PAX and GNU extensions
// resolved, as archive/tar presents it. Tables of contents (zstd:chunked,
// eStargz) must describe the same entries in the same order. PAX global
// headers are not entries.
type Entry struct {
	// Name is the entry's name as the archive gives it (after PAX path and
	// GNU long name records), e.g. "./etc/passwd" or "bin/".
	Name string
	// Path is Name normalised (see NormalizePath): "etc/passwd", "bin".
	Path string
	// Linkname is the symlink target or hard link target, as in the archive.
	Linkname string
	// Type is the archive/tar type flag (tar.TypeReg for old '\x00' entries,
	// tar.TypeDir for old '\x00' entries whose name ends in '/').
	Type         byte
	Mode         int64
	UID, GID     int
	Uname, Gname string
	// Size is the size the header gives (the logical size of a sparse
	// file; header-only types such as directories and links carry no data
	// whatever it says).
	Size               int64
	ModTime            time.Time
	Devmajor, Devminor int64
	// Xattrs are the PAX SCHILY.xattr.* records, by attribute name; nil if
	// none.
	Xattrs map[string]string
	// Sparse is set for GNU sparse files (old 'S' type or PAX GNU.sparse.*
	// records); their data section holds only the data fragments (after the
	// sparse map, for the PAX 1.0 layout).
	Sparse bool
	// Offset is where the entry's first header block (its first PAX or GNU
	// extension header, if any) starts in the stream.
	Offset int64
	// DataOffset is where the entry's data section starts in the stream
	// (for entries without data: where it would).
	DataOffset int64
}

// Result is what Scan found.
type Result struct {
	// Entries are all entries in stream order, only with Options.KeepEntries.
	Entries []Entry
	// Findings are the problems found, in stream order (then one summary
	// per check id that had more than Limits.MaxFindings).
	Findings []check.Finding
	// Size is the number of bytes read from the stream.
	Size int64
	// Count is the number of entries scanned (PAX global headers excluded).
	Count int
	// Digest is the SHA-256 of the Size bytes read. When Complete, it is
	// the layer's diff_id.
	Digest digest.Digest
	// Complete reports that the stream was read to its end (false when a
	// limit stopped the scan).
	Complete bool
}

// Options configure Scan. The zero value is ready to use.
type Options struct {
	Limits Limits
	// KeepEntries keeps every Entry in Result.Entries.
	KeepEntries bool
	// OnEntry, when set, is called for every entry in stream order (PAX
	// global headers excepted) with a reader of the entry's content (empty
	// for entries without data, e.g. directories and links), for instance
	// to compute per-file digests. The reader is valid only during the call;
	// whatever it leaves unread is skipped. For sparse files it yields the
	// expanded content (Size bytes, holes as zeros). A read error on it (a
	// truncated stream, a limit) becomes a finding, not OnEntry's failure;
	// an error OnEntry returns otherwise stops Scan, which returns it.
	OnEntry func(Entry, io.Reader) error
	// Severity overrides the default severity of check ids (for example
	// CheckDuplicatePath: check.Error for a converter that cannot represent
	// duplicates).
	Severity map[string]check.Severity
}

// outcome says how the scan goes on after an event.
type outcome int

const (
	goOn      outcome = iota // next entry
	endMarker                // end of archive: check that only zeros follow
	drainRest                // broken archive: read (and hash) the rest unchecked
	halt                     // a limit: read nothing more
)

type scanner struct {
	opts   Options
	lim    Limits
	cr     *countingReader
	tr     *tar.Reader
	res    *Result
	paths  pathTable
	counts map[string]int
	heads  int // entries plus global headers

	next     int64  // where the next header starts: after the current entry's data and padding
	prevName string // the entry whose data ends at dataEnd
	dataEnd  int64
}

// Scan reads the layer tar stream r to its end (or until a limit stops it)
// and checks it. It returns an error only when r fails, the context ends, or
// Options.OnEntry fails; every problem of the layer is a finding in the
// Result.
//
// Scan needs archive/tar's default GODEBUG tarinsecurepath behaviour: with
// tarinsecurepath=0, archive/tar stops at the first non-local name, and Scan
// returns an error there.
func Scan(ctx context.Context, r io.Reader, opts Options) (*Result, error) {
	lim := opts.Limits.withDefaults()
	cr := &countingReader{r: r, ctx: ctx, h: sha256.New(), maxTotal: lim.MaxTotalSize}
	s := &scanner{
		opts:   opts,
		lim:    lim,
		cr:     cr,
		tr:     tar.NewReader(cr),
		res:    &Result{},
		paths:  pathTable{},
		counts: map[string]int{},
	}
	out, err := s.entries()
	if err != nil {
		return nil, err
	}
	switch out {
	case endMarker:
		err = s.drain(true)
	case drainRest:
		err = s.drain(false)
	}
	if err != nil {
		return nil, err
	}
	s.summarise()
	s.res.Size = cr.n
	s.res.Digest = digest.NewDigest(digest.SHA256, cr.h)
	s.res.Complete = cr.eof
	return s.res, nil
}

// entries walks the entries until the archive ends, breaks or hits a limit.
func (s *scanner) entries() (outcome, error) {
	for {
		start := s.next
		s.cr.beginCapture(start, s.lim.headerBudget())
		hdr, err := s.tr.Next()
		raw := s.cr.endCapture()
		if err != nil {
			if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
				return 0, fmt.Errorf("tarcheck: archive/tar refuses the name %q (GODEBUG tarinsecurepath=0); tarcheck needs the default", hdr.Name)
			}
			return s.nextFailed(err, start, raw)
		}
		s.next = alignUp(s.cr.n)
		out, err := s.entry(hdr, start, raw, inspectRaw(raw, start))
		if err != nil || out != goOn {
			return out, err
		}
	}
}

// nextFailed classifies an error of tar.Reader.Next.
func (s *scanner) nextFailed(err error, start int64, raw []byte) (outcome, error) {
	cr := s.cr
	if cr.err != nil {
		return 0, s.ioError(cr.err)
	}
	if cr.totalHit {
		s.limitTotal()
		return halt, nil
	}
	if errors.Is(err, io.ErrUnexpectedEOF) && cr.n < start {
		// archive/tar was skipping the data of the previous entry.
		s.add(CheckHeader, shortPath(s.prevName), "the stream ends at offset %d inside the data of the entry, which ends at %d", cr.n, s.dataEnd)
		return drainRest, nil
	}
	if err == io.EOF {
		switch {
		case cr.n <= start:
			s.add(CheckNoEOF, "", "the stream ends at offset %d without an end-of-archive marker", cr.n)
		case len(raw) < 2*blockSize:
			s.add(CheckNoEOF, "", "the stream ends at offset %d after one of the two end-of-archive zero blocks", cr.n)
		}
		return endMarker, nil
	}
	ri := inspectRaw(raw, start)
	if cr.budgetHit {
		s.add(CheckLimitPAXSize, "", "the headers of the entry at offset %d take more than %d bytes", start, s.lim.headerBudget())
		return halt, nil
	}
	if ri.hasNUL {
		s.add(CheckNameNUL, shortPath(ri.nulName), "the %s of the entry at offset %d holds a NUL byte", ri.nulWhere, start)
		return drainRest, nil
	}
	if ri.longMax > int64(s.lim.MaxNameLength)+1 { // a GNU long name is NUL-terminated
		s.add(CheckLimitNameLength, "", "the GNU long name header of the entry at offset %d is %d bytes long, more than %d", start, ri.longMax, s.lim.MaxNameLength)
		return halt, nil
	}
	if errors.Is(err, tar.ErrFieldTooLong) || ri.paxSize > s.lim.MaxPAXRecordsSize {
		s.add(CheckLimitPAXSize, "", "the extended headers of the entry at offset %d are larger than %d bytes", start, min(s.lim.MaxPAXRecordsSize, archiveTarSpecialMax))
		return halt, nil
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		if ri.allZero {
			s.add(CheckNoEOF, "", "the stream ends at offset %d inside the end-of-archive marker", cr.n)
			return endMarker, nil
		}
		s.add(CheckHeader, "", "the stream ends at offset %d inside the headers of the entry at offset %d", cr.n, start)
		return drainRest, nil
	}
	switch {
	case ri.badChecksum >= 0:
		s.add(CheckHeader, "", "bad checksum in the header block at offset %d", ri.badChecksum)
	case ri.badNumber >= 0:
		s.add(CheckHeader, "", "bad size field in the header block at offset %d", ri.badNumber)
	default:
		s.add(CheckHeader, "", "invalid header at offset %d: %v", start, err)
	}
	return drainRest, nil
}

// entry checks one entry and hands its data to OnEntry.
func (s *scanner) entry(hdr *tar.Header, start int64, raw []byte, ri rawInfo) (outcome, error) {
	lim := s.lim
	if ri.paxSize > lim.MaxPAXRecordsSize {
		s.add(CheckLimitPAXSize, shortPath(hdr.Name), "the entry at offset %d has %d bytes of PAX records, more than %d", start, ri.paxSize, lim.MaxPAXRecordsSize)
		return halt, nil
	}
	s.heads++
	if s.heads > lim.MaxEntries {
		s.add(CheckLimitEntries, shortPath(hdr.Name), "more than %d entries (at offset %d)", lim.MaxEntries, start)
		return halt, nil
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		s.add(CheckPAXGlobal, shortPath(hdr.Name), "PAX global header at offset %d (%d records); readers disagree on whether it applies to the entries that follow", start, len(hdr.PAXRecords))
		return goOn, nil
	}
	for _, n := range []struct{ what, v string }{{"name", hdr.Name}, {"link target", hdr.Linkname}} {
		if len(n.v) > lim.MaxNameLength {
			s.add(CheckLimitNameLength, shortPath(hdr.Name), "the %s of the entry at offset %d is %d bytes long, more than %d", n.what, start, len(n.v), lim.MaxNameLength)
			return halt, nil
		}
	}
	dataStart, dataSize, sparse, ok := s.dataSection(hdr, ri)
	if !ok {
		s.add(CheckHeader, shortPath(hdr.Name), "cannot locate the data of the sparse entry at offset %d", start)
		return drainRest, nil
	}
	if size := max(hdr.Size, dataSize); carriesData(hdr.Typeflag) && size > lim.MaxEntrySize {
		s.add(CheckLimitEntrySize, shortPath(hdr.Name), "the entry at offset %d claims %d bytes of data, more than %d", start, size, lim.MaxEntrySize)
		return halt, nil
	}
	s.res.Count++
	s.next = alignUp(satAdd(dataStart, dataSize))
	s.prevName, s.dataEnd = hdr.Name, dataStart+dataSize
	if sparse {
		// Scan does not expand sparse files, so check here what archive/tar
		// would find reading one: a map that does not cover the data.
		held := dataStart + dataSize - s.cr.n // the data after a PAX 1.0 map
		if sum, ok := sparseFragments(hdr, raw, start, ri, s.cr.n); !ok {
			s.add(CheckHeader, shortPath(hdr.Name), "cannot read the sparse map of the entry at offset %d", start)
		} else if sum != held {
			s.add(CheckHeader, shortPath(hdr.Name), "the sparse map of the entry at offset %d describes %d bytes of data, the entry holds %d", start, sum, held)
		}
	}

	e := Entry{
		Name:       hdr.Name,
		Path:       NormalizePath(hdr.Name),
		Linkname:   hdr.Linkname,
		Type:       hdr.Typeflag,
		Mode:       hdr.Mode,
		UID:        hdr.Uid,
		GID:        hdr.Gid,
		Uname:      hdr.Uname,
		Gname:      hdr.Gname,
		Size:       hdr.Size,
		ModTime:    hdr.ModTime,
		Devmajor:   hdr.Devmajor,
		Devminor:   hdr.Devminor,
		Sparse:     sparse,
		Offset:     start,
		DataOffset: dataStart,
	}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			e.Xattrs[name] = v
		}
	}
	s.checkNames(e, ri)
	s.checkPaths(e, uint32(s.res.Count))
	if s.opts.KeepEntries {
		s.res.Entries = append(s.res.Entries, e)
	}
	return s.data(e)
}

// checkNames checks the bytes of the name and link target.
func (s *scanner) checkNames(e Entry, ri rawInfo) {
	p := shortPath(e.Name)
	switch {
	case ri.hasNUL:
		s.add(CheckNameNUL, p, "the %s holds a NUL byte followed by more name bytes; readers cut the name at different places", ri.nulWhere)
	case strings.IndexByte(e.Name, 0) >= 0:
		s.add(CheckNameNUL, p, "the name holds a NUL byte")
	case strings.IndexByte(e.Linkname, 0) >= 0:
		s.add(CheckNameNUL, p, "the link target holds a NUL byte")
	}
	if !utf8.ValidString(e.Name) {
		s.add(CheckNameInvalidUTF8, p, "the name %q is not valid UTF-8", p)
	}
	if !utf8.ValidString(e.Linkname) {
		s.add(CheckNameInvalidUTF8, p, "the link target %q is not valid UTF-8", shortPath(e.Linkname))
	}
	if e.Name == "" {
		s.add(CheckHeader, "", "the entry at offset %d has an empty name", e.Offset)
	}
	if !carriesData(e.Type) && e.Size != 0 {
		s.add(CheckHeaderOnlySize, p, "a %s entry claims %d bytes of data; readers disagree on whether they follow", typeName(e.Type), e.Size)
	}
	if e.Type == tar.TypeChar || e.Type == tar.TypeBlock {
		s.add(CheckDeviceNode, p, "%s %d:%d", typeName(e.Type), e.Devmajor, e.Devminor)
	}
}

// checkPaths does the path, link, duplicate and whiteout checks; seq is the
// entry's 1-based index.
func (s *scanner) checkPaths(e Entry, seq uint32) {
	name := shortPath(e.Name)
	if strings.HasPrefix(e.Name, "/") {
		s.add(CheckPathAbsolute, name, "absolute name")
	}
	escaped := escapes(e.Path)
	if escaped {
		s.add(CheckPathTraversal, name, "the name leaves the root (%q)", shortPath(e.Path))
	}

	switch e.Type {
	case tar.TypeSymlink:
		if !escaped && e.Linkname != "" && !strings.HasPrefix(e.Linkname, "/") {
			if t := NormalizePath(dirOf(e.Path) + "/" + e.Linkname); escapes(t) {
				s.add(CheckLinkEscape, name, "the symlink target %q leaves the root (%q)", shortPath(e.Linkname), shortPath(t))
			}
		}
	case tar.TypeLink:
		t := NormalizePath(e.Linkname)
		switch {
		case e.Linkname == "":
			s.add(CheckHardlinkMissing, name, "hard link without a target")
		case strings.HasPrefix(e.Linkname, "/"):
			s.add(CheckLinkEscape, name, "absolute hard link target %q", shortPath(e.Linkname))
		case escapes(t):
			s.add(CheckLinkEscape, name, "the hard link target %q leaves the root", shortPath(e.Linkname))
		default:
			ti := s.paths[keyOf(t)]
			if ti.entrySeq == 0 {
				s.add(CheckHardlinkMissing, name, "the hard link target %q is not an earlier entry", shortPath(e.Linkname))
			} else if s.paths.whitedOut(t, ti.entrySeq) {
				s.add(CheckHardlinkMissing, name, "the hard link target %q was whited out", shortPath(e.Linkname))
			}
		}
	}
	if escaped {
		return
	}

	k := keyOf(e.Path)
	info := s.paths[k]
	if info.entrySeq != 0 {
		s.add(CheckDuplicatePath, name, "%q appears more than once (now a %s, earlier a %s)", e.Path, typeName(e.Type), typeName(info.typ))
	}
	dir, base := dirOf(e.Path), baseOf(e.Path)
	for d := dir; d != "."; d = dirOf(d) {
		if strings.HasPrefix(baseOf(d), whiteoutPrefix) {
			s.add(CheckWhiteoutInvalid, name, "entry inside the whiteout %q", d)
			break
		}
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		if e.Type != tar.TypeReg || e.Size != 0 {
			s.add(CheckWhiteoutInvalid, name, "a whiteout must be an empty regular file, not a %s of %d bytes", typeName(e.Type), e.Size)
		}
		target := base[len(whiteoutPrefix):]
		switch {
		case base == opaqueMarker:
			if dir == "." {
				s.add(CheckWhiteoutInvalid, name, "opaque marker at the layer root, not in a directory")
			} else if di := s.paths[keyOf(dir)]; di.entrySeq != 0 && di.typ != tar.TypeDir {
				s.add(CheckWhiteoutInvalid, name, "opaque marker in %q, which is a %s, not a directory", dir, typeName(di.typ))
			}
		case target == "":
			s.add(CheckWhiteoutInvalid, name, "whiteout without a name")
		case target == "." || target == "..":
			s.add(CheckWhiteoutInvalid, name, "whiteout of %q", target)
		case strings.HasPrefix(target, whiteoutPrefix):
			s.add(CheckWhiteoutInvalid, name, "nested whiteout prefix in %q", base)
		default:
			tp := NormalizePath(dir + "/" + target)
			tk := keyOf(tp)
			ti := s.paths[tk]
			if ti.entrySeq != 0 {
				s.add(CheckWhiteoutShadowed, name, "whiteout of %q, which is an earlier entry of the same layer", tp)
			}
			ti.whSeq = seq
			s.paths[tk] = ti
		}
	} else if info.whSeq != 0 {
		s.add(CheckWhiteoutShadowed, name, "%q was whited out earlier in the same layer", e.Path)
	}
	info.entrySeq = seq
	info.typ = e.Type
	s.paths[k] = info
}

// dataSection locates the data section of an entry in the stream, the way
// archive/tar reads it: for header-only types (directories, links, devices,
// fifos) there is none whatever the size field says; for sparse files
// (old GNU 'S', PAX GNU.sparse.* 0.0, 0.1 and 1.0) its size is the PAX size
// record or the header's size field (hdr.Size is the expanded size), and a
// PAX 1.0 sparse map begins it. ok is false if the raw headers do not show
// where it is (not expected once archive/tar has accepted them).
func (s *scanner) dataSection(hdr *tar.Header, ri rawInfo) (start, size int64, sparse, ok bool) {
	start = s.cr.n
	if !carriesData(hdr.Typeflag) {
		return start, 0, false, true
	}
	sparse, map1x0 := sparseKind(hdr)
	if !sparse {
		return start, hdr.Size, false, true
	}
	if v := hdr.PAXRecords["size"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, true, false
		}
		size = n
	} else {
		if ri.mainEnd < 0 {
			return 0, 0, true, false
		}
		size = ri.mainSize
	}
	if map1x0 {
		if ri.mainEnd < 0 || ri.mainEnd > start {
			return 0, 0, true, false
		}
		start = ri.mainEnd
	}
	if satAdd(start, size) < s.cr.n {
		return 0, 0, true, false
	}
	return start, size, true, true
}

// data gives the entry's data to OnEntry. Scan itself reads no data:
// archive/tar skips it (and what OnEntry leaves) in the next Next, without
// expanding the holes of sparse files.
func (s *scanner) data(e Entry) (outcome, error) {
	if s.opts.OnEntry == nil {
		return goOn, nil
	}
	cr := &contentReader{tr: s.tr}
	hookErr := s.opts.OnEntry(e, cr)
	cr.done = true
	switch {
	case s.cr.err != nil:
		return 0, s.ioError(s.cr.err)
	case s.cr.totalHit:
		s.limitTotal()
		return halt, nil
	case errors.Is(cr.err, io.ErrUnexpectedEOF):
		s.add(CheckHeader, shortPath(e.Name), "the stream ends at offset %d inside the data of the entry, which ends at %d", s.cr.n, s.dataEnd)
		return drainRest, nil
	case cr.err != nil && cr.err != io.EOF:
		s.add(CheckHeader, shortPath(e.Name), "bad data of the entry at offset %d: %v", e.Offset, cr.err)
		return drainRest, nil
	case hookErr != nil:
		return 0, fmt.Errorf("tarcheck: OnEntry %q: %w", e.Name, hookErr)
	}
	return goOn, nil
}

// drain reads the rest of the stream so that Digest and Size cover it; after
// the end-of-archive marker (zerosOnly), anything but zeros is reported.
func (s *scanner) drain(zerosOnly bool) error {
	reported := false
	buf := make([]byte, 32<<10)
	for {
		pos := s.cr.n
		n, err := s.cr.Read(buf)
		if zerosOnly && !reported && n > 0 {
			for i, c := range buf[:n] {
				if c != 0 {
					s.add(CheckHeader, "", "non-zero data at offset %d after the end-of-archive marker", pos+int64(i))
					reported = true
					break
				}
			}
		}
		switch {
		case err == nil:
		case err == io.EOF:
			return nil
		case s.cr.totalHit:
			s.limitTotal()
			return nil
		default:
			return s.ioError(err)
		}
	}
}

// contentReader is the reader of one entry's data: it remembers the first
// error (other than io.EOF) and stops working once the entry is done.
type contentReader struct {
	tr   *tar.Reader
	n    int64
	err  error
	done bool
}

func (c *contentReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, errors.New("tarcheck: entry reader used after OnEntry returned")
	}
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.tr.Read(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

func (s *scanner) limitTotal() {
	s.add(CheckLimitTotalSize, "", "the stream is longer than %d bytes", s.lim.MaxTotalSize)
}

func (s *scanner) ioError(err error) error {
	if cerr := s.cr.ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("tarcheck: reading the layer at offset %d: %w", s.cr.n, err)
}

// add records a finding, at most Limits.MaxFindings per check id.
func (s *scanner) add(id, p, format string, args ...any) {
	s.counts[id]++
	if s.counts[id] > s.lim.MaxFindings {
		return
	}
	s.res.Findings = append(s.res.Findings, check.Finding{
		Check:    id,
		Severity: s.severity(id),
		Message:  fmt.Sprintf(format, args...),
		Path:     p,
	})
}

func (s *scanner) severity(id string) check.Severity {
	if sev, ok := s.opts.Severity[id]; ok {
		return sev
	}
	return DefaultSeverity(id)
}

// summarise adds one finding per check id that had more than MaxFindings.
func (s *scanner) summarise() {
	ids := make([]string, 0, len(s.counts))
	for id, n := range s.counts {
		if n > s.lim.MaxFindings {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		s.res.Findings = append(s.res.Findings, check.Finding{
			Check:    id,
			Severity: s.severity(id),
			Message:  fmt.Sprintf("%d more %s findings not listed", s.counts[id]-s.lim.MaxFindings, id),
		})
	}
}

// carriesData reports whether archive/tar reads data for an entry type.
func carriesData(typ byte) bool {
	switch typ {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return false
	}
	return true
}

func typeName(typ byte) string {
	switch typ {
	case tar.TypeReg:
		return "regular file"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeDir:
		return "directory"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("%q-type entry", typ)
}

func alignUp(n int64) int64 { return (n + blockSize - 1) &^ (blockSize - 1) }

// shortPath keeps finding paths readable when a hostile name is huge.
func shortPath(s string) string {
	const max = 1024
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "."
	}
	return p[:i]
}

func baseOf(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

package zstdchunked

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/archive/tar"
	"github.com/vbatts/tar-split/tar/storage"
)

// lazyResult is the partial-pull view.
type lazyResult struct {
	f *findings
	// Per plan: the content's sha256 and whether it matched the TOC (size
	// and digest) with every frame decompressed.
	digest []digest.Digest
	good   []bool
	// The tar stream rebuilt from the tar-split.
	rebuilt       bool
	tainted       bool // a file involved was already reported
	rebuildDigest digest.Digest
	rebuildSize   int64
}

// plainResult is the full-pull view.
type plainResult struct {
	f      *findings
	ok     bool // the whole blob decompressed within the limit
	digest digest.Digest
	size   int64
	// Per plan: the sha256 of the file's payload in the tar stream.
	fileDigest []digest.Digest
}

// views runs the two views concurrently and compares them.
func (v *verifier) views() error {
	cap, capFromTOC := v.plainCap()
	var lazy *lazyResult
	var lerr error
	var wg sync.WaitGroup
	if v.toc != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lazy, lerr = v.lazyView()
		}()
	}
	plain, perr := v.plainView(cap, capFromTOC)
	wg.Wait()
	if err := v.ctx.Err(); err != nil {
		return err
	}
	if err := v.ra.failed(); err != nil {
		return err
	}
	if lerr != nil {
		return lerr
	}
	if perr != nil {
		return perr
	}
	if lazy != nil {
		v.f.merge(lazy.f)
	}
	v.f.merge(plain.f)

	if plain.ok {
		v.info.UncompressedDigest, v.info.UncompressedSize = plain.digest, plain.size
		if v.opts.DiffID != "" && plain.digest != v.opts.DiffID {
			v.f.errorf(CheckDiffID, "the blob decompresses to %d bytes with digest %s, the config's diff_id is %s: the config does not describe this layer", plain.size, plain.digest, v.opts.DiffID)
		}
		if v.esgzUSize >= 0 && v.esgzUSize != plain.size {
			v.f.warnf(CheckAnnotations, "%s is %d, the layer decompresses to %d bytes", AnnotationStargzUncompressedSize, v.esgzUSize, plain.size)
		}
	}
	if lazy == nil {
		return nil
	}
	if v.tsTrusted && v.tsConsistent && plain.ok && v.tsTotal != plain.size {
		v.f.errorf(CheckRebuild, "the tar-split describes a tar stream of %d bytes (c/storage records that as the layer's size), the layer has %d", v.tsTotal, plain.size)
	}
	if lazy.rebuilt && !lazy.tainted {
		switch {
		case plain.ok && lazy.rebuildDigest != plain.digest:
			v.f.errorf(CheckRebuild, "the tar-split and the files of a partial pull rebuild %d bytes with digest %s, the blob decompresses to %d bytes with digest %s", lazy.rebuildSize, lazy.rebuildDigest, plain.size, plain.digest)
		case !plain.ok && v.opts.DiffID != "" && lazy.rebuildDigest != v.opts.DiffID:
			v.f.errorf(CheckRebuild, "the tar-split and the files of a partial pull rebuild %d bytes with digest %s, the config's diff_id is %s", lazy.rebuildSize, lazy.rebuildDigest, v.opts.DiffID)
		}
	}
	for pi := range v.plans {
		p := &v.plans[pi]
		if lazy.good[pi] && plain.fileDigest[pi] != "" && plain.fileDigest[pi] != lazy.digest[pi] {
			v.f.errorAt(p.name, CheckViewMismatch, "%q has different content in the two views: a partial pull writes %s (as the TOC says), a full pull %s", p.name, lazy.digest[pi], plain.fileDigest[pi])
		}
	}
	return nil
}

// ---- partial-pull view ----

func (v *verifier) lazyView() (*lazyResult, error) {
	r := &lazyResult{
		f:      newFindings(v.lim.MaxFindings),
		digest: make([]digest.Digest, len(v.plans)),
		good:   make([]bool, len(v.plans)),
	}
	if v.lazySkip {
		return r, nil
	}
	lf := &lazyFiles{v: v, r: r, buf: make([]byte, 128<<10), br: bufio.NewReaderSize(nil, 64<<10)}
	dec := syncDecoders.Get().(*zstd.Decoder)
	defer putDecoder(dec)
	lf.dec = dec
	done := make([]bool, len(v.plans))

	if v.tsTrusted && v.tsConsistent {
		byName := make(map[string]int, len(v.plans))
		for pi := range v.plans {
			byName[v.plans[pi].name] = pi
		}
		h := sha256.New()
		cw := &countWriter{w: h}
		crc := newCRC64ISO()
		out := io.MultiWriter(cw, crc)
		ok, err := v.iterTarSplit(true, func(e *storage.Entry) error {
			switch e.Type {
			case storage.SegmentType:
				cw.Write(e.Payload)
			case storage.FileType:
				if e.Size == 0 { // asm.WriteOutputTarStream does not ask for these
					return nil
				}
				pi, found := byName[e.GetName()]
				if !found || done[pi] || !v.plans[pi].ok {
					r.tainted = true // reported already (view-mismatch, toc, offsets)
					return nil
				}
				done[pi] = true
				crc.Reset()
				if err := lf.file(pi, out); err != nil {
					return err
				}
				if !r.good[pi] {
					r.tainted = true
					return nil
				}
				if !bytes.Equal(crc.Sum(nil), e.Payload) {
					r.f.errorAt(e.GetName(), CheckRebuild, "the tar-split's crc64 of %q does not match its content (c/storage fails: \"file integrity checksum failed\")", e.GetName())
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if ok {
			r.rebuilt = true
			r.rebuildDigest, r.rebuildSize = digestOf(h.Sum(nil)), cw.n
		}
	}
	for pi := range v.plans {
		if !done[pi] && v.plans[pi].ok {
			if err := lf.file(pi, io.Discard); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

type lazyFiles struct {
	v   *verifier
	r   *lazyResult
	dec *zstd.Decoder
	br  *bufio.Reader // over each chunk's range: the decoder reads headers byte by byte
	buf []byte
}

var zeroBuf128k = make([]byte, 128<<10)

// file reads plan pi's content as a partial pull does, writes it to w,
// checks chunk digests, zero chunks, the size and the file digest, and
// records r.digest/r.good. The error is for I/O and ctx only.
func (lf *lazyFiles) file(pi int, w io.Writer) error {
	v, r := lf.v, lf.r
	p := &v.plans[pi]
	fh := sha256.New()
	out := io.MultiWriter(fh, w)
	var total int64
	good := true
	multi := len(p.chunks) > 1
	for k := range p.chunks {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		c := &p.chunks[k]
		what := fmt.Sprintf("%q", p.name)
		if multi {
			what = fmt.Sprintf("chunk %d of %q", k, p.name)
		}
		sizeID := CheckFileDigest
		if multi || c.zeros {
			sizeID = CheckChunkDigest
		}
		decodeErr := func(err error) error {
			if ioErr := v.ra.failed(); ioErr != nil {
				return ioErr
			}
			r.f.errorAt(p.name, CheckFileDigest, "%s: the frames at [%d, %d) do not decompress: %v", what, c.off, c.end, err)
			good = false
			return nil
		}
		lf.br.Reset(io.NewSectionReader(v.ra, c.off, c.end-c.off))
		if err := lf.dec.Reset(lf.br); err != nil {
			if e := decodeErr(err); e != nil {
				return e
			}
			break
		}
		var src io.Reader = lf.dec
		if c.inner > 0 {
			n, err := io.CopyN(io.Discard, src, c.inner)
			if err != nil && err != io.EOF {
				if e := decodeErr(err); e != nil {
					return e
				}
				break
			}
			if n < c.inner {
				r.f.errorAt(p.name, sizeID, "%s: the frames at %d hold %d bytes, fewer than its innerOffset %d", what, c.off, n, c.inner)
				good = false
				break
			}
		}
		readMax := c.size + 1 // containers: the range must hold exactly the chunk
		if v.stargzSem {
			readMax = c.size // stargz: the chunk is a prefix of [offset, nextOffset)
		}
		lr := io.LimitReader(src, readMax)
		var ch hash.Hash
		if c.digest != "" && c.digest.Algorithm() == digest.SHA256 {
			ch = sha256.New()
		} else if c.digest != "" && c.digest.Algorithm().Available() {
			ch = c.digest.Algorithm().Hash()
		}
		var got int64
		over, nonZero := false, false
		var rerr error
		for {
			n, err := lr.Read(lf.buf)
			part := lf.buf[:n]
			if got+int64(n) > c.size {
				part, over = part[:c.size-got], true
			}
			if len(part) > 0 {
				if ch != nil {
					ch.Write(part)
				}
				if c.zeros {
					if !nonZero && !allZero(part) {
						nonZero = true
					}
					out.Write(zeroBuf128k[:len(part)]) // c/storage writes a hole
				} else {
					out.Write(part)
				}
				got += int64(len(part))
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				rerr = err
				break
			}
		}
		total += got
		if rerr != nil {
			if e := decodeErr(rerr); e != nil {
				return e
			}
			break
		}
		if over {
			r.f.errorAt(p.name, CheckLimitDecompressedSize, "%s: the frames at [%d, %d) decompress to more than the %d bytes claimed", what, c.off, c.end, c.size)
		}
		if got < c.size {
			r.f.errorAt(p.name, sizeID, "%s: the frames at [%d, %d) decompress to %d bytes, the TOC claims %d", what, c.off, c.end, got, c.size)
			good = false
			break
		}
		if nonZero {
			r.f.errorAt(p.name, CheckChunkDigest, "%s: a \"zeros\" chunk whose frames hold non-zero bytes (a partial pull writes zeros, a full pull these bytes)", what)
			good = false
		}
		if ch != nil {
			if d := digest.NewDigest(c.digest.Algorithm(), ch); d != c.digest {
				r.f.errorAt(p.name, CheckChunkDigest, "%s: content digest %s, chunkDigest %s", what, d, c.digest)
			}
		}
	}
	sum := digestOf(fh.Sum(nil))
	if good {
		switch {
		case total != p.size:
			r.f.errorAt(p.name, CheckFileDigest, "%q: a partial pull reads %d bytes, the TOC size is %d", p.name, total, p.size)
			good = false
		case p.digest != "" && p.digest.Algorithm() == digest.SHA256 && sum != p.digest:
			r.f.errorAt(p.name, CheckFileDigest, "%q: a partial pull reads content with digest %s, the TOC says %s", p.name, sum, p.digest)
			good = false
		}
	}
	r.digest[pi], r.good[pi] = sum, good
	return nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ---- full-pull view ----

// plainCap bounds the plain decompression: what the TOC and the tar-split
// account for plus a generous allowance, at most MaxUncompressedSize.
func (v *verifier) plainCap() (int64, bool) {
	max := v.lim.MaxUncompressedSize
	if v.toc == nil {
		return max, false
	}
	est := int64(1024 + 10240) // end-of-archive blocks, record padding
	for i := range v.toc.Entries {
		e := &v.toc.Entries[i]
		if e.Type == TypeChunk {
			continue
		}
		if e.Type == TypeReg && e.Size > 0 {
			est = satAdd(est, (e.Size+511)&^511)
		}
		// ustar + PAX/GNU headers: names, link names, xattrs, times, ids.
		h := int64(4096 + 3*512 + 2*(len(e.Name)+len(e.Linkname)))
		for k, x := range e.Xattrs {
			h += int64(len(k) + len(x) + 64)
		}
		est = satAdd(est, h)
	}
	if v.tsTotal > est {
		est = v.tsTotal
	}
	c := satAdd(satAdd(est, 64<<20), est/8)
	if c < max {
		return c, true
	}
	return max, false
}

// capReader fails once more than max bytes were read.
type capReader struct {
	r   io.Reader
	max int64
	n   int64
	hit bool
	err error // the first non-EOF error of r (a decoding error)
}

var errCapHit = errors.New("decompression limit reached")

func (c *capReader) Read(p []byte) (int, error) {
	if c.n > c.max {
		c.hit = true
		return 0, errCapHit
	}
	if int64(len(p)) > c.max+1-c.n {
		p = p[:c.max+1-c.n]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

func (v *verifier) plainView(cap int64, capFromTOC bool) (*plainResult, error) {
	var err error
	r := &plainResult{f: newFindings(v.lim.MaxFindings)}
	if v.plans != nil {
		r.fileDigest = make([]digest.Digest, len(v.plans))
	}
	src := bufio.NewReaderSize(io.NewSectionReader(v.ra, 0, v.plainEnd), 1<<20)
	var dec *zstd.Decoder
	if v.plainEnd < 16<<20 {
		if dec, err = getDecoder(src); err != nil {
			r.f.errorf(CheckStream, "the blob does not decompress as a zstd stream (a full pull fails): %v", err)
			return r, nil
		}
		defer putDecoder(dec)
	} else {
		// Large blobs: klauspost's asynchronous stream decoder.
		if dec, err = zstd.NewReader(src, zstd.WithDecoderMaxWindow(maxDecoderWindow)); err != nil {
			r.f.errorf(CheckStream, "the blob does not decompress as a zstd stream (a full pull fails): %v", err)
			return r, nil
		}
		defer dec.Close()
	}
	cr := &capReader{r: dec, max: cap}
	h := sha256.New()
	cw := &countWriter{w: h}
	if v.opts.Stream != nil {
		cw.w = io.MultiWriter(h, v.opts.Stream)
	}
	tee := io.TeeReader(cr, cw)

	failed := false
	streamErr := func() (bool, error) { // reports a decoding failure or the cap
		if err := v.ctx.Err(); err != nil {
			return true, err
		}
		if err := v.ra.failed(); err != nil {
			return true, err
		}
		switch {
		case cr.hit:
			if capFromTOC {
				r.f.errorf(CheckLimitDecompressedSize, "the blob decompresses to more than %d bytes, far more than its TOC and tar-split account for; stopped", cap)
			} else {
				r.f.errorf(CheckLimitDecompressedSize, "the blob decompresses to more than the limit of %d bytes; stopped", cap)
			}
			return true, nil
		case cr.err != nil:
			r.f.errorf(CheckStream, "the blob does not decompress as a zstd stream after %d uncompressed bytes (a full pull fails): %v", cr.n, cr.err)
			return true, nil
		}
		return false, nil
	}

	m := v.newMatcher(r)
	tr := tar.NewReader(tee)
	entry := 0
	for ; ; entry++ {
		if err := v.ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if stop, e := streamErr(); stop {
				return r, e
			}
			r.f.errorf(CheckStream, "the decompressed blob is not a readable tar stream at entry %d (a full pull fails): %v", entry, err)
			failed = true
			break
		}
		pi := m.match(entry, hdr)
		if pi < 0 {
			continue
		}
		p := &v.plans[pi]
		if hdr.Size != p.size {
			continue // reported by the matcher; the content cannot be the same
		}
		fh := sha256.New()
		n, err := io.Copy(fh, io.LimitReader(tr, p.size))
		if err != nil || n != p.size {
			if stop, e := streamErr(); stop {
				return r, e
			}
			r.f.errorf(CheckStream, "the payload of tar entry %d %q cannot be read (a full pull fails): %v", entry, hdr.Name, err)
			failed = true
			break
		}
		r.fileDigest[pi] = digestOf(fh.Sum(nil))
	}
	// The rest of the stream (end-of-archive blocks, trailing bytes).
	if _, err := io.Copy(io.Discard, tee); err != nil {
		if stop, e := streamErr(); stop {
			return r, e
		}
		return nil, err
	}
	if stop, e := streamErr(); stop {
		return r, e
	}
	if !failed {
		m.finish()
	}
	r.ok = true
	r.digest, r.size = digestOf(h.Sum(nil)), cw.n
	return r, nil
}

// matcher pairs the tar entries of the full-pull view with the TOC's
// non-chunk entries: by position when the names agree, else by name (an
// order difference), else by position (a renamed entry of the same kind).
type matcher struct {
	v        *verifier
	r        *plainResult
	entries  []FileMetadata
	used     []bool // by TOC index
	p        int    // TOC index of the next expected entry
	disorder int
	estargz  bool
}

func (v *verifier) newMatcher(r *plainResult) *matcher {
	m := &matcher{v: v, r: r}
	if v.toc == nil {
		return m
	}
	m.entries = v.toc.Entries
	m.estargz = v.stargzSem
	m.used = make([]bool, len(m.entries))
	return m
}

// next moves p to the next unused non-chunk entry.
func (m *matcher) next() {
	for m.p < len(m.entries) && (m.used[m.p] || m.entries[m.p].Type == TypeChunk) {
		m.p++
	}
}

// match returns the plan index of the matched regular file, or -1.
func (m *matcher) match(entry int, hdr *tar.Header) int {
	if m.entries == nil {
		return -1
	}
	m.next()
	i := -1
	switch {
	case m.p < len(m.entries) && m.entries[m.p].Name == hdr.Name:
		i = m.p
	default:
		if q, ok := m.v.byName[hdr.Name]; ok {
			for ; q >= 0; q = m.v.sameName[q] {
				if !m.used[q] {
					i = int(q)
					break
				}
			}
		}
		if i >= 0 {
			if m.disorder == 0 {
				want := "the end of the TOC"
				if m.p < len(m.entries) {
					want = fmt.Sprintf("TOC entry #%d %q", m.p, m.entries[m.p].Name)
				}
				m.r.f.errorAt(hdr.Name, CheckViewMismatch, "the TOC lists the entries in another order than the tar: tar entry %d %q is TOC entry #%d, where %s was expected (a partial pull creates them in TOC order)", entry, hdr.Name, i, want)
			}
			m.disorder++
		} else if m.estargz && cleanEntryName(hdr.Name) == "stargz.index.json" {
			return -1 // gzip eStargz keeps its TOC as a tar entry of its own
		} else if m.p < len(m.entries) && tocTypeOfTar[hdr.Typeflag] == m.entries[m.p].Type {
			i = m.p // the same kind of entry where the tar has it: a renamed entry
		} else {
			m.r.f.errorAt(hdr.Name, CheckViewMismatch, "tar entry %d %q (type %s) has no TOC entry: a full pull creates it, a partial pull does not", entry, hdr.Name, typeName(hdr.Typeflag))
			return -1
		}
	}
	m.used[i] = true
	e := &m.entries[i]
	var diffs []string
	if m.estargz {
		diffs = diffEstargz(e, hdr)
	} else {
		diffs = diffContainers(e, hdr)
	}
	if len(diffs) > 0 {
		m.r.f.errorAt(hdr.Name, CheckViewMismatch, "tar entry %d %q and TOC entry #%d differ: %s", entry, hdr.Name, i, strings.Join(diffs, "; "))
	}
	if e.Type != TypeReg || hdr.Typeflag != tar.TypeReg {
		return -1
	}
	return int(m.v.planOf[i])
}

func (m *matcher) finish() {
	if m.entries == nil {
		return
	}
	if m.disorder > 1 {
		m.r.f.errorf(CheckViewMismatch, "%d tar entries in all are out of the TOC's order", m.disorder)
	}
	var missing []string
	n := 0
	for i := range m.entries {
		if !m.used[i] && m.entries[i].Type != TypeChunk {
			if n++; len(missing) < 5 {
				missing = append(missing, m.entries[i].Name)
			}
		}
	}
	if n > 0 {
		m.r.f.errorf(CheckViewMismatch, "%d TOC entries have no tar entry (a partial pull creates them, a full pull does not), e.g. %q", n, missing)
	}
}

func cleanEntryName(name string) string {
	return strings.TrimPrefix(strings.TrimPrefix(name, "./"), "/")
}

// ---- what runtimes do ----

func (v *verifier) partialPull() string {
	switch v.annDialect {
	case "":
		return "none: without zstd:chunked annotations runtimes pull the layer whole as plain zstd"
	case DialectContainers:
		_, hasSum := v.ann[AnnotationManifestChecksum]
		switch {
		case v.f.hasError(CheckDualTOC):
			return "none: containers/storage refuses a layer with both a zstd:chunked and an eStargz TOC digest"
		case !hasSum:
			return "none: without " + AnnotationManifestChecksum + " runtimes pull the layer whole as plain zstd"
		case v.toc != nil && v.toc.TarSplitDigest != "":
			return "containers/storage >= 1.54 (tar-split digest in the TOC); >= 1.55 also requires the TOC to match the tar-split, >= 1.57 rebuilds the tar and requires the config diff_id"
		case v.tsPos != nil || v.hasTSPosKey || (v.footer != nil && v.footer.Size == IntermediateFooterSize):
			return "containers/storage 1.47-1.53 and 1.55-1.56 (1.54 fails on it); >= 1.57 pulls it whole: the TOC does not authenticate the tar-split"
		default:
			return "containers/storage 1.44-1.56; >= 1.57 pulls it whole: without a tar-split the diff_id cannot be checked"
		}
	case DialectContainersLegacy:
		return "containers/storage < 1.44 only (io.containers.zstd-chunked.* keys); 1.44 and later do not know these keys and pull the layer whole as plain zstd"
	case DialectStargz:
		return "stargz-snapshotter (lazy pull with its zstdchunked decompressor); containers/storage cannot: the eStargz TOC digest makes it read the layer as gzip eStargz, whose 51-byte footer it cannot parse (a pull error with enable_partial_images before 1.57, from 1.57 a full pull unless insecure_allow_unpredictable_image_contents is set)"
	}
	return ""
}

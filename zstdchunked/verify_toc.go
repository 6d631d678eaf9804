package zstdchunked

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// checkEntries checks every TOC entry and builds the partial-pull plan of
// each regular file.
func (v *verifier) checkEntries() {
	es := v.toc.Entries
	v.info.Entries = len(es)
	v.planOf = make([]int32, len(es))
	for i := range v.planOf {
		v.planOf[i] = -1
	}
	v.byName = make(map[string]int32, len(es))
	v.sameName = make([]int32, len(es))
	last := map[string]int32{} // the last entry of each duplicated name
	file := -1                 // index of the "reg" entry that "chunk" entries may follow
	for i := range es {
		e := &es[i]
		if e.Size < 0 || e.Mode < 0 || e.UID < 0 || e.GID < 0 || e.Devmajor < 0 || e.Devminor < 0 ||
			e.Offset < 0 || e.EndOffset < 0 || e.ChunkSize < 0 || e.ChunkOffset < 0 || e.InnerOffset < 0 {
			v.f.errorAt(e.Name, CheckTOC, "TOC entry #%d %q has a negative number", i, e.Name)
		}
		switch e.Type {
		case TypeChunk:
			if file < 0 {
				v.f.errorAt(e.Name, CheckTOC, "TOC entry #%d is a chunk that does not follow a regular file (c/storage fails: \"chunk type without a regular file\")", i)
			} else if e.Name != es[file].Name {
				v.f.errorAt(e.Name, CheckTOC, "TOC entry #%d is a chunk named %q following the file %q", i, e.Name, es[file].Name)
			}
			continue
		case TypeReg:
			file = i
		case TypeLink, TypeChar, TypeBlock, TypeDir, TypeFifo, TypeSymlink:
			file = -1
		default:
			file = -1
			v.f.errorAt(e.Name, CheckTOC, "TOC entry #%d %q has the unknown type %q", i, e.Name, e.Type)
		}
		switch {
		case e.Name == "":
			v.f.errorf(CheckTOC, "TOC entry #%d has an empty name", i)
		case strings.ContainsRune(e.Name, 0) || strings.ContainsRune(e.Linkname, 0):
			v.f.errorAt(e.Name, CheckTOC, "TOC entry #%d %q has a NUL byte in its name or link name", i, e.Name)
		}
		v.sameName[i] = -1
		if j, dup := v.byName[e.Name]; dup {
			v.f.errorAt(e.Name, CheckTOC, "TOC entries #%d and #%d have the same name %q (c/storage fails: \"TOC contains duplicate entries\")", j, i, e.Name)
			if l, ok := last[e.Name]; ok {
				j = l
			}
			v.sameName[j], last[e.Name] = int32(i), int32(i)
		} else {
			v.byName[e.Name] = int32(i)
		}
		for k, x := range e.Xattrs {
			if _, err := base64.StdEncoding.DecodeString(x); err != nil {
				v.f.errorAt(e.Name, CheckTOC, "TOC entry #%d %q: xattr %q is not base64: %v", i, e.Name, k, err)
			}
		}
	}
	for i := 0; i < len(es); i++ {
		if es[i].Type != TypeReg {
			continue
		}
		j := i + 1
		for j < len(es) && es[j].Type == TypeChunk {
			j++
		}
		v.planFile(i, es[i:j])
		i = j - 1
	}
}

// planFile checks one regular file with its chunk entries (the c/storage
// rule: a chunk's size is its chunkSize, or what is left of the file when
// that is 0) and records its plan.
func (v *verifier) planFile(i int, group []FileMetadata) {
	e := &group[0]
	p := filePlan{idx: i, name: e.Name, size: e.Size, ok: e.Size >= 0}
	v.info.Files++
	bad := func(format string, a ...any) {
		v.f.errorAt(e.Name, CheckTOC, "%q: "+format, append([]any{e.Name}, a...)...)
		p.ok = false
	}
	if e.Digest != "" {
		d, err := digest.Parse(e.Digest)
		if err != nil {
			bad("invalid digest %q: %v", e.Digest, err)
		} else {
			p.digest = d
		}
	} else if e.Size > 0 {
		bad("a non-empty regular file without a digest")
	}
	if e.Size <= 0 {
		if len(group) > 1 {
			bad("an empty file with %d chunk entries", len(group)-1)
		}
		v.addPlan(p)
		return
	}
	remaining, at := e.Size, int64(0)
	for k := range group {
		c := &group[k]
		size := remaining
		if c.ChunkSize > 0 {
			size = c.ChunkSize
		}
		if c.ChunkOffset != at {
			bad("chunk %d has chunkOffset %d, want %d (the chunks must cover the file exactly)", k, c.ChunkOffset, at)
			break
		}
		if size <= 0 || size > remaining {
			bad("chunk %d has %d bytes, %d of the file's %d are left (the chunks must cover the file exactly)", k, size, remaining, e.Size)
			break
		}
		cp := chunkPlan{idx: i + k, off: c.Offset, size: size, zeros: c.ChunkType == ChunkTypeZeros}
		if v.stargzSem {
			cp.inner = c.InnerOffset
		}
		switch c.ChunkType {
		case ChunkTypeData, ChunkTypeZeros:
		default:
			bad("chunk %d has the unknown chunkType %q", k, c.ChunkType)
		}
		if c.ChunkDigest != "" {
			d, err := digest.Parse(c.ChunkDigest)
			if err != nil {
				bad("chunk %d has an invalid chunkDigest %q: %v", k, c.ChunkDigest, err)
			} else {
				cp.digest = d
			}
		}
		if cp.zeros {
			v.info.ZeroChunks++
		}
		p.chunks = append(p.chunks, cp)
		remaining -= size
		at += size
	}
	v.info.Chunks += len(group)
	if p.ok && remaining != 0 {
		bad("the chunks cover %d of the file's %d bytes", e.Size-remaining, e.Size)
	}
	v.addPlan(p)
}

func (v *verifier) addPlan(p filePlan) {
	v.planOf[p.idx] = int32(len(v.plans))
	for _, c := range p.chunks {
		v.planOf[c.idx] = int32(len(v.plans))
	}
	v.plans = append(v.plans, p)
}

// ---- offsets and layout ----

type frameReq struct {
	off  int64
	plan int
	end  bool // an endOffset: a frame boundary, not necessarily a start
}

// checkLayout computes each chunk's compressed range, checks it against the
// data area and, by walking the blob's frame headers, that it starts at a
// frame; it also checks what follows the data area.
func (v *verifier) checkLayout() error {
	v.dataEnd = v.tocFrame
	if v.tsPos != nil {
		if ts := int64(v.tsPos.offset) - SkippableFrameHeaderSize; ts < v.dataEnd {
			v.dataEnd = ts
		}
	}
	es := v.toc.Entries
	var next []int64 // stargz: nextOffset per TOC index
	if v.stargzSem {
		next = make([]int64, len(es))
		last := v.dataEnd
		for i := len(es) - 1; i >= 0; i-- {
			if es[i].Type == TypeReg || es[i].Type == TypeChunk {
				next[i] = last
			}
			if es[i].Offset != 0 && es[i].InnerOffset == 0 {
				last = es[i].Offset
			}
		}
	}
	offErr := func(p *filePlan, format string, a ...any) {
		if p.ok {
			v.f.errorAt(p.name, CheckOffsets, "%q: "+format, append([]any{p.name}, a...)...)
		}
		p.ok = false
	}
	missingEnd := 0
	var reqs []frameReq
	for pi := range v.plans {
		p := &v.plans[pi]
		if !p.ok || len(p.chunks) == 0 {
			continue
		}
		for k := range p.chunks {
			c := &p.chunks[k]
			switch {
			case v.stargzSem:
				c.end = next[c.idx]
			case k+1 < len(p.chunks):
				c.end = p.chunks[k+1].off
			default:
				c.end = es[p.idx].EndOffset
				if c.end == 0 {
					// c/storage's mergeTocEntries: the next entry's offset, or the TOC.
					c.end = v.dataEnd
					for j := c.idx + 1; j < len(es); j++ {
						if es[j].Offset != 0 {
							c.end = es[j].Offset
							break
						}
					}
					missingEnd++
				}
			}
			switch {
			case c.off <= 0 || c.off >= v.dataEnd:
				offErr(p, "chunk %d: offset %d is outside the data area [1, %d) before the TOC", k, c.off, v.dataEnd)
			case c.end <= c.off || c.end > v.dataEnd:
				offErr(p, "chunk %d: range [%d, %d) is empty or leaves the data area [1, %d)", k, c.off, c.end, v.dataEnd)
			}
			if !p.ok {
				break
			}
		}
		if !p.ok {
			continue
		}
		for k, c := range p.chunks {
			reqs = append(reqs, frameReq{off: c.off, plan: pi})
			if !v.stargzSem && k == len(p.chunks)-1 {
				reqs = append(reqs, frameReq{off: c.end, plan: pi, end: true})
			}
		}
	}
	if missingEnd > 0 {
		v.f.warnf(CheckTOC, "%d non-empty regular file%s without endOffset in a containers-schema TOC (c/storage derives it from the next entry's offset)", missingEnd, plural(missingEnd))
	}
	if !v.stargzSem {
		v.checkOverlaps(offErr)
		// drop requirements of plans that just failed
		reqs = slices.DeleteFunc(reqs, func(r frameReq) bool { return !v.plans[r.plan].ok })
	}
	slices.SortFunc(reqs, func(a, b frameReq) int {
		switch {
		case a.off < b.off:
			return -1
		case a.off > b.off:
			return 1
		}
		return 0
	})
	if err := v.walkFrames(reqs, offErr); err != nil {
		return err
	}

	// The partial-pull view must not decompress more than the limit.
	var budget int64
	for pi := range v.plans {
		p := &v.plans[pi]
		if !p.ok {
			continue
		}
		for _, c := range p.chunks {
			budget = satAdd(budget, satAdd(c.inner, c.size))
		}
	}
	if budget > v.lim.MaxUncompressedSize {
		v.f.errorf(CheckLimitDecompressedSize, "the TOC makes a partial pull decompress %d bytes of file content, more than the limit of %d; file contents are not checked", budget, v.lim.MaxUncompressedSize)
		v.lazySkip = true
	}
	return nil
}

// checkOverlaps reports files whose frame ranges overlap an earlier file's
// (containers dialects: every chunk has its own frames).
func (v *verifier) checkOverlaps(offErr func(*filePlan, string, ...any)) {
	type rng struct {
		off, end int64
		plan     int
	}
	var rs []rng
	for pi := range v.plans {
		p := &v.plans[pi]
		if !p.ok || len(p.chunks) == 0 {
			continue
		}
		rs = append(rs, rng{p.chunks[0].off, p.chunks[len(p.chunks)-1].end, pi})
	}
	slices.SortStableFunc(rs, func(a, b rng) int {
		switch {
		case a.off < b.off:
			return -1
		case a.off > b.off:
			return 1
		}
		return 0
	})
	var maxEnd int64
	var maxPlan int
	for _, r := range rs {
		if r.off < maxEnd {
			offErr(&v.plans[r.plan], "its frames [%d, %d) overlap those of %q", r.off, r.end, v.plans[maxPlan].name)
			continue
		}
		maxEnd, maxPlan = r.end, r.plan
	}
}

// walkFrames walks the blob's frame headers: the data frames up to dataEnd
// (marking which required offsets are frame starts), then the metadata
// frames. Required offsets after a point where the data area stops being a
// frame sequence (reported by the full-pull view) are checked by their
// magic only.
func (v *verifier) walkFrames(reqs []frameReq, offErr func(*filePlan, string, ...any)) error {
	known := map[int64]string{v.tocFrame: "TOC"}
	if v.tsClaimed >= 0 {
		known[v.tsClaimed] = "tar-split"
	}
	if v.footer != nil {
		known[v.size-SkippableFrameHeaderSize-int64(v.footer.Size)] = "footer"
	}
	fr := newFrameReader(v.ra, v.size)
	matched := make([]bool, len(reqs))
	ri := 0
	failedAt := int64(-1)
	var dataAfter int
	var firstDataAfter int64
	unknownSkippable := 0
	off := int64(0)
	inData := true
	tailDone := false
	for steps := 0; ; steps++ {
		if steps%4096 == 0 {
			if err := v.ctx.Err(); err != nil {
				return err
			}
		}
		if inData && off >= v.dataEnd {
			inData = false
		}
		if off >= v.size {
			tailDone = true
			break
		}
		info, err := fr.next(off)
		if err != nil {
			var fe *errFrame
			if !errors.As(err, &fe) {
				return err
			}
			if inData {
				failedAt, off, inData = off, v.dataEnd, false
				continue
			}
			v.f.errorf(CheckTrailingData, "the %d bytes at %d..%d are not zstd frames (%s): a full pull fails on them", v.size-off, off, v.size, fe.reason)
			v.plainEnd = off // the full-pull view stops there; reported here
			break
		}
		if inData {
			if info.End > v.dataEnd {
				v.f.errorf(CheckTrailingData, "the frame at %d ends at %d, inside the metadata frame at %d", off, info.End, v.dataEnd)
				failedAt, off, inData = off, v.dataEnd, false
				continue
			}
			if info.Skippable {
				unknownSkippable++
			} else {
				for ri < len(reqs) && reqs[ri].off < off {
					ri++
				}
				for j := ri; j < len(reqs) && reqs[j].off == off; j++ {
					matched[j] = true
				}
			}
		} else {
			if info.Skippable {
				if _, ok := known[off]; ok {
					delete(known, off)
				} else if ok, err := v.looksLikeFooter(info); err != nil {
					return err
				} else if !ok {
					unknownSkippable++
				}
			} else {
				if dataAfter == 0 {
					firstDataAfter = off
				}
				dataAfter++
			}
		}
		off = info.End
	}
	if unknownSkippable > 0 {
		v.f.warnf(CheckTrailingData, "%d skippable frame%s that are neither the TOC, the tar-split nor the footer", unknownSkippable, plural(unknownSkippable))
	}
	if dataAfter > 0 {
		v.f.errorf(CheckTrailingData, "%d zstd data frame%s after the data area (the first at %d): a full pull decompresses them, a partial pull never sees them", dataAfter, plural(dataAfter), firstDataAfter)
	}
	if tailDone && failedAt < 0 {
		for at, what := range known {
			v.f.errorf(CheckTrailingData, "the %s frame at %d is not where the blob's frame sequence has a frame", what, at)
		}
	}

	limit := v.dataEnd
	if failedAt >= 0 {
		limit = failedAt
	}
	var magic [4]byte
	for j, r := range reqs {
		p := &v.plans[r.plan]
		if !p.ok || matched[j] {
			continue
		}
		if r.end && r.off == v.dataEnd && failedAt < 0 {
			continue
		}
		if r.off < limit {
			if r.end {
				offErr(p, "endOffset %d is not the end of a zstd frame", r.off)
			} else {
				offErr(p, "offset %d is not the start of a zstd frame", r.off)
			}
			continue
		}
		if r.end && r.off == v.dataEnd {
			continue
		}
		if n, err := v.ra.ReadAt(magic[:], r.off); n < len(magic) {
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("reading blob at offset %d: %w", r.off, err)
			}
			magic = [4]byte{}
		}
		if magic != ZstdFrameMagic {
			offErr(p, "offset %d does not point at a zstd frame magic", r.off)
		}
	}
	return nil
}

// looksLikeFooter: a skippable frame of a footer's size whose payload has a
// footer magic where that form has it (a footer not at the blob's end).
func (v *verifier) looksLikeFooter(fr frameInfo) (bool, error) {
	n := fr.End - fr.Start - SkippableFrameHeaderSize
	var at int64
	switch n {
	case FooterSize:
		at = 56
	case IntermediateFooterSize, LegacyFooterSize:
		at = 32
	default:
		return false, nil
	}
	var m [8]byte
	if _, err := v.ra.ReadAt(m[:], fr.Start+SkippableFrameHeaderSize+at); err != nil {
		return false, fmt.Errorf("reading blob at offset %d: %w", fr.Start+SkippableFrameHeaderSize+at, err)
	}
	return string(m[:]) == FooterMagic || string(m[:]) == LegacyFooterMagic, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// satAdd adds non-negative numbers, saturating.
func satAdd(a, b int64) int64 {
	if b > 0 && a > (1<<63-1)-b {
		return 1<<63 - 1
	}
	return a + b
}

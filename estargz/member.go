package estargz

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"hash/crc32"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
	digest "github.com/opencontainers/go-digest"
)

// This file is the compressing half of the writer: gzip members cut into
// parts, compressed on several goroutines and written in order.
//
// A gzip member is a 10-byte header, a raw deflate stream and an 8-byte
// trailer (CRC-32 and length of the uncompressed data). A member whose data is
// longer than partCap is cut into parts of partCap bytes; every part but the
// last is compressed with a sync flush (so it ends on a byte boundary with a
// non-final block) and every part but the first gets the previous 32 KiB as
// its deflate dictionary, so the concatenated parts are one valid deflate
// stream. Each part depends only on its own bytes, its dictionary and the
// level, so the blob is the same whatever the number of workers. partCap is
// part of the output format of this writer: changing it changes blobs.
//
// The TOC member is cut into parts of tocPartCap bytes instead: it is
// compressed after every payload member, when nothing else is left to run
// beside it, so smaller parts spread it over the workers.
const (
	partCap    = 4 << 20
	tocPartCap = 512 << 10
	dictLength = 32 << 10
)

// part is a piece of one gzip member.
type part struct {
	raw    []byte // uncompressed bytes
	dict   []byte // deflate dictionary (the previous part's tail), or nil
	first  bool   // the first part of its member: the gzip header precedes it
	final  bool   // the last part: compressed with a final block, the trailer follows
	level  int
	comp   []byte // compressed bytes (deflate only)
	done   chan struct{}
	weight int64 // cap(raw) when sent, counted against inflightBytes
	// digests are the chunks lying wholly in raw, hashed by the worker that compresses the part.
	digests []digestJob
}

// digestJob asks for the sha256 of raw[from:to] as ent's chunk digest (and, for a file of one
// chunk, as its digest too).
type digestJob struct {
	ent      *TOCEntry
	from, to int
	file     bool
}

// gzipHeader is the 10-byte member header written by Go's compress/gzip (and
// so by upstream): no flags, MTIME 0, XFL 2 for level 9 and 4 for level 1, OS 255.
func gzipHeader(level int) []byte {
	h := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}
	switch level {
	case 9:
		h[8] = 2
	case 1:
		h[8] = 4
	}
	return h
}

type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// deflater compresses parts; one per worker.
type deflater struct {
	level int
	fw    *flate.Writer
	out   appendWriter
	h     hash.Hash
}

func (d *deflater) compress(p *part) {
	for _, j := range p.digests {
		if d.h == nil {
			d.h = sha256.New()
		}
		d.h.Reset()
		d.h.Write(p.raw[j.from:j.to])
		j.ent.ChunkDigest = digest.NewDigest(digest.SHA256, d.h).String()
		if j.file {
			j.ent.Digest = j.ent.ChunkDigest
		}
	}
	if d.fw == nil || d.level != p.level {
		d.fw, _ = flate.NewWriter(nil, p.level) // the level was checked by Encode
		d.level = p.level
	}
	d.out.b = getBuf(len(p.raw)/2 + 4<<10)
	d.fw.ResetDict(&d.out, p.dict)
	d.fw.Write(p.raw)
	if p.final {
		d.fw.Close()
	} else {
		d.fw.Flush()
	}
	p.comp = d.out.b
	d.out.b = nil
}

// A part's uncompressed bytes live in a pooled buffer of one of rawClasses' sizes, chosen from
// the expected length and moved to a larger class when it fills up. Pooled buffers come back
// with their memory already faulted in (a fresh 4 MiB buffer per part cost page faults and
// copies), and a small part does not hold a large buffer while it waits in the pipeline.
// Compressed bytes live in buffers from compPool, of whatever size they grew to.
var (
	rawClasses = [...]int{64 << 10, 512 << 10, partCap}
	rawPools   [len(rawClasses)]sync.Pool
	compPool   sync.Pool
)

// getRaw returns an empty buffer of the smallest class holding min(n, partCap) bytes.
func getRaw(n int) []byte {
	for i, c := range rawClasses {
		if n <= c || i == len(rawClasses)-1 {
			if bp, ok := rawPools[i].Get().(*[]byte); ok {
				return (*bp)[:0]
			}
			return make([]byte, 0, c)
		}
	}
	panic("unreachable")
}

// growRaw moves b into a buffer of a class holding n bytes.
func growRaw(b []byte, n int) []byte {
	nb := append(getRaw(n), b...)
	putRaw(b)
	return nb
}

func putRaw(b []byte) {
	for i, c := range rawClasses {
		if cap(b) == c {
			b = b[:0]
			rawPools[i].Put(&b)
			return
		}
	}
}

// getBuf returns an empty buffer of at least n bytes of capacity.
func getBuf(n int) []byte {
	if bp, ok := compPool.Get().(*[]byte); ok {
		if b := *bp; cap(b) >= n {
			return b[:0]
		}
	}
	return make([]byte, 0, max(n, 64<<10))
}

func putBuf(b []byte) {
	if cap(b) == 0 || cap(b) > 2*partCap {
		return
	}
	b = b[:0]
	compPool.Put(&b)
}

// pipeline compresses parts on workers and writes them in order to bw.
type pipeline struct {
	ctx     context.Context
	bw      *bufio.Writer
	work    chan *part
	order   chan *part
	workers sync.WaitGroup
	done    chan struct{}
	closed  bool
	failed  atomic.Bool // set by the collector when it stops writing
	budget  struct {
		mu   sync.Mutex
		cond sync.Cond
		used int64 // raw buffer bytes of the parts in flight
	}

	// Owned by the collector until done is closed.
	err           error
	diffID        hash.Hash // of every part's raw bytes, in order: the uncompressed blob
	written       int64
	memberOffsets []int64
	crc           uint32
	isize         uint32
}

// Parts in flight (sent, not yet written) are bounded by their buffers' bytes, not by their
// number: parts are written in order, so while one large part is compressed the parts behind
// it finish and wait. With a bound of a few parts, a 4 MiB part at the head stalled the
// encoder behind a queue of finished small ones and left the workers idle a third of the time
// (GOROOT corpus); a byte budget lets hundreds of small parts pass one large one.
const (
	inflightBytes = 6 * partCap
	inflightParts = 512
)

func newPipeline(ctx context.Context, bw *bufio.Writer, workers int) *pipeline {
	p := &pipeline{
		ctx:    ctx,
		bw:     bw,
		work:   make(chan *part, inflightParts+1),
		order:  make(chan *part, inflightParts),
		done:   make(chan struct{}),
		diffID: sha256.New(),
	}
	p.budget.cond.L = &p.budget.mu
	for range workers {
		p.workers.Go(func() {
			var d deflater
			for pt := range p.work {
				d.compress(pt)
				close(pt.done)
			}
		})
	}
	go p.collect()
	return p
}

// send queues a part; it blocks while too many parts are in flight.
func (p *pipeline) send(pt *part) error {
	if p.failed.Load() {
		return errPipelineFailed
	}
	pt.done = make(chan struct{})
	pt.weight = int64(cap(pt.raw))
	b := &p.budget
	b.mu.Lock()
	// The collector releases every part it takes, failed or not, so this wait ends.
	for b.used > 0 && b.used+pt.weight > inflightBytes {
		b.cond.Wait()
	}
	b.used += pt.weight
	b.mu.Unlock()
	select {
	case p.order <- pt:
	case <-p.ctx.Done():
		p.release(pt.weight)
		return p.ctx.Err()
	}
	p.work <- pt
	return nil
}

// release returns a part's weight to the in-flight budget.
func (p *pipeline) release(weight int64) {
	p.budget.mu.Lock()
	p.budget.used -= weight
	p.budget.cond.Signal()
	p.budget.mu.Unlock()
}

func (p *pipeline) collect() {
	defer close(p.done)
	for pt := range p.order {
		<-pt.done
		if p.err == nil {
			p.err = p.ctx.Err()
		}
		if p.err == nil {
			p.err = p.writePart(pt)
		}
		if p.err != nil {
			p.failed.Store(true)
		}
		putRaw(pt.raw)
		putBuf(pt.comp)
		p.release(pt.weight)
	}
}

func (p *pipeline) writePart(pt *part) error {
	if pt.first {
		p.memberOffsets = append(p.memberOffsets, p.written)
		p.crc, p.isize = 0, 0
		if err := p.write(gzipHeader(pt.level)); err != nil {
			return err
		}
	}
	if err := p.write(pt.comp); err != nil {
		return err
	}
	p.crc = crc32.Update(p.crc, crc32.IEEETable, pt.raw)
	p.diffID.Write(pt.raw)
	p.isize += uint32(len(pt.raw))
	if pt.final {
		var tr [8]byte
		binary.LittleEndian.PutUint32(tr[:4], p.crc)
		binary.LittleEndian.PutUint32(tr[4:], p.isize)
		return p.write(tr[:])
	}
	return nil
}

func (p *pipeline) write(b []byte) error {
	n, err := p.bw.Write(b)
	p.written += int64(n)
	return err
}

var errPipelineFailed = errors.New("estargz: writing the blob failed")

// close waits for every queued part to be written and returns the first error.
func (p *pipeline) close() error {
	if !p.closed {
		p.closed = true
		close(p.order)
		close(p.work)
		p.workers.Wait()
		<-p.done
	}
	return p.err
}

// compressMember writes raw as one complete member after the pipeline has
// been closed (used for the TOC), compressing its parts concurrently.
func (p *pipeline) compressMember(raw []byte, level, workers int) (offset int64, err error) {
	parts := splitParts(raw, level, tocPartCap)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, len(parts)) {
		wg.Go(func() {
			var d deflater
			for i := next.Add(1) - 1; i < int64(len(parts)); i = next.Add(1) - 1 {
				d.compress(parts[i])
			}
		})
	}
	wg.Wait()
	offset = p.written
	for _, pt := range parts {
		if err := p.writePart(pt); err != nil {
			return 0, err
		}
	}
	return offset, nil
}

// splitParts cuts one member's bytes into parts of size bytes the way the
// streaming writer cuts them into parts of partCap bytes.
func splitParts(raw []byte, level, size int) []*part {
	var parts []*part
	for i := 0; ; i += size {
		end := min(i+size, len(raw))
		pt := &part{raw: raw[i:end], first: i == 0, final: end == len(raw), level: level}
		if i > 0 {
			pt.dict = raw[max(0, i-dictLength):i]
		}
		parts = append(parts, pt)
		if pt.final {
			return parts
		}
	}
}

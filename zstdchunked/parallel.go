package zstdchunked

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// This file holds the parallel frameOutput. The producer (the goroutine
// running Encode: tar walk, chunker, tar-split) copies every frame's bytes
// into a ring buffer and groups consecutive frames, and the TOC entries that
// follow them, into batches. Workers compress the frames of a batch, each on
// its own zstd.Encoder with the sequential writer's options (a frame's bytes
// depend only on its content and the options), and hash the chunk frames. One
// emitter goroutine takes the batches in order: it writes the compressed
// frames, hashes the uncompressed stream (diff_id) and the files of several
// chunks, and completes the TOC entries, whose offsets are only known there,
// handing them to the tocWriter. Then it releases the batch's part of the
// ring. Memory is bounded by the ring and the number of batches (see
// parTuning); the gzip (or other) input is read ahead on one more goroutine
// (readAhead).
//
// Frames that do not fit the ring (longer than maxFrame) and the last
// frame (Write + ReadFrom) are written on the producer's own encoder after a
// barrier: the producer waits until every batch is emitted and then owns the
// emitter's state until it dispatches the next batch.

// parTuning sizes the parallel writer. Tests shrink it to reach the ring's
// wrap-around and the direct frames with small inputs.
type parTuning struct {
	ring     int // ring buffer bytes
	maxFrame int // longest frame kept in the ring; at most ring/8
	// A batch is dispatched once it holds batchTarget bytes or batchItems
	// items (frames and TOC entries); batches is how many may be in flight.
	batchTarget, batchItems, batches int
}

var defaultTuning = parTuning{ring: 16 << 20, maxFrame: 2 << 20, batchTarget: 256 << 10, batchItems: 512, batches: 32}

// A batch keeps its output buffer for reuse up to this capacity.
const maxKeptOut = 1 << 20

// maxWorkers caps the workers by level. Every worker holds a zstd encoder
// state: match tables of 0.25 MiB (levels 1-2), 1.25 MiB (3-5), 4 MiB (6-9)
// or 34 MiB (10 and more), plus the history of frames longer than a block.
// At level 3 the producer (tar walk, chunker, tar-split) and the gzip reader
// keep up with about three workers, so more only cost memory.
func maxWorkers(level int) int {
	if zstd.EncoderLevelFromZstd(level) == zstd.SpeedBestCompression {
		return 4
	}
	return 8
}

// smallEncoderState: at these levels a worker keeps a second encoder state
// for EncodeAll (see singleBlockMax), which saves a copy of every frame.
func smallEncoderState(level int) bool {
	l := zstd.EncoderLevelFromZstd(level)
	return l == zstd.SpeedFastest || l == zstd.SpeedDefault
}

// singleBlockMax is the encoder's block size at level: a frame shorter than
// this is written by Encoder.Close as EncodeAll writes it (Close compresses
// the buffered bytes with encodeAll when no block was flushed yet, and Write
// flushes one only when the buffer reaches the block size).
// zstd.WithEncoderLevel sets 64 KiB blocks for SpeedFastest; the other
// levels keep the default 128 KiB.
func singleBlockMax(level int) int {
	if zstd.EncoderLevelFromZstd(level) == zstd.SpeedFastest {
		return 64 << 10
	}
	return 128 << 10
}

// Frame item flags.
const (
	fChunk     = 1 << iota // a payload chunk: the worker hashes it
	fFileStart             // the emitter starts the file hash with it
	fFileCont              // the emitter adds it to the file hash
)

// frameItem is one frame of a batch, or (entry >= 0) a TOC entry.
type frameItem struct {
	pos   int   // ring offset of the content
	n     int   // content length in the ring
	zeros int64 // the frame holds this many zero bytes instead (a hole)
	clen  int   // compressed length, set by the worker
	entry int32
	flags uint8
	sum   [sha256.Size]byte // sha256 of a chunk, set by the worker
}

type chunkMeta struct {
	chunkOffset, size int64
	zeros             bool
}

// entryItem is a TOC entry waiting for the offsets and digests of its frames.
type entryItem struct {
	meta   FileMetadata
	c0, c1 int  // its chunks in batch.chunks
	hashed bool // the emitter's file hash holds the file's digest
}

type batch struct {
	items   []frameItem
	entries []entryItem
	chunks  []chunkMeta
	size    int   // content bytes, for the batching decision
	ringEnd int64 // ring position up to which the batch's frames reach
	out     []byte
	err     error
	done    chan struct{}
}

func (b *batch) reset() {
	b.items = b.items[:0]
	clear(b.entries)
	b.entries = b.entries[:0]
	b.chunks = b.chunks[:0]
	b.size = 0
	b.err = nil
}

// emitState is what the emitter owns: the blob writer, the stream hashes and
// the TOC. The producer uses it only after a barrier.
type emitState struct {
	out      *countWriter
	diff     hash.Hash // nil: EncodeOptions.NoDiffID
	usize    int64
	fileHash hash.Hash
	chunks   []chunkPos // chunk frames since the last TOC entry
	toc      *tocWriter
	infos    []chunkInfo
}

type chunkPos struct {
	offset int64
	sum    [sha256.Size]byte
}

func (e *emitState) content(p []byte, flags uint8) {
	if e.diff != nil {
		e.diff.Write(p)
	}
	e.usize += int64(len(p))
	if flags&(fFileStart|fFileCont) != 0 {
		e.fileHash.Write(p)
	}
}

// emit writes one batch.
func (e *emitState) emit(b *batch, ring []byte) error {
	off := e.out.n
	if _, err := e.out.Write(b.out); err != nil {
		return err
	}
	for i := range b.items {
		it := &b.items[i]
		if it.entry >= 0 {
			if err := e.endEntry(&b.entries[it.entry], b.chunks, off); err != nil {
				return err
			}
			continue
		}
		if it.flags&fFileStart != 0 {
			e.fileHash.Reset()
		}
		if it.zeros > 0 {
			for rem := it.zeros; rem > 0; {
				k := min(rem, int64(len(zeroBuf)))
				e.content(zeroBuf[:k], it.flags)
				rem -= k
			}
		} else if it.n > 0 {
			e.content(ring[it.pos:it.pos+it.n], it.flags)
		}
		if it.flags&fChunk != 0 {
			e.chunks = append(e.chunks, chunkPos{offset: off, sum: it.sum})
		}
		off += int64(it.clen)
	}
	return nil
}

// endEntry completes a TOC entry; end is the blob offset after its last frame.
func (e *emitState) endEntry(ent *entryItem, chunks []chunkMeta, end int64) error {
	metas := chunks[ent.c0:ent.c1]
	if len(metas) != len(e.chunks) {
		return errors.New("internal error: chunk frames and chunks disagree")
	}
	main := ent.meta
	if len(metas) > 0 {
		main.Offset = e.chunks[0].offset
		main.EndOffset = end
		if ent.hashed {
			main.Digest = digest.NewDigest(digest.SHA256, e.fileHash).String()
		} else {
			main.Digest = sumDigest(e.chunks[0].sum)
		}
	}
	e.infos = e.infos[:0]
	if len(metas) > 1 {
		for i, m := range metas {
			e.infos = append(e.infos, chunkInfo{
				chunkOffset: m.chunkOffset,
				offset:      e.chunks[i].offset,
				digest:      sumDigest(e.chunks[i].sum),
				size:        m.size,
				zeros:       m.zeros,
			})
		}
	}
	e.chunks = e.chunks[:0]
	return e.toc.add(main, e.infos)
}

func sumDigest(sum [sha256.Size]byte) string {
	return string(digest.SHA256) + ":" + hex.EncodeToString(sum[:])
}

// curFrame is the frame the producer is filling.
type curFrame struct {
	start   int64 // ring position (counted from the first byte ever written) of its first byte
	n       int   // bytes in the ring
	zeros   int64 // a hole: this many zeros, not in the ring
	payload bool  // a frame of a file's payload (a chunk if not empty)
	direct  bool  // written on the producer's encoder, not in the ring
	dstart  int64 // direct: blob offset of the frame
}

// parOutput is the parallel frameOutput.
type parOutput struct {
	tune      parTuning
	singleMax int  // singleBlockMax(level)
	encodeAll bool // workers use EncodeAll for frames of one block
	em        *emitState
	denc      *zstd.Encoder // the producer's encoder for direct frames
	dsum      hash.Hash     // chunk hash of a direct frame

	ring      []byte
	tail      int64 // ring position of the next byte
	committed int64 // ring position after the last frame handed to a batch
	cur       curFrame

	// The first chunk of a file waits here until the producer knows whether
	// the file has more chunks (then the emitter hashes the file) or not (then
	// the chunk digest is the file digest).
	pending    curFrame
	hasPending bool

	started         bool // the current file's payload has begun
	fileHashed      bool // the emitter hashes the current file
	written         int64
	lastChunkOffset int64
	metas           []chunkMeta

	batch            *batch
	free, work, ord  chan *batch
	dispatched       int64
	releasedSnapshot int64 // last value of released seen, to skip the lock

	mu       sync.Mutex
	cond     sync.Cond
	released int64 // ring positions below this are free
	emitted  int64
	emitErr  error

	wg       sync.WaitGroup
	stopped  bool
	ringPool *[]byte
}

// ringPool keeps rings of defaultTuning.ring bytes.
var ringPool = sync.Pool{New: func() any {
	b := make([]byte, defaultTuning.ring)
	return &b
}}

// encoderOptions are c/storage's options (minimal.ZstdWriterWithLevel), plus a smaller history
// buffer: klauspost keeps twice the window (16 MiB at level 3) per encoder state by default, and
// WithLowerEncoderMem one window and a block. That changes when the history is moved down, not
// the bytes (TestLowerEncoderMemSameBytes), and takes about 40 MiB off the live heap of an
// Encode, which otherwise sits near fmtconv's soft memory limit and makes the collector run
// constantly when the tar comes from an allocation-heavy reader (a Nydus source: 4.8 s -> 2.2 s).
func encoderOptions(level int) []zstd.EOption {
	return []zstd.EOption{zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)), zstd.WithLowerEncoderMem(true)}
}

func newParOutput(out *countWriter, newEncoder func(io.Writer) (*zstd.Encoder, error), level, workers int, toc *tocWriter, tune *parTuning) (*parOutput, error) {
	if tune == nil {
		tune = &defaultTuning
	}
	if tune.maxFrame > tune.ring/8 || tune.batches < 2 || tune.batchItems < 1 {
		return nil, errors.New("internal error: bad parallel tuning")
	}
	denc, err := newEncoder(nil)
	if err != nil {
		return nil, err
	}
	encs := make([]*zstd.Encoder, workers)
	for i := range encs {
		// Concurrency 1: each worker compresses one frame at a time, without
		// the encoder's own block goroutines; the bytes are the same.
		if encs[i], err = zstd.NewWriter(nil, append(encoderOptions(level), zstd.WithEncoderConcurrency(1))...); err != nil {
			return nil, err
		}
	}
	o := &parOutput{
		tune:      *tune,
		singleMax: singleBlockMax(level),
		encodeAll: smallEncoderState(level),
		em:        &emitState{out: out, diff: sha256.New(), fileHash: sha256.New(), toc: toc},
		denc:      denc,
		dsum:      sha256.New(),
		free:      make(chan *batch, tune.batches),
		work:      make(chan *batch, tune.batches),
		ord:       make(chan *batch, tune.batches),
		metas:     make([]chunkMeta, 0, 16),
	}
	if tune.ring == defaultTuning.ring {
		o.ringPool = ringPool.Get().(*[]byte)
		o.ring = *o.ringPool
	} else {
		o.ring = make([]byte, tune.ring)
	}
	o.cond.L = &o.mu
	for range tune.batches {
		o.free <- &batch{done: make(chan struct{}, 1)}
	}
	o.batch = <-o.free
	o.wg.Add(1 + workers)
	go o.emitter()
	for _, enc := range encs {
		go o.worker(enc)
	}
	return o, nil
}

// appendWriter appends to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (o *parOutput) worker(enc *zstd.Encoder) {
	defer o.wg.Done()
	defer enc.Close()
	h := sha256.New()
	w := &appendWriter{}
	for b := range o.work {
		// Room for incompressible content: no growth while compressing.
		if need := b.size + 64*len(b.items) + 1024; cap(b.out) < need {
			b.out = make([]byte, 0, need)
		}
		w.b = b.out[:0]
		for i := range b.items {
			it := &b.items[i]
			if it.entry >= 0 {
				continue
			}
			start := len(w.b)
			chunk := it.flags&fChunk != 0
			if chunk {
				h.Reset()
			}
			if o.encodeAll && it.zeros == 0 && it.n > 0 && it.n < o.singleMax {
				// What Write + Close do for a frame of one block, without
				// copying it into the stream encoder's block buffer.
				p := o.ring[it.pos : it.pos+it.n]
				w.b = enc.EncodeAll(p, w.b)
				if chunk {
					h.Write(p)
					h.Sum(it.sum[:0])
				}
				it.clen = len(w.b) - start
				continue
			}
			enc.Reset(w)
			var err error
			if it.zeros > 0 {
				for rem := it.zeros; rem > 0 && err == nil; {
					k := min(rem, int64(len(zeroBuf)))
					_, err = enc.Write(zeroBuf[:k])
					if chunk {
						h.Write(zeroBuf[:k])
					}
					rem -= k
				}
			} else if it.n > 0 {
				p := o.ring[it.pos : it.pos+it.n]
				_, err = enc.Write(p)
				if chunk {
					h.Write(p)
				}
			}
			if cerr := enc.Close(); err == nil {
				err = cerr
			}
			if err != nil && b.err == nil {
				b.err = err
			}
			if chunk {
				h.Sum(it.sum[:0])
			}
			it.clen = len(w.b) - start
		}
		b.out = w.b
		w.b = nil
		b.done <- struct{}{}
	}
}

func (o *parOutput) emitter() {
	defer o.wg.Done()
	for b := range o.ord {
		<-b.done
		o.mu.Lock()
		err := o.emitErr
		o.mu.Unlock()
		if err == nil {
			if err = b.err; err == nil {
				err = o.em.emit(b, o.ring)
			}
		}
		if cap(b.out) > maxKeptOut {
			b.out = nil
		}
		o.mu.Lock()
		if err != nil && o.emitErr == nil {
			o.emitErr = err
		}
		o.released = b.ringEnd
		o.emitted++
		o.cond.Broadcast()
		o.mu.Unlock()
		o.free <- b
	}
}

// dispatch hands the current batch to the workers and the emitter.
func (o *parOutput) dispatch() error {
	b := o.batch
	if len(b.items) == 0 {
		return nil
	}
	o.mu.Lock()
	err := o.emitErr
	o.mu.Unlock()
	if err != nil {
		return err
	}
	b.ringEnd = o.committed
	o.ord <- b
	o.work <- b
	o.dispatched++
	o.batch = <-o.free
	o.batch.reset()
	return nil
}

// barrier dispatches the current batch and waits until every batch is
// written; the producer then owns o.em until it dispatches again.
func (o *parOutput) barrier() error {
	if err := o.dispatch(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.emitted < o.dispatched {
		o.cond.Wait()
	}
	return o.emitErr
}

// waitSpace waits until the ring is free below position need.
func (o *parOutput) waitSpace(need int64) error {
	if need <= o.releasedSnapshot {
		return nil
	}
	if err := o.dispatch(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.released < need && o.emitErr == nil {
		if o.emitted == o.dispatched {
			return errors.New("internal error: ring buffer exhausted")
		}
		o.cond.Wait()
	}
	o.releasedSnapshot = o.released
	return o.emitErr
}

// appendBytes appends p to the current frame.
func (o *parOutput) appendBytes(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if o.cur.zeros > 0 {
		// Not produced by the chunker (a hole is a frame of its own); keep
		// the content right anyway.
		z := o.cur.zeros
		o.cur.zeros = 0
		for z > 0 {
			k := min(z, int64(len(zeroBuf)))
			if err := o.appendBytes(zeroBuf[:k]); err != nil {
				return err
			}
			z -= k
		}
	}
	if !o.cur.direct && o.cur.n+len(p) > o.tune.maxFrame {
		if err := o.toDirect(); err != nil {
			return err
		}
	}
	if o.cur.direct {
		return o.directWrite(p)
	}
	r := int64(len(o.ring))
	pos := o.cur.start % r
	if end := pos + int64(o.cur.n) + int64(len(p)); end > r {
		// Move the frame to the start of the ring: frames are contiguous.
		start := o.cur.start - pos + r
		if err := o.waitSpace(start + int64(o.cur.n) + int64(len(p)) - r); err != nil {
			return err
		}
		copy(o.ring[:o.cur.n], o.ring[pos:pos+int64(o.cur.n)])
		o.cur.start = start
		o.tail = start + int64(o.cur.n)
		pos = 0
	} else if err := o.waitSpace(o.tail + int64(len(p)) - r); err != nil {
		return err
	}
	copy(o.ring[pos+int64(o.cur.n):], p)
	o.cur.n += len(p)
	o.tail += int64(len(p))
	return nil
}

// toDirect moves the current frame to the producer's encoder.
func (o *parOutput) toDirect() error {
	if o.hasPending {
		if err := o.commitPending(true); err != nil {
			return err
		}
	}
	if err := o.barrier(); err != nil {
		return err
	}
	f := &o.cur
	f.direct = true
	f.dstart = o.em.out.n
	o.denc.Reset(o.em.out)
	if f.payload {
		o.dsum.Reset()
		if !o.fileHashed {
			o.em.fileHash.Reset()
			o.fileHashed = true
		}
	}
	r := int64(len(o.ring))
	pos := f.start % r
	n := f.n
	f.n = 0
	if err := o.directWrite(o.ring[pos : pos+int64(n)]); err != nil {
		return err
	}
	// Everything before is written: the whole ring is free.
	o.committed = o.tail
	o.mu.Lock()
	o.released = o.tail
	o.releasedSnapshot = o.tail
	o.mu.Unlock()
	return nil
}

func (o *parOutput) directWrite(p []byte) error {
	if _, err := o.denc.Write(p); err != nil {
		return err
	}
	if o.cur.payload {
		o.dsum.Write(p)
		o.em.content(p, fFileCont)
	} else {
		o.em.content(p, 0)
	}
	return nil
}

// commit adds a finished frame to the current batch.
func (o *parOutput) commit(f curFrame, flags uint8) error {
	it := frameItem{entry: -1, flags: flags}
	b := o.batch
	if f.zeros > 0 {
		it.zeros = f.zeros
		b.size += int(min(f.zeros, int64(o.tune.batchTarget)))
	} else if f.n > 0 {
		it.pos = int(f.start % int64(len(o.ring)))
		it.n = f.n
		o.committed = f.start + int64(f.n)
		b.size += f.n
	}
	b.items = append(b.items, it)
	if b.size >= o.tune.batchTarget || len(b.items) >= o.tune.batchItems {
		return o.dispatch()
	}
	return nil
}

func (o *parOutput) commitPending(fileHash bool) error {
	o.hasPending = false
	flags := uint8(fChunk)
	if fileHash {
		flags |= fFileStart
		o.fileHashed = true
	}
	return o.commit(o.pending, flags)
}

// closeFrame ends the current frame and opens the next one.
func (o *parOutput) closeFrame(chunk bool) error {
	f := o.cur
	o.cur = curFrame{start: o.tail, payload: f.payload}
	if f.direct {
		if err := o.denc.Close(); err != nil {
			return err
		}
		if chunk {
			var s [sha256.Size]byte
			o.dsum.Sum(s[:0])
			o.em.chunks = append(o.em.chunks, chunkPos{offset: f.dstart, sum: s})
		}
		return nil
	}
	if o.hasPending {
		// Another frame follows the file's first chunk: hash the file.
		if err := o.commitPending(true); err != nil {
			return err
		}
	}
	if !chunk {
		return o.commit(f, 0)
	}
	if !o.fileHashed && len(o.metas) == 1 {
		o.pending, o.hasPending = f, true
		return nil
	}
	return o.commit(f, fChunk|fFileCont)
}

// frameOutput

func (o *parOutput) header(p []byte) error { return o.appendBytes(p) }

func (o *parOutput) beginFile() frameSink {
	o.started, o.fileHashed, o.hasPending = false, false, false
	o.written, o.lastChunkOffset = 0, 0
	o.metas = o.metas[:0]
	return o
}

func (o *parOutput) endFile(main FileMetadata) error {
	if o.hasPending {
		if err := o.commitPending(false); err != nil {
			return err
		}
	}
	o.cur.payload = false
	if o.cur.direct {
		// Only an entry without payload ends while its header frame is
		// direct: every earlier item is written, the producer owns o.em
		// (but not o.em.out, which the encoder's goroutines may be writing).
		ent := entryItem{meta: main}
		return o.em.endEntry(&ent, nil, 0)
	}
	b := o.batch
	c0 := len(b.chunks)
	b.chunks = append(b.chunks, o.metas...)
	b.entries = append(b.entries, entryItem{meta: main, c0: c0, c1: len(b.chunks), hashed: o.fileHashed})
	b.items = append(b.items, frameItem{entry: int32(len(b.entries) - 1)})
	if len(b.items) >= o.tune.batchItems {
		return o.dispatch()
	}
	return nil
}

func (o *parOutput) closeLast(trailer io.Reader) error {
	if o.hasPending {
		if err := o.commitPending(false); err != nil {
			return err
		}
	}
	f := &o.cur
	if !f.direct {
		if err := o.barrier(); err != nil {
			return err
		}
		o.denc.Reset(o.em.out)
		if f.zeros > 0 {
			return errors.New("internal error: the last frame is a hole")
		}
		r := int64(len(o.ring))
		pos := f.start % r
		p := o.ring[pos : pos+int64(f.n)]
		if _, err := o.denc.Write(p); err != nil {
			return err
		}
		o.em.content(p, 0)
	}
	if _, err := o.denc.ReadFrom(trailer); err != nil {
		return err
	}
	return o.denc.Close()
}

func (o *parOutput) countTrailer(p []byte) { o.em.content(p, 0) }

func (o *parOutput) end() (digest.Digest, int64, error) {
	if err := o.barrier(); err != nil {
		return "", 0, err
	}
	o.stop()
	return sumOf(o.em.diff), o.em.usize, nil
}

// stop ends the goroutines.
func (o *parOutput) stop() {
	if o.stopped {
		return
	}
	o.stopped = true
	close(o.ord)
	close(o.work)
	o.wg.Wait()
	o.denc.Close()
	if o.ringPool != nil {
		ringPool.Put(o.ringPool)
		o.ringPool, o.ring = nil, nil
	}
}

func (o *parOutput) abort() { o.stop() }

// frameSink

func (o *parOutput) begin() error {
	if o.started {
		return nil
	}
	if err := o.closeFrame(false); err != nil { // the frame holding the headers
		return err
	}
	o.started = true
	o.cur.payload = true
	return nil
}

func (o *parOutput) data(p []byte) error {
	if err := o.begin(); err != nil {
		return err
	}
	o.written += int64(len(p))
	return o.appendBytes(p)
}

func (o *parOutput) zeros(n int64) error {
	if err := o.begin(); err != nil {
		return err
	}
	o.written += n
	if o.cur.n > 0 || o.cur.direct {
		for n > 0 {
			k := min(n, int64(len(zeroBuf)))
			if err := o.appendBytes(zeroBuf[:k]); err != nil {
				return err
			}
			n -= k
		}
		return nil
	}
	o.cur.zeros += n
	return nil
}

func (o *parOutput) cut(zeros bool) error {
	size := o.written - o.lastChunkOffset
	if size > 0 {
		o.metas = append(o.metas, chunkMeta{chunkOffset: o.lastChunkOffset, size: size, zeros: zeros})
	}
	o.lastChunkOffset = o.written
	return o.closeFrame(size > 0)
}

// readAhead reads the input on its own goroutine (for a gzip layer: the
// decompression runs in parallel with the tar walk).
type readAhead struct {
	src     io.Reader
	full    chan raBuf
	free    chan []byte
	quit    chan struct{}
	done    chan struct{}
	cur     []byte
	curBuf  []byte
	err     error
	stopped bool
}

type raBuf struct {
	b   []byte
	n   int
	err error
}

const (
	readAheadBufs    = 4
	readAheadBufSize = 512 << 10
)

func newReadAhead(src io.Reader) *readAhead {
	r := &readAhead{
		src:  src,
		full: make(chan raBuf, readAheadBufs),
		free: make(chan []byte, readAheadBufs),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range readAheadBufs {
		r.free <- make([]byte, readAheadBufSize)
	}
	go r.run()
	return r
}

func (r *readAhead) run() {
	defer close(r.done)
	for {
		var b []byte
		select {
		case b = <-r.free:
		case <-r.quit:
			return
		}
		n, err := io.ReadFull(r.src, b)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case r.full <- raBuf{b, n, err}:
		case <-r.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

func (r *readAhead) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.curBuf != nil {
			r.free <- r.curBuf
			r.curBuf = nil
		}
		x := <-r.full
		r.curBuf, r.cur, r.err = x.b, x.b[:x.n], x.err
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// stop ends the reading goroutine; it waits for a Read in progress.
func (r *readAhead) stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	close(r.quit)
	<-r.done
}

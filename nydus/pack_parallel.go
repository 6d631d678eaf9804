package nydus

import (
	"bytes"
	"crypto/sha256"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// The chunk pipeline of Pack. The tar goroutine reads file data straight into
// batches: consecutive chunks back to back in one buffer, a batch closing when
// the next chunk does not fit (or after maxBatchChunks chunks), so a layer of
// small files costs a few hand-overs per MiB rather than a few per file.
// Workers (PackOptions.Concurrency of them) digest, checksum and compress every
// chunk of a batch into the batch's output buffer. One writer goroutine takes
// the batches in the order they were read and stores their chunks (dedup by
// digest, chunk data written to the blob). A chunk's digest, crc and
// compressed form depend only on its bytes and the options, and the writer
// stores chunks in tar order, so the blob is the same whatever the number of
// workers or GOMAXPROCS.
//
// Memory: a fixed set of batches, each with an input buffer of
// max(chunk size, 1 MiB) and an output buffer about as large, at most 64 MiB of
// them (but at least 2 batches), 2 per worker and 2 more otherwise.

const (
	minBatchBytes  = 1 << 20
	maxBatchChunks = 256
	maxBatchMemory = 64 << 20
)

// chunkBatch is consecutive chunks on their way through the pipeline.
type chunkBatch struct {
	data   []byte // the chunks' bytes back to back
	chunks []batchChunk
	out    []byte // compressed forms back to back, set by the worker
	done   chan struct{}
}

// batchChunk is one chunk of a batch.
type batchChunk struct {
	off, n int     // its bytes: data[off:off+n]
	slot   *wChunk // where the writer records its chunk index
	foff   uint64  // offset in its file
	digest [32]byte
	crc    uint32
	// cstart, cn: its compressed form is out[cstart:cstart+cn]; cn 0: store
	// it raw. zero: a full chunk of zeros, whose compressed form is the
	// pipeline's zeroComp.
	cstart, cn int
	zero       bool
}

type chunkPipeline struct {
	batchBytes int
	cur        *chunkBatch // the batch the tar goroutine fills
	free       chan *chunkBatch
	work       chan *chunkBatch
	ordered    chan *chunkBatch
	workers    sync.WaitGroup
	writerDone chan struct{}
	failed     atomic.Bool // the writer failed: stop reading

	// A full chunk of zeros (sparse or preallocated files) is digested and
	// compressed once per Pack.
	zeros      []byte
	zeroOnce   sync.Once
	zeroDigest [32]byte
	zeroCRC    uint32
	zeroComp   []byte // nil: stored raw

	// A worker's zstd encoder, warm (its tables allocated), handed over when
	// the workers end for the ci array and the bootstrap.
	spare    chan *zstd.Encoder
	spareEnc *zstd.Encoder
}

// newZstd is the chunk and section encoder: one frame per EncodeAll, no
// checksum; nil if level is invalid.
func newZstd(level zstd.EncoderLevel) *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	if err != nil {
		return nil
	}
	return enc
}

// sectionEncoder returns a worker's encoder if it is of level (nil otherwise:
// compressSection makes one).
func (p *packer) sectionEncoder(level zstd.EncoderLevel) *zstd.Encoder {
	if p.pipe.spareEnc != nil && p.cfg.zstdLevel == level {
		return p.pipe.spareEnc
	}
	return nil
}

// chunkCompressor compresses one chunk into dst's spare capacity (or
// returns nil); one per worker.
type chunkCompressor func(dst, src []byte) []byte

// newCompressor returns a worker's compressor and, for zstd, its encoder.
func (p *packer) newCompressor() (chunkCompressor, *zstd.Encoder) {
	switch p.cfg.compressor {
	case CompressZstd:
		enc := newZstd(p.cfg.zstdLevel)
		return func(dst, src []byte) []byte { return enc.EncodeAll(src, dst) }, enc
	case CompressLZ4Block:
		lz := new(lz4Encoder)
		return lz.compressBlock, nil
	}
	return nil, nil
}

func (p *packer) start() {
	cs := int(p.cfg.chunkSize)
	q := &p.pipe
	q.batchBytes = max(cs, minBatchBytes)
	q.zeros = make([]byte, cs)
	batches := min(2*p.cfg.workers+2, max(2, maxBatchMemory/(2*q.batchBytes)))
	q.free = make(chan *chunkBatch, batches)
	q.work = make(chan *chunkBatch, batches)
	q.ordered = make(chan *chunkBatch, batches)
	q.writerDone = make(chan struct{})
	q.spare = make(chan *zstd.Encoder, 1)
	for range batches {
		q.free <- &chunkBatch{done: make(chan struct{}, 1)}
	}
	p.store = chunkStore{bw: p.bw, byDigest: map[[32]byte]uint32{}}
	for range p.cfg.workers {
		q.workers.Add(1)
		go p.worker()
	}
	go p.writer()
}

// stop hands over the last batch and waits for the workers and the writer.
func (p *packer) stop() {
	q := &p.pipe
	q.dispatch()
	close(q.work)
	close(q.ordered)
	q.workers.Wait()
	<-q.writerDone
	select {
	case q.spareEnc = <-q.spare:
	default:
	}
}

// batch returns the batch the next chunk of n bytes goes into.
func (q *chunkPipeline) batch(n int) *chunkBatch {
	if b := q.cur; b != nil && len(b.data)+n <= q.batchBytes && len(b.chunks) < maxBatchChunks {
		return b
	}
	q.dispatch()
	b := <-q.free
	if b.data == nil {
		b.data = make([]byte, 0, q.batchBytes)
	}
	b.data, b.chunks = b.data[:0], b.chunks[:0]
	q.cur = b
	return b
}

// dispatch hands the current batch to the workers and the writer.
func (q *chunkPipeline) dispatch() {
	b := q.cur
	if b == nil {
		return
	}
	q.cur = nil
	if len(b.chunks) == 0 {
		q.free <- b
		return
	}
	q.ordered <- b
	q.work <- b
}

// readChunk reads the next n bytes of a file from r into the pipeline.
func (p *packer) readChunk(r io.Reader, n int, slot *wChunk, foff uint64) error {
	b := p.pipe.batch(n)
	off := len(b.data)
	b.data = b.data[:off+n]
	if _, err := io.ReadFull(r, b.data[off:]); err != nil {
		b.data = b.data[:off]
		return err
	}
	b.chunks = append(b.chunks, batchChunk{off: off, n: n, slot: slot, foff: foff})
	return nil
}

// digest fills in c's digest and crc.
func (p *packer) digestChunk(c *batchChunk, data []byte) {
	if p.cfg.digester == DigestSHA256 {
		c.digest = sha256.Sum256(data)
	} else {
		c.digest = blake3Sum256(data)
	}
	c.crc = crc32c(data)
}

func (p *packer) worker() {
	defer p.pipe.workers.Done()
	q := &p.pipe
	compress, enc := p.newCompressor()
	defer func() {
		if enc != nil {
			select {
			case q.spare <- enc:
			default:
			}
		}
	}()
	for b := range q.work {
		if compress != nil {
			// Room for every chunk's compressed form: kept only when smaller
			// than the chunk, so the data's length bounds it.
			if need := len(b.data) + len(b.data)/128 + 1024; cap(b.out) < need {
				b.out = make([]byte, 0, need)
			}
		}
		b.out = b.out[:0]
		for i := range b.chunks {
			c := &b.chunks[i]
			data := b.data[c.off : c.off+c.n]
			c.cstart, c.cn, c.zero = 0, 0, false
			if c.n == len(q.zeros) && bytes.Equal(data, q.zeros) {
				q.zeroOnce.Do(func() {
					z := batchChunk{n: len(q.zeros)}
					p.digestChunk(&z, q.zeros)
					q.zeroDigest, q.zeroCRC = z.digest, z.crc
					if compress != nil {
						if out := compress(nil, q.zeros); out != nil && len(out) < len(q.zeros) {
							q.zeroComp = bytes.Clone(out)
						}
					}
				})
				c.digest, c.crc, c.zero = q.zeroDigest, q.zeroCRC, true
				continue
			}
			p.digestChunk(c, data)
			if compress == nil {
				continue
			}
			start := len(b.out)
			if out := compress(b.out[start:start], data); out != nil && len(out) < len(data) {
				// out is b.out's spare capacity unless the encoder had to
				// grow it: then this copies it in.
				b.out = append(b.out, out...)
				c.cstart, c.cn = start, len(out)
			}
		}
		b.done <- struct{}{}
	}
}

// writer stores the batches' chunks in the order they were read.
func (p *packer) writer() {
	q := &p.pipe
	defer close(q.writerDone)
	for b := range q.ordered {
		<-b.done
		for i := range b.chunks {
			c := &b.chunks[i]
			var comp []byte
			switch {
			case c.zero:
				comp = q.zeroComp
			case c.cn > 0:
				comp = b.out[c.cstart : c.cstart+c.cn]
			}
			p.store.add(c, b.data[c.off:c.off+c.n], comp)
		}
		if p.store.err != nil || p.bw.err != nil {
			q.failed.Store(true)
		}
		q.free <- b
	}
}

// chunkStore is the writer side of the pipeline: it dedups chunks by digest
// and writes new ones, in submission order.
type chunkStore struct {
	bw       *blobWriter
	byDigest map[[32]byte]uint32
	chunks   []ChunkInfo
	coff     uint64 // compressed offset = bytes of chunk data written
	uoff     uint64 // uncompressed (raw device) offset, 4 KiB aligned
	raw      int
	err      error
}

// add stores chunk c of bytes data; comp is its compressed form (nil: store
// it raw).
func (s *chunkStore) add(c *batchChunk, data, comp []byte) {
	if s.err != nil || s.bw.err != nil {
		return
	}
	if idx, ok := s.byDigest[c.digest]; ok {
		*c.slot = wChunk{ci: idx}
		return
	}
	payload, flags := data, ChunkHasCRC32
	if comp != nil {
		payload, flags = comp, flags|ChunkCompressed
	} else {
		s.raw++
	}
	switch {
	case len(s.chunks) >= MaxChunksPerBlob:
		s.err = packErr(CodeTooLarge, "", "more than %d unique chunks in one blob", MaxChunksPerBlob)
	case s.coff+uint64(len(payload)) > 1<<40:
		s.err = packErr(CodeTooLarge, "", "more than 1 TiB of chunk data in one blob")
	case s.uoff+uint64(c.n) > 1<<44:
		s.err = packErr(CodeTooLarge, "", "more than 16 TiB of uncompressed data in one blob")
	}
	if s.err != nil {
		return
	}
	idx := uint32(len(s.chunks))
	s.chunks = append(s.chunks, ChunkInfo{
		Digest: c.digest, Flags: flags, CompressedSize: uint32(len(payload)), UncompressedSize: uint32(c.n),
		CompressedOffset: s.coff, UncompressedOffset: s.uoff, FileOffset: c.foff, Index: idx, CRC32: c.crc,
	})
	s.byDigest[c.digest] = idx
	s.bw.Write(payload)
	s.coff += uint64(len(payload))
	s.uoff = (s.uoff + uint64(c.n) + BlockSize - 1) &^ (BlockSize - 1)
	*c.slot = wChunk{ci: idx}
}

package zstdchunked

import (
	"bytes"
	"errors"
	"io"

	jsoniter "github.com/json-iterator/go"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// tocWriter writes the TOC frame while the layer is written: each TOC entry
// is marshalled when its offsets are known and the JSON goes straight into
// the TOC's zstd encoder, so the end of Encode does not wait for a whole
// TOC to be marshalled and compressed, and neither the entries nor the JSON
// are kept. The JSON is byte for byte
// jsoniter.ConfigCompatibleWithStandardLibrary.Marshal(TOC{...}) (a
// struct's fields in order, an array's elements by the element encoder), and
// the frame the one Write + Close of that JSON give (block splitting
// depends only on the bytes).
type tocWriter struct {
	enc     *zstd.Encoder
	out     bytes.Buffer
	n       int64 // JSON bytes
	count   int   // entries
	stream  *jsoniter.Stream
	prefix  []byte
	scratch []FileMetadata
	err     error
}

var tocJSON = jsoniter.ConfigCompatibleWithStandardLibrary

// tocParts returns the JSON of a TOC with no entries, cut around the
// entries array: what comes before it and what comes after it.
func tocParts(tarSplitDigest digest.Digest) (before, after []byte, err error) {
	b, err := tocJSON.Marshal(TOC{Version: 1, Entries: []FileMetadata{}, TarSplitDigest: tarSplitDigest})
	if err != nil {
		return nil, nil, err
	}
	key := []byte(`"entries":[]`)
	i := bytes.Index(b, key)
	if i < 0 {
		return nil, nil, errors.New("internal error: unexpected TOC JSON")
	}
	i += len(key) - 2
	return b[:i], b[i+2:], nil
}

func newTOCWriter(newEncoder func(io.Writer) (*zstd.Encoder, error)) (*tocWriter, error) {
	t := &tocWriter{stream: tocJSON.BorrowStream(nil)}
	var err error
	if t.enc, err = newEncoder(&t.out); err != nil {
		return nil, err
	}
	if t.prefix, _, err = tocParts(""); err != nil {
		return nil, err
	}
	t.write(t.prefix)
	return t, nil
}

func (t *tocWriter) write(p []byte) {
	if t.err != nil {
		return
	}
	_, t.err = t.enc.Write(p)
	t.n += int64(len(p))
}

// add appends the TOC entries of one tar entry (see tocEntries).
func (t *tocWriter) add(main FileMetadata, chunks []chunkInfo) error {
	t.scratch = tocEntries(t.scratch[:0], main, chunks)
	for i := range t.scratch {
		t.stream.Reset(nil)
		if t.count == 0 {
			t.stream.WriteRaw("[")
		} else {
			t.stream.WriteRaw(",")
		}
		t.stream.WriteVal(&t.scratch[i])
		if t.stream.Error != nil {
			return t.stream.Error
		}
		t.write(t.stream.Buffer())
		t.count++
	}
	clear(t.scratch)
	return t.err
}

// finish completes the JSON and returns the compressed TOC and the JSON's
// length.
func (t *tocWriter) finish(tarSplitDigest digest.Digest) ([]byte, int64, error) {
	before, after, err := tocParts(tarSplitDigest)
	if err != nil {
		return nil, 0, err
	}
	if !bytes.Equal(before, t.prefix) {
		return nil, 0, errors.New("internal error: TOC JSON prefix changed")
	}
	if t.count == 0 {
		// No entries: a nil slice, marshalled as null.
		b, err := tocJSON.Marshal(TOC{Version: 1, TarSplitDigest: tarSplitDigest})
		if err != nil {
			return nil, 0, err
		}
		if !bytes.HasPrefix(b, t.prefix) {
			return nil, 0, errors.New("internal error: unexpected TOC JSON")
		}
		t.write(b[len(t.prefix):])
	} else {
		t.write([]byte("]"))
		t.write(after)
	}
	if t.err != nil {
		return nil, 0, t.err
	}
	if err := t.enc.Close(); err != nil {
		return nil, 0, err
	}
	t.release()
	return t.out.Bytes(), t.n, nil
}

// release ends the encoder; harmless after finish.
func (t *tocWriter) release() {
	if t.enc != nil {
		t.enc.Close()
		t.enc = nil
	}
	if t.stream != nil {
		tocJSON.ReturnStream(t.stream)
		t.stream = nil
	}
}

// tocEntries appends the TOC entries of one tar entry to dst: main, and for
// a file of several chunks one "chunk" entry per further chunk, the chunk
// fields going to main for chunk 0 (minimal.NewFileMetadata + the
// compressor's chunk loop).
func tocEntries(dst []FileMetadata, main FileMetadata, chunks []chunkInfo) []FileMetadata {
	first := len(dst)
	dst = append(dst, main)
	for i := 1; i < len(chunks); i++ {
		dst = append(dst, FileMetadata{Type: TypeChunk, Name: main.Name, ChunkOffset: chunks[i].chunkOffset})
	}
	if len(chunks) > 1 {
		for i := range chunks {
			e := &dst[first+i]
			e.ChunkSize = chunks[i].size
			e.Offset = chunks[i].offset
			e.ChunkDigest = chunks[i].digest
			if chunks[i].zeros {
				e.ChunkType = ChunkTypeZeros
			}
		}
	}
	return dst
}

package estargz

import (
	"archive/tar"
	"io"

	"github.com/fmtconv/fmtconv/internal/gunzip"
)

// DecodeOptions configure Decode.
type DecodeOptions struct {
	// KeepEstargzFiles returns the gunzipped stream unchanged: the landmark,
	// the stargz.index.json entry and the end-of-archive blocks after it are
	// all there (its digest is the eStargz diff_id).
	KeepEstargzFiles bool
}

// Decode returns the tar stream of an eStargz blob, read from r as it is
// consumed (inflated up to a few MiB ahead of the reader). Close it to stop
// the inflating.
//
// By default the result is an ordinary layer: the stargz.index.json entry and
// the .prefetch.landmark / .no.prefetch.landmark files are removed, every other
// entry is copied byte for byte (headers, data and padding as stored), and two
// zero blocks end the archive. Whatever follows the end of the archive in the
// stream is read (so gzip errors surface) and dropped.
func Decode(r io.Reader, opts DecodeOptions) (io.ReadCloser, error) {
	// Inflated ahead on a goroutine of its own (until Close), beside the
	// tar filtering that reads it.
	zr, err := gunzip.NewParallelReader(r)
	if err != nil {
		return nil, err
	}
	if opts.KeepEstargzFiles {
		return zr, nil
	}
	d := &decoder{zr: zr, rec: &recorder{r: zr}, scratch: make([]byte, 64<<10)}
	d.tr = tar.NewReader(d.rec)
	return d, nil
}

// recorder counts what the tar reader consumes and, while on, keeps a copy.
type recorder struct {
	r   io.Reader
	on  bool
	buf []byte
	n   int64
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.on {
		r.buf = append(r.buf, p[:n]...)
	}
	return n, err
}

func (r *recorder) start() { r.on, r.buf = true, r.buf[:0] }
func (r *recorder) stop() []byte {
	r.on = false
	return r.buf
}

type decoder struct {
	zr        io.ReadCloser // the uncompressed stream (a gzip reader, or a caller's tar stream for StripTar)
	rec       *recorder
	tr        *tar.Reader
	scratch   []byte
	out       []byte // bytes to hand out before anything else
	inPayload bool   // the current entry is kept and its data is being copied
	prevKept  bool   // the previous entry was kept (so its padding is too)
	err       error  // returned once out is empty (io.EOF at the end)
}

var eofBlocks [1024]byte

func (d *decoder) Read(p []byte) (int, error) {
	for {
		if len(d.out) > 0 {
			n := copy(p, d.out)
			d.out = d.out[n:]
			return n, nil
		}
		if d.err != nil {
			return 0, d.err
		}
		if d.inPayload {
			// Copy the data as stored (for a sparse file, its map and
			// fragments), not as archive/tar expands it.
			d.rec.start()
			_, err := d.tr.Read(d.scratch)
			d.out = d.rec.stop()
			if err == io.EOF {
				d.inPayload = false
			} else if err != nil {
				d.err = err
			}
			continue
		}
		d.advance()
	}
}

// advance reads the next header and queues what to output for it.
func (d *decoder) advance() {
	start := d.rec.n
	pad := int(-start & 511) // the previous entry's padding, read by Next
	d.rec.start()
	h, err := d.tr.Next()
	raw := d.rec.stop()
	if pad > len(raw) {
		pad = len(raw)
	}
	if err == io.EOF {
		if d.prevKept {
			d.out = append(raw[:pad:pad], eofBlocks[:]...)
		} else {
			d.out = eofBlocks[:]
		}
		if _, err := io.Copy(io.Discard, d.zr); err != nil {
			d.err = err
			return
		}
		d.err = io.EOF
		return
	}
	if err != nil {
		d.err = err
		return
	}
	var keepPad []byte
	if d.prevKept {
		keepPad = raw[:pad]
	}
	switch CleanEntryName(h.Name) {
	case TOCTarName, PrefetchLandmark, NoPrefetchLandmark:
		d.prevKept = false
		d.out = keepPad
		// Consume the data now so that the next Next reads only padding
		// and headers.
		if _, err := io.Copy(io.Discard, d.tr); err != nil {
			d.err = err
		}
		return
	}
	d.prevKept = true
	d.inPayload = true
	d.out = raw
	if keepPad == nil {
		d.out = raw[pad:]
	}
}

func (d *decoder) Close() error { return d.zr.Close() }

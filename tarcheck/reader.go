package tarcheck

import (
	"context"
	"errors"
	"hash"
	"io"
)

// errLimit is what countingReader returns to archive/tar when a limit stops
// the scan; Scan looks at the reader's flags, not at the error, to tell why.
var errLimit = errors.New("tarcheck: limit reached")

// countingReader sits between the layer stream and archive/tar. It counts
// and hashes every byte read, remembers I/O errors and EOF, enforces
// MaxTotalSize, checks the context, and while archive/tar parses the headers
// of one entry (inside Reader.Next) captures those raw bytes up to a budget,
// so that the headers of one entry can neither exhaust memory nor loop for
// ever, and so that Scan can look at the raw blocks afterwards.
type countingReader struct {
	r   io.Reader
	ctx context.Context
	h   hash.Hash

	n        int64 // bytes read from r
	maxTotal int64 // 0: unlimited
	totalHit bool  // more than maxTotal bytes were there
	eof      bool  // r said io.EOF
	err      error // I/O error from r, or the context's error

	capturing bool
	capStart  int64 // stream offset where the capture starts (after padding)
	capBudget int64 // bytes allowed from capStart on
	budgetHit bool
	capBuf    []byte
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.totalHit || c.budgetHit {
		return 0, errLimit
	}
	if c.eof {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	if c.capturing {
		room := c.capStart + c.capBudget - c.n
		if room <= 0 {
			c.budgetHit = true
			return 0, errLimit
		}
		if int64(len(p)) > room {
			p = p[:room]
		}
	}
	if c.maxTotal > 0 {
		room := c.maxTotal - c.n
		if room <= 0 {
			// Probe for one byte beyond the limit.
			var one [1]byte
			n, err := io.ReadFull(c.r, one[:])
			if n > 0 {
				c.account(one[:n])
				c.totalHit = true
				return 0, errLimit
			}
			return 0, c.noteErr(err)
		}
		if int64(len(p)) > room {
			p = p[:room]
		}
	}
	n, err := c.r.Read(p)
	if n < 0 || n > len(p) {
		n, err = 0, errors.New("tarcheck: source reader returned an invalid count")
	}
	c.account(p[:n])
	if err != nil {
		return n, c.noteErr(err)
	}
	return n, nil
}

func (c *countingReader) noteErr(err error) error {
	if err == io.EOF {
		c.eof = true
		return io.EOF
	}
	c.err = err
	return err
}

func (c *countingReader) account(b []byte) {
	if len(b) == 0 {
		return
	}
	c.h.Write(b)
	if c.capturing {
		skip := c.capStart - c.n
		if skip < int64(len(b)) {
			if skip < 0 {
				skip = 0
			}
			c.capBuf = append(c.capBuf, b[skip:]...)
		}
	}
	c.n += int64(len(b))
}

// beginCapture starts capturing raw header bytes from stream offset start
// (bytes before it, the previous entry's padding, are not kept).
func (c *countingReader) beginCapture(start, budget int64) {
	c.capturing = true
	c.capStart = start
	c.capBudget = budget
	c.capBuf = c.capBuf[:0]
}

// endCapture stops capturing and returns the captured bytes (valid until the
// next beginCapture).
func (c *countingReader) endCapture() []byte {
	c.capturing = false
	return c.capBuf
}

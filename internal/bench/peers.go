package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	"go.podman.io/storage/pkg/chunked/compressor"
)

// The peers whose Go libraries have no command line here run in a child
// process of this binary (so that their peak RSS is theirs alone), chosen by
// a hidden first argument. Each prints one childResult as JSON on stdout.

const (
	subCompressor   = "__compressor"    // LEVEL LAYER OUT
	subEstargzBuild = "__estargz-build" // LEVEL LAYER OUT
	subEstargzCheck = "__estargz-check" // BLOB TOCDIGEST
)

// childResult is what a library child reports.
type childResult struct {
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Message     string            `json:"message,omitempty"`
}

// runChild runs a hidden subcommand and exits; it returns false when args
// name none.
func runChild(args []string) bool {
	if len(args) == 0 {
		return false
	}
	var res *childResult
	var err error
	switch args[0] {
	case subCompressor:
		res, err = childCompressor(args[1:])
	case subEstargzBuild:
		res, err = childEstargzBuild(args[1:])
	case subEstargzCheck:
		res, err = childEstargzCheck(args[1:])
	default:
		return false
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", args[0], err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

func levelArgs(args []string, n int) (int, error) {
	if len(args) != n {
		return 0, fmt.Errorf("want %d arguments, got %d", n, len(args))
	}
	return strconv.Atoi(args[0])
}

// hashedFile is an output file that counts and hashes what is written.
type hashedFile struct {
	f   *os.File
	bw  *bufio.Writer
	h   digest.Digester
	cnt counter
}

func createHashed(path string) (*hashedFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	o := &hashedFile{f: f, h: digest.SHA256.Digester()}
	o.bw = bufio.NewWriterSize(io.MultiWriter(f, o.h.Hash(), &o.cnt), 1<<20)
	return o, nil
}

func (o *hashedFile) Write(p []byte) (int, error) { return o.bw.Write(p) }

func (o *hashedFile) finish(ann map[string]string) (*childResult, error) {
	if err := o.bw.Flush(); err != nil {
		o.f.Close()
		return nil, err
	}
	if err := o.f.Close(); err != nil {
		return nil, err
	}
	return &childResult{Digest: o.h.Digest().String(), Size: o.cnt.n, Annotations: ann}, nil
}

// childCompressor: go.podman.io/storage's zstd:chunked compressor on the
// gunzipped layer, as fmtconv does it (klauspost gzip in, blob to a file,
// digest of the blob).
func childCompressor(args []string) (*childResult, error) {
	level, err := levelArgs(args, 3)
	if err != nil {
		return nil, err
	}
	in, err := os.Open(args[1])
	if err != nil {
		return nil, err
	}
	defer in.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(in, 1<<20))
	if err != nil {
		return nil, err
	}
	out, err := createHashed(args[2])
	if err != nil {
		return nil, err
	}
	md := map[string]string{}
	w, err := compressor.ZstdCompressor(out, md, &level)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(w, zr); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.finish(md)
}

// childEstargzBuild: estargz.Build on the gzip layer with 4 MiB chunks and
// parallelism 2 (its temporary files go to $TMPDIR).
func childEstargzBuild(args []string) (*childResult, error) {
	level, err := levelArgs(args, 3)
	if err != nil {
		return nil, err
	}
	in, err := os.Open(args[1])
	if err != nil {
		return nil, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, err
	}
	blob, err := estargz.Build(io.NewSectionReader(in, 0, st.Size()),
		estargz.WithChunkSize(4<<20), estargz.WithCompressionLevel(level), estargz.WithParallelism(2))
	if err != nil {
		return nil, err
	}
	defer blob.Close()
	out, err := createHashed(args[2])
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(out, blob); err != nil {
		return nil, err
	}
	if err := blob.Close(); err != nil {
		return nil, err
	}
	usize, err := blob.UncompressedSize()
	if err != nil {
		return nil, err
	}
	return out.finish(map[string]string{
		"containerd.io/snapshot/stargz/toc.digest": blob.TOCDigest().String(),
		"io.containers.estargz.uncompressed-size":  strconv.FormatInt(usize, 10),
		"diffID": blob.DiffID().String(),
	})
}

// childEstargzCheck opens an eStargz blob with the upstream reader, verifies
// its TOC against the TOC digest and reads every chunk of every regular
// file through the upstream chunk verifiers.
func childEstargzCheck(args []string) (*childResult, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("want BLOB TOCDIGEST")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	r, err := estargz.Open(io.NewSectionReader(f, 0, st.Size()))
	if err != nil {
		return nil, fmt.Errorf("estargz.Open: %w", err)
	}
	v, err := r.VerifyTOC(digest.Digest(args[1]))
	if err != nil {
		return nil, fmt.Errorf("VerifyTOC: %w", err)
	}
	files, bytes := 0, int64(0)
	var walk func(e *estargz.TOCEntry) error
	walk = func(e *estargz.TOCEntry) (werr error) {
		e.ForeachChild(func(_ string, c *estargz.TOCEntry) bool {
			if c.Type == "reg" {
				fr, err := r.OpenFile(c.Name)
				if err != nil {
					werr = err
					return false
				}
				for off := int64(0); off < c.Size; {
					ce, ok := r.ChunkEntryForOffset(c.Name, off)
					if !ok {
						werr = fmt.Errorf("%s: no chunk at offset %d", c.Name, off)
						return false
					}
					cv, err := v.Verifier(ce)
					if err != nil {
						werr = fmt.Errorf("%s: %w", c.Name, err)
						return false
					}
					if _, err := io.Copy(cv, io.NewSectionReader(fr, ce.ChunkOffset, ce.ChunkSize)); err != nil {
						werr = fmt.Errorf("%s: %w", c.Name, err)
						return false
					}
					if !cv.Verified() {
						werr = fmt.Errorf("%s: chunk at %d does not match its digest", c.Name, ce.ChunkOffset)
						return false
					}
					off += ce.ChunkSize
				}
				files++
				bytes += c.Size
			}
			werr = walk(c)
			return werr == nil
		})
		return werr
	}
	root, ok := r.Lookup("")
	if !ok {
		return nil, fmt.Errorf("no root entry")
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	return &childResult{Message: fmt.Sprintf("%d regular files, %d bytes verified", files, bytes)}, nil
}

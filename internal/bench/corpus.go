package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// corpusVersion changes whenever the tar or layout generators change, so a
// cached corpus built by an older generator is rebuilt.
const corpusVersion = 1

// refName is the tag of the one image in every corpus layout.
const refName = "x"

// fixedMtime is every entry's modification time (2000-01-01T00:00:00Z).
var fixedMtime = time.Unix(946684800, 0).UTC()

// corpus is a one-layer OCI layout whose gzip layer holds a deterministic tar.
type corpus struct {
	Version     int     `json:"version"`
	Source      string  `json:"source"`      // what the tar holds
	Gzip        string  `json:"gzip"`        // the command that compressed the layer
	Entries     int     `json:"entries"`     // tar entries
	TarSize     int64   `json:"tarSize"`     // uncompressed tar bytes
	DiffID      string  `json:"diffID"`      // sha256 of the tar
	LayerDigest string  `json:"layerDigest"` // the gzip blob
	LayerSize   int64   `json:"layerSize"`
	BuildSecs   float64 `json:"buildSecs"`

	Dir string `json:"-"` // the OCI layout
}

// Ref is the image reference of the corpus for fmtconv and skopeo.
func (c *corpus) Ref() string { return "oci:" + c.Dir + ":" + refName }

// LayerPath is the gzip layer blob's file.
func (c *corpus) LayerPath() string {
	return filepath.Join(c.Dir, "blobs", "sha256", strings.TrimPrefix(c.LayerDigest, "sha256:"))
}

// tarGen writes a tar stream and returns how many entries it wrote.
type tarGen func(w io.Writer) (int, error)

// loadOrBuildCorpus returns the corpus cached in dir when it was built from
// the same source description by this generator version, and otherwise
// builds it: gen's tar stream is piped through gz (a gzip command reading
// stdin) into the layer blob, hashed on the way; the tar itself never
// touches the disk and is never held in memory.
func loadOrBuildCorpus(dir, source string, gz []string, gen tarGen, regen bool) (*corpus, error) {
	metaPath := filepath.Join(dir, "corpus.json")
	if !regen {
		if b, err := os.ReadFile(metaPath); err == nil {
			var c corpus
			if json.Unmarshal(b, &c) == nil && c.Version == corpusVersion && c.Source == source && c.Gzip == strings.Join(gz, " ") {
				c.Dir = filepath.Join(dir, "layout")
				if st, err := os.Stat(c.LayerPath()); err == nil && st.Size() == c.LayerSize {
					return &c, nil
				}
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	layout := filepath.Join(dir, "layout")
	blobs := filepath.Join(layout, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	c := &corpus{Version: corpusVersion, Source: source, Gzip: strings.Join(gz, " "), Dir: layout}

	tmp := filepath.Join(blobs, "layer.tmp")
	out, err := os.Create(tmp)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	layerHash, tarHash := sha256.New(), sha256.New()
	layerCount, tarCount := &counter{}, &counter{}
	cmd := exec.Command(gz[0], gz[1:]...)
	cmd.Stdout = io.MultiWriter(out, layerHash, layerCount)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", c.Gzip, err)
	}
	entries, genErr := gen(io.MultiWriter(stdin, tarHash, tarCount))
	stdin.Close()
	if err := cmd.Wait(); err != nil || genErr != nil {
		return nil, fmt.Errorf("building the corpus layer: %w", errors.Join(genErr, err))
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	c.Entries, c.TarSize, c.DiffID = entries, tarCount.n, hexDigest(tarHash)
	c.LayerDigest, c.LayerSize = hexDigest(layerHash), layerCount.n
	if err := os.Rename(tmp, c.LayerPath()); err != nil {
		return nil, err
	}
	if err := writeLayout(layout, c); err != nil {
		return nil, err
	}
	c.BuildSecs = time.Since(start).Seconds()
	b, _ := json.MarshalIndent(c, "", "  ")
	return c, os.WriteFile(metaPath, b, 0o644)
}

// writeLayout writes the config, manifest, index.json and oci-layout around
// the layer blob already in place.
func writeLayout(dir string, c *corpus) error {
	put := func(v any) (v1.Descriptor, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return v1.Descriptor{}, err
		}
		d := digest.FromBytes(b)
		return v1.Descriptor{Digest: d, Size: int64(len(b))}, os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), b, 0o644)
	}
	cfg := v1.Image{
		Platform: v1.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   v1.ImageConfig{Cmd: []string{"/bin/sh"}},
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.Digest(c.DiffID)}},
		History:  []v1.History{{CreatedBy: "fmtconv bench corpus: " + c.Source}},
	}
	cfgDesc, err := put(cfg)
	if err != nil {
		return err
	}
	cfgDesc.MediaType = v1.MediaTypeImageConfig
	man := v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers: []v1.Descriptor{{
			MediaType: v1.MediaTypeImageLayerGzip,
			Digest:    digest.Digest(c.LayerDigest),
			Size:      c.LayerSize,
		}},
	}
	manDesc, err := put(man)
	if err != nil {
		return err
	}
	manDesc.MediaType = v1.MediaTypeImageManifest
	manDesc.Annotations = map[string]string{v1.AnnotationRefName: refName}
	index := v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex, Manifests: []v1.Descriptor{manDesc}}
	b, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, v1.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// treeTar returns a generator of a deterministic tar of the directories
// subdirs of root (all of root when subdirs is empty), entries named
// "go/<relative path>" in lexical order, with fixed mtimes, uid/gid 0 and no
// user or group names; modes are normalised to 0755/0644. Paths in skip
// (relative to root) are left out.
func treeTar(root string, subdirs, skip []string) tarGen {
	return func(w io.Writer) (int, error) {
		tw := tar.NewWriter(w)
		n := 0
		add := func(hdr *tar.Header) error {
			hdr.ModTime, hdr.Uid, hdr.Gid = fixedMtime, 0, 0
			n++
			return tw.WriteHeader(hdr)
		}
		if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: "go/", Mode: 0o755}); err != nil {
			return n, err
		}
		walk := func(top string) error {
			return filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, err := filepath.Rel(root, path)
				if err != nil || rel == "." {
					return err
				}
				for _, s := range skip {
					if rel == s {
						if d.IsDir() {
							return filepath.SkipDir
						}
						return nil
					}
				}
				name := "go/" + filepath.ToSlash(rel)
				info, err := d.Info()
				if err != nil {
					return err
				}
				switch {
				case d.IsDir():
					return add(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755})
				case d.Type()&fs.ModeSymlink != 0:
					target, err := os.Readlink(path)
					if err != nil {
						return err
					}
					return add(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777})
				case d.Type().IsRegular():
					mode := int64(0o644)
					if info.Mode()&0o111 != 0 {
						mode = 0o755
					}
					if err := add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: info.Size()}); err != nil {
						return err
					}
					f, err := os.Open(path)
					if err != nil {
						return err
					}
					defer f.Close()
					if _, err := io.CopyN(tw, f, info.Size()); err != nil {
						return fmt.Errorf("%s changed while being read: %w", path, err)
					}
				}
				return nil // sockets, devices and fifos are left out
			})
		}
		if len(subdirs) == 0 {
			subdirs = []string{"."}
		}
		for _, s := range subdirs {
			if err := walk(filepath.Join(root, s)); err != nil {
				return n, err
			}
		}
		return n, tw.Close()
	}
}

// bigTar returns a generator of a deterministic tar of about total bytes:
// files of pseudo-random sizes (1 KiB to 16 MiB, log-uniform) filled with
// pseudo-random words from a fixed 2,048-word vocabulary, which compresses
// about as well as text. Everything is generated on the fly from a fixed
// seed.
func bigTar(total int64) tarGen {
	return func(w io.Writer) (int, error) {
		rng := xorshift(0x9e3779b97f4a7c15)
		vocab := make([][]byte, 2048)
		for i := range vocab {
			word := make([]byte, 3+rng.next()%8)
			for j := range word {
				word[j] = 'a' + byte(rng.next()%26)
			}
			vocab[i] = word
		}
		cw := &counter{w: w}
		tw := tar.NewWriter(cw)
		n := 0
		buf := make([]byte, 0, 1<<16+16)
		for dir := 0; cw.n < total; dir++ {
			dname := fmt.Sprintf("big/d%03d/", dir)
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dname, Mode: 0o755, ModTime: fixedMtime}); err != nil {
				return n, err
			}
			n++
			for f := 0; f < 64 && cw.n < total; f++ {
				// log-uniform between 2^10 and 2^24 bytes
				size := int64(1) << (10 + rng.next()%14)
				size += int64(rng.next() % uint64(size))
				if left := total - cw.n - 1024; size > left {
					size = max(left, 0)
				}
				hdr := &tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%sf%02d.txt", dname, f), Mode: 0o644, Size: size, ModTime: fixedMtime}
				if err := tw.WriteHeader(hdr); err != nil {
					return n, err
				}
				n++
				for left := size; left > 0; {
					buf = buf[:0]
					for len(buf) < 1<<16 {
						r := rng.next()
						buf = append(buf, vocab[r%2048]...)
						if r>>32%12 == 0 {
							buf = append(buf, '\n')
						} else {
							buf = append(buf, ' ')
						}
					}
					chunk := buf[:min(int64(len(buf)), left)]
					if _, err := tw.Write(chunk); err != nil {
						return n, err
					}
					left -= int64(len(chunk))
				}
			}
		}
		return n, tw.Close()
	}
}

type xorshift uint64

func (x *xorshift) next() uint64 {
	*x ^= *x << 13
	*x ^= *x >> 7
	*x ^= *x << 17
	return uint64(*x)
}

// counter counts the bytes written through it (to w, if set).
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	if c.w != nil {
		n, err := c.w.Write(p)
		c.n += int64(n)
		return n, err
	}
	c.n += int64(len(p))
	return len(p), nil
}

func hexDigest(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

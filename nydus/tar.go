package nydus

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Whiteouts. RAFS records no "whiteout spec": how a removed path is
// represented depends on how the bootstrap was built (nydus-image
// --whiteout-spec), and a merged bootstrap has them applied already:
//
//   - tar-rafs per-layer bootstraps (what nydusify / nydus-snapshotter build,
//     --whiteout-spec none) keep the layer's OCI markers as plain empty regular
//     files named ".wh.<name>" and ".wh..wh..opq";
//   - bootstraps built from an overlayfs upper directory (--whiteout-spec
//     overlayfs) hold character devices 0/0 for removed paths and the xattr
//     trusted.overlay.opaque="y" on opaque directories.
const (
	WhiteoutPrefix     = ".wh."
	WhiteoutOpaqueDir  = ".wh..wh..opq"
	OverlayOpaqueXattr = "trusted.overlay.opaque"
)

// WhiteoutMode selects how ToTar writes whiteouts.
type WhiteoutMode int

const (
	// WhiteoutOCI (the default) writes OCI whiteouts: ".wh." entries are written
	// as they are, a character device 0/0 becomes an empty regular file
	// ".wh.<name>", and a directory with trusted.overlay.opaque=y is followed by
	// an empty "<dir>/.wh..wh..opq" (the xattr is dropped).
	WhiteoutOCI WhiteoutMode = iota
	// WhiteoutVerbatim writes every entry as stored (devices stay devices, the xattr stays).
	WhiteoutVerbatim
)

// TarOptions tune ToTar. The zero value is the default.
type TarOptions struct {
	Whiteouts WhiteoutMode
	// IncludeRoot writes the root directory as "./" first (by default the root
	// is omitted, as in docker and containerd layer tars).
	IncludeRoot bool
}

// IsOverlayWhiteout reports whether e is an overlayfs whiteout (char device 0/0).
func (e *Entry) IsOverlayWhiteout() bool {
	return e.Type == FileTypeChar && e.Rdev == 0
}

// IsOverlayOpaque reports whether e is a directory marked opaque for overlayfs.
func (e *Entry) IsOverlayOpaque() bool {
	if e.Type != FileTypeDir {
		return false
	}
	for _, x := range e.Xattrs {
		if x.Name == OverlayOpaqueXattr {
			return string(x.Value) == "y"
		}
	}
	return false
}

// ToTar writes the tree as an OCI layer tar stream (uncompressed), in Walk
// order: directories before their contents, names sorted; a second name of an
// inode is a hard link (typeflag '1') to the first; xattrs are PAX
// "SCHILY.xattr." records; a modification time with nanoseconds is kept with
// a PAX header. Sockets cannot be represented in tar and are skipped. The same
// FS always gives the same bytes.
func (f *FS) ToTar(w io.Writer, opts *TarOptions) error {
	var o TarOptions
	if opts != nil {
		o = *opts
	}
	tw := tar.NewWriter(w)
	whiteouts := map[string]bool{} // overlay whiteouts written as .wh. files
	err := f.Walk(func(e *Entry) error {
		if e.Path == "." && !o.IncludeRoot {
			return nil
		}
		if e.Type == FileTypeSocket {
			return nil
		}
		hdr, opaque, err := f.tarHeader(e, &o, whiteouts)
		if err != nil {
			return err
		}
		if hdr == nil {
			return nil
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("nydus: tar header for %s: %w", e.Path, err)
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			n, _, err := f.lookup(e.Path, false)
			if err != nil {
				return err
			}
			var written int64
			err = f.forEachChunk(n.in, func(b []byte) error {
				written += int64(len(b))
				_, err := tw.Write(b)
				return err
			})
			if err != nil {
				return fmt.Errorf("nydus: %s: %w", e.Path, err)
			}
			if written != hdr.Size {
				return fmt.Errorf("nydus: %s: %d bytes of content, size %d", e.Path, written, hdr.Size)
			}
		}
		if opaque != nil {
			if err := tw.WriteHeader(opaque); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func (f *FS) tarHeader(e *Entry, o *TarOptions, whiteouts map[string]bool) (*tar.Header, *tar.Header, error) {
	name := e.Path
	if name == "." {
		name = "./"
	}
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(e.Mode),
		Uid:     int(e.UID),
		Gid:     int(e.GID),
		ModTime: e.ModTime,
	}
	if e.ModTime.Nanosecond() != 0 {
		hdr.Format = tar.FormatPAX
	}
	xattrs := e.Xattrs
	var opaque *tar.Header
	if o.Whiteouts == WhiteoutOCI {
		if e.IsOverlayOpaque() {
			xattrs = dropXattr(xattrs, OverlayOpaqueXattr)
			opaque = &tar.Header{
				Name: joinPath(e.Path, WhiteoutOpaqueDir), Typeflag: tar.TypeReg,
				Mode: int64(e.Mode & 0o777), Uid: hdr.Uid, Gid: hdr.Gid, ModTime: e.ModTime, Format: hdr.Format,
			}
			if e.Path == "." {
				opaque.Name = WhiteoutOpaqueDir
			}
		}
		if e.IsOverlayWhiteout() && e.HardlinkTo == "" && e.Path != "." {
			dir, base := splitPath(e.Path)
			whiteouts[e.Path] = true
			hdr.Name, hdr.Typeflag = joinPath(dir, WhiteoutPrefix+base), tar.TypeReg
			return hdr, nil, nil
		}
	}
	if len(xattrs) > 0 {
		hdr.PAXRecords = make(map[string]string, len(xattrs))
		for _, x := range xattrs {
			hdr.PAXRecords["SCHILY.xattr."+x.Name] = string(x.Value)
		}
	}
	if e.HardlinkTo != "" {
		if whiteouts[e.HardlinkTo] {
			// a second name of an overlay whiteout is a whiteout too
			dir, base := splitPath(e.Path)
			hdr.Name, hdr.Typeflag = joinPath(dir, WhiteoutPrefix+base), tar.TypeReg
			return hdr, nil, nil
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeLink, e.HardlinkTo
		return hdr, nil, nil
	}
	switch e.Type {
	case FileTypeReg:
		hdr.Typeflag, hdr.Size = tar.TypeReg, e.Size
	case FileTypeDir:
		hdr.Typeflag = tar.TypeDir
		if !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
	case FileTypeSymlink:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.LinkTarget
	case FileTypeChar:
		hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeChar, int64(e.DevMajor), int64(e.DevMinor)
	case FileTypeBlock:
		hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeBlock, int64(e.DevMajor), int64(e.DevMinor)
	case FileTypeFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil, nil, fmt.Errorf("nydus: %s: cannot write a %s to tar", e.Path, e.Type)
	}
	return hdr, opaque, nil
}

func splitPath(p string) (dir, base string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return ".", p
}

func dropXattr(xs []Xattr, name string) []Xattr {
	out := make([]Xattr, 0, len(xs))
	for _, x := range xs {
		if x.Name != name {
			out = append(out, x)
		}
	}
	return out
}

// TarBytes is ToTar into memory (for small images and tests).
func (f *FS) TarBytes(opts *TarOptions) ([]byte, error) {
	var buf bytes.Buffer
	if err := f.ToTar(&buf, opts); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Package tree reads layer tar streams as file trees and compares them, so that every round-trip
// test can say "the same files" in one line: type, mode, owner, times, xattrs, link targets,
// device numbers, hardlinks and content.
package tree

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
)

// Node is one entry of a tree.
type Node struct {
	Type     byte
	Mode     int64
	UID, GID int
	ModTime  time.Time
	Linkname string // symlink target, or hardlink target (a path in the tree)
	Devmajor int64
	Devminor int64
	Xattrs   map[string]string
	Size     int64
	SHA256   string
	// Group lists every name of a hard-linked inode (sorted), so that which name a tar wrote
	// first, as the file, and which as links does not matter: only what an extracted tree shows.
	Group string
}

// Tree maps cleaned paths (no leading "./" or "/", no trailing "/") to nodes.
type Tree map[string]Node

// Clean names a path the way trees key it.
func Clean(name string) string {
	name = path.Clean("/" + name)
	return strings.TrimPrefix(name, "/")
}

// Read reads one layer's tar stream. A path seen twice keeps its last entry, as extraction does.
func Read(r io.Reader) (Tree, error) {
	t := Tree{}
	err := readEntries(r, func(name string, n Node) error {
		t[name] = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// readEntries calls fn with the cleaned name and the node of every entry of a tar stream,
// in order (PAX global headers skipped).
func readEntries(r io.Reader, fn func(name string, n Node) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		n, err := readNode(h, tr)
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		if err := fn(Clean(h.Name), n); err != nil {
			return err
		}
	}
}

// readNode makes the node of one tar entry, reading a regular file's content from r.
func readNode(h *tar.Header, r io.Reader) (Node, error) {
	n := Node{Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, ModTime: h.ModTime.UTC(),
		Devmajor: h.Devmajor, Devminor: h.Devminor, Size: h.Size}
	if n.Type == tar.TypeRegA {
		n.Type = tar.TypeReg
	}
	switch n.Type {
	case tar.TypeSymlink:
		n.Linkname = h.Linkname
	case tar.TypeLink:
		n.Linkname = Clean(h.Linkname)
		n.Size = 0
	}
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if n.Xattrs == nil {
				n.Xattrs = map[string]string{}
			}
			n.Xattrs[name] = v
		}
	}
	if n.Type == tar.TypeReg {
		hs := sha256.New()
		c, err := io.Copy(hs, r)
		if err != nil {
			return Node{}, err
		}
		n.Size, n.SHA256 = c, hex.EncodeToString(hs.Sum(nil))
	}
	return n, nil
}

// Resolved returns the tree as an extraction shows it: every name of a hard-linked inode
// carries the node of the file it links to, with Group listing all the names (as Diff
// compares them). Trees read from disk or from a filesystem image are built this way.
func (t Tree) Resolved() Tree { return t.resolveHardlinks() }

// LinkGroup is the Group of a hard-linked inode with these names (sorted in place).
func LinkGroup(names []string) string {
	sort.Strings(names)
	return strings.Join(names, "\x00")
}

// resolveHardlinks makes every member of a hard-link group look the same: the target's
// attributes and content, and the group's names.
func (t Tree) resolveHardlinks() Tree {
	root := map[string]string{} // name -> the file it is a link to (after following chains)
	var find func(string, int) string
	find = func(k string, depth int) string {
		n, ok := t[k]
		if !ok || n.Type != tar.TypeLink || depth > 64 {
			return k
		}
		return find(n.Linkname, depth+1)
	}
	groups := map[string][]string{}
	for k, n := range t {
		if n.Type == tar.TypeLink {
			r := find(k, 0)
			root[k] = r
			groups[r] = append(groups[r], k)
		}
	}
	out := Tree{}
	for k, n := range t {
		out[k] = n
	}
	for r, members := range groups {
		members = append(members, r)
		g := LinkGroup(members)
		base, ok := t[r]
		if !ok {
			continue
		}
		base.Group = g
		for _, m := range members {
			out[m] = base
		}
	}
	return out
}

// Options relax a comparison where a format keeps less than a tar.
type Options struct {
	// TimePrecision truncates modification times before comparing (eStargz's TOC keeps seconds).
	TimePrecision time.Duration
	// Ignore lists paths that only one side is expected to have.
	Ignore []string
}

// Diff lists the differences between two trees (empty when they are the same files).
func Diff(a, b Tree, o Options) []string {
	a, b = a.resolveHardlinks(), b.resolveHardlinks()
	var out []string
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if slices.Contains(o.Ignore, k) {
			continue
		}
		x, inA := a[k]
		y, inB := b[k]
		switch {
		case !inA:
			out = append(out, "only in second: "+k)
		case !inB:
			out = append(out, "only in first: "+k)
		default:
			if o.TimePrecision > 0 {
				x.ModTime, y.ModTime = x.ModTime.Truncate(o.TimePrecision), y.ModTime.Truncate(o.TimePrecision)
			}
			if d := nodeDiff(x, y); d != "" {
				out = append(out, k+": "+d)
			}
		}
	}
	return out
}

func nodeDiff(x, y Node) string {
	var d []string
	add := func(name string, a, b any) {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			d = append(d, fmt.Sprintf("%s %v != %v", name, a, b))
		}
	}
	add("type", string(x.Type), string(y.Type))
	add("mode", fmt.Sprintf("%o", x.Mode), fmt.Sprintf("%o", y.Mode))
	add("uid", x.UID, y.UID)
	add("gid", x.GID, y.GID)
	add("mtime", x.ModTime, y.ModTime)
	add("link", x.Linkname, y.Linkname)
	add("dev", [2]int64{x.Devmajor, x.Devminor}, [2]int64{y.Devmajor, y.Devminor})
	add("xattrs", sortedMap(x.Xattrs), sortedMap(y.Xattrs))
	add("size", x.Size, y.Size)
	add("sha256", x.SHA256, y.SHA256)
	add("hardlinks", x.Group, y.Group)
	return strings.Join(d, ", ")
}

func sortedMap(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q;", k, m[k])
	}
	return b.String()
}

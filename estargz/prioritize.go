package estargz

import (
	"archive/tar"
	"path"
	"strings"
)

// spoolEntry is one entry of a spooled tar; its payload is at off in the spool.
type spoolEntry struct {
	h        *tar.Header
	off      int64
	landmark bool
}

// sortEntries is upstream's sortEntries/moveRec (build.go): each prioritized
// path is moved to the front after its parent directories (those present in
// the tar) and, for hard links, its target; then .prefetch.landmark; then the
// remaining entries in input order. Names are matched once cleaned.
//
// One difference: upstream also fails when a parent directory or a hard link
// target of a prioritized file is not in the tar; here only the prioritized
// paths themselves must exist (what is missing cannot be moved anyway).
//
// With allowMissing (ctr-remote's WithAllowPrioritizeNotFound, needed for multi-layer images
// where a prioritized file lives in one layer only) a prioritized path absent from the tar is
// skipped instead of refused.
func sortEntries(entries []*spoolEntry, prioritized []string, allowMissing bool) ([]*spoolEntry, error) {
	index := make(map[string]*spoolEntry, len(entries))
	for _, se := range entries {
		index[CleanEntryName(se.h.Name)] = se
	}
	picked := map[string]struct{}{}
	visiting := map[string]bool{} // guards against hard link cycles (upstream would recurse forever)
	var out []*spoolEntry
	var moveRec func(name string, required bool) error
	moveRec = func(name string, required bool) error {
		name = CleanEntryName(name)
		if name == "" {
			if e, ok := index[name]; ok {
				if _, done := picked[name]; !done {
					out = append(out, e)
					picked[name] = struct{}{}
				}
			}
			return nil
		}
		e, ok := index[name]
		if !ok {
			if _, done := picked[name]; !done && required {
				return &UnsupportedInputError{Code: CodePrioritizedNotFound, Path: name, Reason: "prioritized file not found in the layer"}
			}
		}
		if visiting[name] {
			return nil
		}
		visiting[name] = true
		defer delete(visiting, name)
		parent, _ := path.Split(strings.TrimSuffix(name, "/"))
		if err := moveRec(parent, false); err != nil {
			return err
		}
		if ok && e.h.Typeflag == tar.TypeLink {
			if err := moveRec(e.h.Linkname, false); err != nil {
				return err
			}
		}
		if _, done := picked[name]; done {
			return nil
		}
		if ok {
			out = append(out, e)
			picked[name] = struct{}{}
		}
		return nil
	}
	for _, p := range prioritized {
		if err := moveRec(p, !allowMissing); err != nil {
			return nil, err
		}
	}
	out = append(out, &spoolEntry{h: landmarkHeader(PrefetchLandmark), landmark: true})
	for _, se := range entries {
		if _, done := picked[CleanEntryName(se.h.Name)]; !done {
			out = append(out, se)
		}
	}
	return out, nil
}

package convert

import (
	"fmt"
	"io"
)

// WritePlan prints the plan as text (what --dry-run shows): per manifest and layer, the action and the reason.
func (rep *Report) WritePlan(w io.Writer) {
	p := rep.Plan
	if p == nil {
		return
	}
	fmt.Fprintf(w, "plan: %s -> %s, target %s\n", rep.Source, rep.Destination, rep.TargetDescription())
	if p.IndexType != "" {
		fmt.Fprintf(w, "index: %s\n", p.IndexType)
	}
	for _, m := range p.Manifests {
		plat := m.Platform
		if plat == "" {
			plat = "-"
		}
		fmt.Fprintf(w, "manifest %s %s %s: %s (%s)\n", m.Digest, plat, m.Role, m.Action, m.Reason)
		for _, l := range m.Layers {
			action := string(l.Action)
			if l.Action == "convert" {
				action = fmt.Sprintf("convert from %s to %s", l.From, l.To)
			}
			fmt.Fprintf(w, "  layer %d %s %d: %s (%s)\n", l.Index, l.Digest, l.Size, action, l.Reason)
		}
		if mo := m.MergedOCI; mo != nil {
			fmt.Fprintf(w, "  beside it: OCI manifest %s, config %s, empty first layer %s (%s)\n", mo.Digest, mo.Config, mo.EmptyLayer, mo.Reason)
		}
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// TargetDescription is the target and its level as people read it: "zstd:chunked level 3", "nydus".
func (rep *Report) TargetDescription() string {
	if rep.Target == "nydus" {
		return rep.Target
	}
	return fmt.Sprintf("%s level %d", rep.Target, rep.Level)
}

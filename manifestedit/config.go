package manifestedit

import (
	"encoding/json"
	"fmt"
	"slices"

	digest "github.com/opencontainers/go-digest"
)

func slicesSort(s []string) { slices.Sort(s) }

// ConfigDiffIDs reads rootfs.diff_ids from an image config.
func ConfigDiffIDs(config []byte) ([]digest.Digest, error) {
	var c struct {
		RootFS *struct {
			Type    string          `json:"type"`
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(config, &c); err != nil {
		return nil, fmt.Errorf("parsing image config: %w", err)
	}
	if c.RootFS == nil {
		return nil, fmt.Errorf("image config has no rootfs")
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("image config diff_id %d: %w", i, err)
		}
	}
	return c.RootFS.DiffIDs, nil
}

// EditConfigDiffIDs returns the config with rootfs.diff_ids replaced, keeping every other field as
// it was. When the diff_ids are unchanged it returns config itself, so the config digest (the
// image ID) stays.
func EditConfigDiffIDs(config []byte, diffIDs []digest.Digest) ([]byte, error) {
	old, err := ConfigDiffIDs(config)
	if err != nil {
		return nil, err
	}
	if slices.Equal(old, diffIDs) {
		return config, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(config, &fields); err != nil {
		return nil, fmt.Errorf("parsing image config: %w", err)
	}
	var rootfs map[string]json.RawMessage
	if err := json.Unmarshal(fields["rootfs"], &rootfs); err != nil {
		return nil, fmt.Errorf("parsing image config rootfs: %w", err)
	}
	b, err := json.Marshal(diffIDs)
	if err != nil {
		return nil, err
	}
	rootfs["diff_ids"] = b
	if fields["rootfs"], err = marshalOrdered(rootfs, []string{"type", "diff_ids"}); err != nil {
		return nil, err
	}
	return marshalOrdered(fields, []string{"created", "author", "architecture", "variant", "os", "os.version", "os.features", "config", "rootfs", "history"})
}

// EditConfig returns config with rootfs.diff_ids replaced by diffIDs (one per layer that remains)
// and, for each dropped source layer (by index), its history entry removed, keeping every other
// field as it was. With nothing dropped it is EditConfigDiffIDs.
func EditConfig(config []byte, diffIDs []digest.Digest, dropped []int) ([]byte, error) {
	if len(dropped) == 0 {
		return EditConfigDiffIDs(config, diffIDs)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(config, &fields); err != nil {
		return nil, fmt.Errorf("parsing image config: %w", err)
	}
	if raw, ok := fields["history"]; ok {
		var history []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &history); err != nil {
			return nil, fmt.Errorf("parsing image config history: %w", err)
		}
		var kept []map[string]json.RawMessage
		layer := 0
		for _, h := range history {
			var empty bool
			if e, ok := h["empty_layer"]; ok {
				_ = json.Unmarshal(e, &empty)
			}
			if !empty {
				drop := slices.Contains(dropped, layer)
				layer++
				if drop {
					continue
				}
			}
			kept = append(kept, h)
		}
		b, err := json.Marshal(kept)
		if err != nil {
			return nil, err
		}
		fields["history"] = b
	}
	b, err := marshalOrdered(fields, []string{"created", "author", "architecture", "variant", "os", "os.version", "os.features", "config", "rootfs", "history"})
	if err != nil {
		return nil, err
	}
	return EditConfigDiffIDs(b, diffIDs)
}

// NydusHistoryEntry is the history entry nydus-snapshotter appends for the bootstrap layer.
var NydusHistoryEntry = map[string]string{"created_by": "Nydus Converter", "comment": "Nydus Bootstrap Layer"}

// AppendHistory returns config with one more history entry, keeping every other field.
func AppendHistory(config []byte, entry map[string]string) ([]byte, error) {
	return addHistory(config, entry, false)
}

// addHistory adds a history entry at the end, or at the start when prepend is set. Prepending to
// a config without history adds nothing: a lone entry would not match the layers.
func addHistory(config []byte, entry map[string]string, prepend bool) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(config, &fields); err != nil {
		return nil, fmt.Errorf("parsing image config: %w", err)
	}
	var history []json.RawMessage
	if raw, ok := fields["history"]; ok {
		if err := json.Unmarshal(raw, &history); err != nil {
			return nil, fmt.Errorf("parsing image config history: %w", err)
		}
	}
	b, err := json.Marshal(entry)
	if err != nil {
		return nil, err
	}
	switch {
	case !prepend:
		history = append(history, b)
	case len(history) == 0:
		return config, nil
	default:
		history = append([]json.RawMessage{b}, history...)
	}
	if fields["history"], err = json.Marshal(history); err != nil {
		return nil, err
	}
	return marshalOrdered(fields, []string{"created", "author", "architecture", "variant", "os", "os.version", "os.features", "config", "rootfs", "history"})
}

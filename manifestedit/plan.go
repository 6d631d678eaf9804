package manifestedit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fmtconv/fmtconv/layerformat"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Annotations buildx puts on attestation manifests in an index.
const (
	AnnotationReferenceType   = "vnd.docker.reference.type"
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
	ReferenceTypeAttestation  = "attestation-manifest"
)

// Platform selects index instances by os/arch[/variant].
type Platform struct{ OS, Architecture, Variant string }

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Matches reports whether an index entry's platform is selected by p.
func (p Platform) Matches(q *ocispec.Platform) bool {
	if q == nil || q.OS != p.OS || q.Architecture != p.Architecture {
		return false
	}
	if p.Variant == "" {
		return true
	}
	v := q.Variant
	if v == "" && q.Architecture == "arm64" {
		v = "v8"
	}
	return v == p.Variant
}

// PlatformString formats an index entry's platform ("" when it has none).
func PlatformString(q *ocispec.Platform) string {
	if q == nil {
		return ""
	}
	return Platform{q.OS, q.Architecture, q.Variant}.String()
}

// Selection is whether an index entry is converted, and why.
type Selection struct {
	Keep   bool
	Reason string
}

// SelectInstances decides which entries of an index take part. Without --platform every entry does.
// With it, image entries must match; an attestation entry follows the manifest it refers to.
//
// An index that holds both an OCI and a Nydus manifest for one platform (nydusify
// --merge-platform) keeps the Nydus one when converting to Nydus, and the OCI one otherwise.
func SelectInstances(ix *Index, platforms []Platform, target layerformat.Kind) []Selection {
	out := make([]Selection, len(ix.Manifests))
	kept := map[digest.Digest]bool{}
	hasNydus, hasOther := map[string]bool{}, map[string]bool{}
	for _, d := range ix.Manifests {
		if isAttestation(d) {
			continue
		}
		if IsNydusManifest(d) {
			hasNydus[platformKey(d.Platform)] = true
		} else {
			hasOther[platformKey(d.Platform)] = true
		}
	}
	for i, d := range ix.Manifests {
		if isAttestation(d) {
			continue
		}
		pk := platformKey(d.Platform)
		if IsNydusManifest(d) && hasOther[pk] && target != layerformat.Nydus {
			out[i] = Selection{Reason: "the index also has an OCI manifest for this platform, which is converted instead"}
			continue
		}
		if !IsNydusManifest(d) && hasNydus[pk] && target == layerformat.Nydus {
			out[i] = Selection{Reason: "the index already has a Nydus manifest for this platform"}
			continue
		}
		if len(platforms) == 0 {
			out[i] = Selection{Keep: true, Reason: "every platform is converted"}
		} else if slices.ContainsFunc(platforms, func(p Platform) bool { return p.Matches(d.Platform) }) {
			out[i] = Selection{Keep: true, Reason: "matches --platform"}
		} else {
			out[i] = Selection{Reason: fmt.Sprintf("platform %s not selected", PlatformString(d.Platform))}
		}
		kept[d.Digest] = out[i].Keep
	}
	for i, d := range ix.Manifests {
		if !isAttestation(d) {
			continue
		}
		ref := digest.Digest(d.Annotations[AnnotationReferenceDigest])
		if kept[ref] {
			out[i] = Selection{Keep: true, Reason: "attestation of a converted manifest"}
		} else {
			out[i] = Selection{Reason: fmt.Sprintf("attestation of %s, which is not converted", ref)}
		}
	}
	return out
}

// IsImageConfig reports whether a config media type is a container image config (OCI, Docker, or
// the Nydus image config that merged-platform indexes use).
func IsImageConfig(mt string) bool {
	return mt == layerformat.MediaTypeOCIConfig || mt == layerformat.MediaTypeDockerConfig || mt == layerformat.MediaTypeNydusConfig
}

// IsNydusManifest reports whether an index entry is a Nydus manifest: artifactType
// application/vnd.nydus.image.manifest.v1+json (current nydusify) or os.features nydus.remoteimage.v1.
func IsNydusManifest(d ocispec.Descriptor) bool {
	if d.ArtifactType == layerformat.ArtifactTypeNydusManifest {
		return true
	}
	return d.Platform != nil && slices.Contains(d.Platform.OSFeatures, layerformat.OSFeatureNydus)
}

func isAttestation(d ocispec.Descriptor) bool {
	return d.Annotations[AnnotationReferenceType] == ReferenceTypeAttestation
}

// LayerAction is what happens to one layer.
type LayerAction string

const (
	// ActionReuse: the source blob is written as it is; its format already is the target.
	ActionReuse LayerAction = "reuse"
	// ActionConvert: decoded and encoded to the target.
	ActionConvert LayerAction = "convert"
	// ActionKeep: left as it is although it is not in the target format (foreign layers,
	// artifact blobs), with a warning where that matters.
	ActionKeep LayerAction = "keep"
	// ActionDrop: the layer is not written (a Nydus bootstrap layer when leaving Nydus: its
	// metadata lives on in each rebuilt layer); its diff_id and history entry go too.
	ActionDrop LayerAction = "drop"
)

// LayerPlan is the decision for one layer.
type LayerPlan struct {
	Index  int                `json:"index"`
	Digest digest.Digest      `json:"digest"`
	Size   int64              `json:"size"`
	From   layerformat.Format `json:"from"`
	To     layerformat.Format `json:"to"`
	Action LayerAction        `json:"action"`
	Reason string             `json:"reason"`
	// StripEstargzFiles: the layer leaves eStargz (or the stargz zstd:chunked dialect) and loses
	// stargz.index.json and its landmark, so it becomes an ordinary layer with a new diff_id.
	StripEstargzFiles bool `json:"stripEstargzFiles,omitempty"`
	// KeepsDiffID: the layer's uncompressed stream, and so its diff_id, stays bit for bit.
	KeepsDiffID bool `json:"keepsDiffID"`
}

// ManifestRole says what an index entry or image is.
type ManifestRole string

const (
	RoleImage       ManifestRole = "image"
	RoleArtifact    ManifestRole = "artifact"
	RoleAttestation ManifestRole = "attestation"
)

// ManifestPlan is the decision for one manifest.
type ManifestPlan struct {
	Digest   digest.Digest `json:"digest"`
	Platform string        `json:"platform,omitempty"`
	Role     ManifestRole  `json:"role"`
	// Action: "convert", "pass-through" (unchanged bytes), "rewrite-reference" (an attestation whose
	// subject digest changes), or "drop".
	Action  string      `json:"action"`
	Reason  string      `json:"reason"`
	OutType string      `json:"outType,omitempty"`
	Layers  []LayerPlan `json:"layers,omitempty"`
	// MergedOCI is, with --nydus-merge-platform, the OCI manifest kept beside this image's Nydus
	// manifest; it is decided (digests included) before anything is written.
	MergedOCI *MergedOCIPlan `json:"mergedOCI,omitempty"`
}

// MergedOCIPlan is the OCI side of one image in a merged-platform Nydus index.
type MergedOCIPlan struct {
	Digest     digest.Digest `json:"digest"`
	MediaType  string        `json:"mediaType"`
	Config     digest.Digest `json:"config"`
	EmptyLayer digest.Digest `json:"emptyLayer"`
	Reason     string        `json:"reason"`
}

// Plan is every decision of a conversion, made before any blob is written.
type Plan struct {
	Target    layerformat.Format `json:"target"`
	IndexType string             `json:"indexType,omitempty"`
	Manifests []ManifestPlan     `json:"manifests"`
	Warnings  []string           `json:"warnings,omitempty"`
}

// PlanOptions are the user's choices and the destination's capabilities.
type PlanOptions struct {
	Target         layerformat.Kind
	Force          bool
	ManifestFormat string
	// RemoveSignatures allows converting a signed source (the signatures cannot stay valid).
	RemoveSignatures bool
	// KeepEstargzFiles keeps stargz.index.json and the landmarks when a layer leaves eStargz.
	KeepEstargzFiles bool
	// NydusMergePlatform writes an index holding both the OCI and the Nydus manifest per platform
	// (target Nydus only).
	NydusMergePlatform bool
	DestName           string
	// DestManifestTypes are the manifest types the destination accepts (nil = any).
	DestManifestTypes []string
}

// SourceManifest is one manifest of the source, as read.
type SourceManifest struct {
	Manifest *Manifest
	Digest   digest.Digest
	// Descriptor is the index entry pointing at it (zero for a single image).
	Descriptor ocispec.Descriptor
	// Config is the image config (nil when the config is not an image config).
	Config []byte
	// Schema1 is set for a Docker schema1 source, which has no config until its diff_ids are known.
	Schema1 *Schema1
}

// Source is what the pipeline read from the source before planning.
type Source struct {
	Name    string
	IsIndex bool
	// IndexMediaType is the source index's media type, when IsIndex.
	IndexMediaType string
	// Manifests are the selected manifests, in index order.
	Manifests []SourceManifest
	// Signatures lists, per signed manifest, what signs it (empty when unsigned).
	Signatures []string
}

// Role classifies a manifest: an image has an image config and only tar-family layers; a manifest
// an index marks as an attestation is an attestation; anything else is an artifact.
func Role(m *Manifest, desc ocispec.Descriptor) ManifestRole {
	if isAttestation(desc) {
		return RoleAttestation
	}
	if IsSchema1(m.MediaType) {
		return RoleImage
	}
	if !IsImageConfig(m.Config.MediaType) {
		return RoleArtifact
	}
	if at := m.ArtifactType(); at != "" && at != layerformat.ArtifactTypeNydusManifest {
		return RoleArtifact
	}
	for _, l := range m.Layers {
		if k := layerformat.KindFromMediaType(l.MediaType); k == layerformat.Unknown {
			return RoleArtifact
		}
	}
	return RoleImage
}

// MakePlan decides everything that manifests, configs and annotations can decide: which manifests
// convert, into which manifest type, and what happens to each layer. A refusal is returned as a
// *Refusal; nothing has been written when it is.
func MakePlan(src Source, o PlanOptions) (*Plan, error) {
	p := &Plan{Target: layerformat.TargetFormat(o.Target)}
	if o.NydusMergePlatform && o.Target != layerformat.Nydus {
		return nil, fmt.Errorf("--nydus-merge-platform needs --to nydus, not --to %s", o.Target)
	}
	if len(src.Signatures) > 0 && !o.RemoveSignatures {
		return nil, Refuse(SignedSource, src.Name,
			fmt.Sprintf("the source is signed (%s); converting changes every manifest digest, so those signatures would no longer match",
				strings.Join(src.Signatures, "; ")),
			"pass --remove-signatures to convert anyway (and sign the result again), or copy the image unchanged")
	}
	if len(src.Signatures) > 0 {
		p.Warnings = append(p.Warnings, "signatures removed: "+strings.Join(src.Signatures, "; "))
	}
	images := 0
	for _, sm := range src.Manifests {
		mp, err := planManifest(sm, o)
		if err != nil {
			return nil, err
		}
		if mp.Role == RoleImage {
			images++
		}
		p.Manifests = append(p.Manifests, *mp)
		p.Warnings = append(p.Warnings, manifestWarnings(sm, mp)...)
	}
	if o.NydusMergePlatform {
		p.IndexType = layerformat.MediaTypeOCIIndex
	} else if src.IsIndex {
		var types []string
		for _, m := range p.Manifests {
			types = append(types, m.OutType)
		}
		p.IndexType = IndexType(src.IndexMediaType, types, o.ManifestFormat)
	}
	if images == 0 {
		return nil, Refuse(ArtifactSource, src.Name, "the source holds no container image to convert (only artifacts)",
			"copy artifacts unchanged (skopeo copy); fmtconv converts image layers")
	}
	return p, nil
}

func manifestWarnings(sm SourceManifest, mp *ManifestPlan) []string {
	var w []string
	for _, l := range mp.Layers {
		if l.Action == ActionKeep && mp.Role == RoleImage {
			w = append(w, fmt.Sprintf("manifest %s layer %d kept as it is: %s", sm.Digest, l.Index, l.Reason))
		}
	}
	for _, a := range DroppedAnnotations(sm.Manifest.Layers, mp.OutType) {
		w = append(w, fmt.Sprintf("manifest %s: Docker schema2 cannot carry the annotation %s", sm.Digest, a))
	}
	return w
}

func planManifest(sm SourceManifest, o PlanOptions) (*ManifestPlan, error) {
	m := sm.Manifest
	mp := &ManifestPlan{Digest: sm.Digest, Platform: PlatformString(sm.Descriptor.Platform), Role: Role(m, sm.Descriptor)}
	switch mp.Role {
	case RoleArtifact:
		mp.Action, mp.Reason, mp.OutType = "pass-through", "not a container image: copied unchanged", m.MediaType
		return mp, nil
	case RoleAttestation:
		mp.Action, mp.Reason, mp.OutType = "pass-through", "attestation: copied unchanged; its index entry follows the new digest of its subject", m.MediaType
		return mp, nil
	}
	if sm.Config == nil && sm.Schema1 == nil {
		return nil, fmt.Errorf("manifest %s: image config not read", sm.Digest)
	}
	var err error
	if mp.OutType, err = ManifestType(m.MediaType, o.Target, o.ManifestFormat, o.DestManifestTypes, o.DestName); err != nil {
		return nil, err
	}
	if err := checkNydusMix(m, sm.Digest, o.Target); err != nil {
		return nil, err
	}
	mp.Action, mp.Reason = "convert", fmt.Sprintf("image to %s", p(o.Target))
	if sm.Schema1 != nil {
		mp.Reason += "; Docker schema1 becomes OCI, its config built with diff_ids computed from the content"
	}
	for i, l := range m.Layers {
		lp, err := DecideLayer(i, l, claimedFormat(l), o)
		if r, ok := err.(*Refusal); ok {
			r.Subject = fmt.Sprintf("manifest %s %s", sm.Digest, r.Subject)
			return nil, r
		}
		mp.Layers = append(mp.Layers, lp)
	}
	if !slices.ContainsFunc(mp.Layers, func(l LayerPlan) bool { return l.Action == ActionConvert }) && mp.OutType == m.MediaType {
		mp.Reason = "every layer is already in the target format"
	}
	if o.NydusMergePlatform {
		if err := planMergedOCI(sm, mp); err != nil {
			return nil, err
		}
	}
	return mp, nil
}

func p(k layerformat.Kind) string { return layerformat.TargetFormat(k).String() }

// claimedFormat is what a descriptor says about its blob before the bytes are read.
func claimedFormat(d ocispec.Descriptor) layerformat.Format {
	if layerformat.IsEncrypted(d.MediaType) {
		return layerformat.Format{Kind: layerformat.Encrypted}
	}
	if d.Annotations[layerformat.AnnotationNydusBootstrap] == "true" {
		return layerformat.Format{Kind: layerformat.NydusBootstrap}
	}
	switch k := layerformat.KindFromMediaType(d.MediaType); k {
	case layerformat.Gzip:
		if d.Annotations[layerformat.AnnotationEstargzTOCDigest] != "" {
			return layerformat.Format{Kind: layerformat.Estargz}
		}
		return layerformat.Format{Kind: k}
	case layerformat.Zstd:
		if dl := layerformat.ZstdChunkedDialect(d.Annotations); dl != "" {
			return layerformat.Format{Kind: layerformat.ZstdChunked, Dialect: dl}
		}
		return layerformat.Format{Kind: k}
	case layerformat.NydusBlob:
		return layerformat.Format{Kind: k}
	default:
		return layerformat.Format{Kind: k}
	}
}

// ClaimedFormat is the format a layer descriptor claims (media type and annotations).
func ClaimedFormat(d ocispec.Descriptor) layerformat.Format { return claimedFormat(d) }

func checkNydusMix(m *Manifest, md digest.Digest, target layerformat.Kind) error {
	nydus := 0
	for _, l := range m.Layers {
		if k := claimedFormat(l).Kind; k == layerformat.NydusBlob || k == layerformat.NydusBootstrap {
			nydus++
		}
	}
	if nydus > 0 && nydus != len(m.Layers) {
		return Refuse(NydusMixed, md.String(), fmt.Sprintf("the manifest mixes %d Nydus layers with %d other layers", nydus, len(m.Layers)-nydus),
			"this is not a valid image; rebuild it from its source")
	}
	return nil
}

// DecideLayer is the rule for one layer, given the format it is in (claimed from its descriptor at
// plan time, detected from its bytes when the pipeline reads it). The pipeline never decides on
// its own: when the bytes disagree with the claim it asks again.
func DecideLayer(i int, d ocispec.Descriptor, from layerformat.Format, o PlanOptions) (LayerPlan, error) {
	to := layerformat.TargetFormat(o.Target)
	lp := LayerPlan{Index: i, Digest: d.Digest, Size: d.Size, From: from, To: to}
	subject := fmt.Sprintf("layer %d (%s)", i, d.Digest)
	switch {
	case from.Kind == layerformat.Encrypted:
		return lp, Refuse(EncryptedLayer, subject, "the layer is encrypted, so its content cannot be read and converted",
			"decrypt the image first (skopeo copy --decryption-key)")
	case d.Annotations[layerformat.AnnotationEstargzTOCDigest] != "" && d.Annotations[layerformat.AnnotationZstdChunkedManifestChecksum] != "":
		return lp, Refuse(DualTOC, subject,
			"the layer carries both the eStargz TOC digest and io.github.containers.zstd-chunked.manifest-checksum; containers/storage rejects such layers and their format is ambiguous",
			"rebuild the layer with one tool, or strip the wrong annotation where it was added")
	case layerformat.IsNondistributable(d.MediaType) || len(d.URLs) > 0:
		if o.Target == layerformat.Nydus {
			return lp, Refuse(NondistributableNydus, subject, "Nydus needs every file of every layer, and this layer is foreign (non-distributable)",
				"convert to a compression target instead, or rebuild the image without foreign layers")
		}
		lp.Action, lp.To, lp.Reason, lp.KeepsDiffID = ActionKeep, from, "foreign (non-distributable) layer: kept unchanged, never re-uploaded", true
		return lp, nil
	case from.Kind == layerformat.NydusBlob || from.Kind == layerformat.NydusBootstrap:
		if o.Target == layerformat.Nydus {
			lp.Action, lp.To, lp.Reason, lp.KeepsDiffID = ActionReuse, from, "already Nydus", true
			return lp, nil
		}
		if from.Kind == layerformat.NydusBootstrap {
			lp.Action, lp.Reason = ActionDrop, "the Nydus bootstrap layer is dropped: each layer is rebuilt from its own blob's bootstrap"
			return lp, nil
		}
		lp.Action, lp.Reason = ActionConvert, "rebuilt by the Nydus reader from the bootstrap inside this layer's blob (whiteouts kept as .wh. entries)"
		return lp, nil
	case from.Kind == layerformat.Unknown:
		return lp, Refuse(UnknownLayerFormat, subject, fmt.Sprintf("media type %q is not a layer format fmtconv reads", d.MediaType), "")
	case from == to && !o.Force:
		lp.Action, lp.Reason, lp.KeepsDiffID = ActionReuse, "already "+to.String(), true
		return lp, nil
	case from == to:
		lp.Action, lp.Reason = ActionConvert, "re-encoded (--force)"
	default:
		lp.Action, lp.Reason = ActionConvert, fmt.Sprintf("the layer is %s, not %s", from, to)
	}
	lp.StripEstargzFiles = layerformat.StripsEstargzFiles(from) && to.Kind != layerformat.Estargz && !o.KeepEstargzFiles
	lp.KeepsDiffID = layerformat.KeepsDiffID(to.Kind) && !lp.StripEstargzFiles
	if lp.StripEstargzFiles {
		lp.Reason += "; stargz.index.json and the landmark are removed (--keep-estargz-files keeps them), so the diff_id changes"
	}
	return lp, nil
}

func platformKey(p *ocispec.Platform) string {
	if p == nil {
		return ""
	}
	return Platform{p.OS, p.Architecture, p.Variant}.String()
}

// planMergedOCI decides the OCI manifest kept beside the Nydus one (--nydus-merge-platform).
func planMergedOCI(sm SourceManifest, mp *ManifestPlan) error {
	instead := "convert the OCI source image with --nydus-merge-platform, or drop the flag"
	if sm.Schema1 != nil {
		return Refuse(NydusMergeSource, sm.Digest.String(), "a Docker schema1 manifest cannot be kept beside its Nydus manifest (it has no config to prepend the empty layer to)",
			"convert it to OCI first (fmtconv convert --to gzip --format oci), then to Nydus with --nydus-merge-platform")
	}
	for _, l := range mp.Layers {
		if k := l.From.Kind; k == layerformat.NydusBlob || k == layerformat.NydusBootstrap {
			return Refuse(NydusMergeSource, sm.Digest.String(), "the source manifest is already a Nydus image, so there is no OCI manifest to keep beside it", instead)
		}
	}
	mo, err := NydusMergedOCI(sm)
	if err != nil {
		return err
	}
	_, empty := NydusEmptyLayer()
	mp.MergedOCI = &MergedOCIPlan{Digest: mo.Descriptor.Digest, MediaType: mo.Descriptor.MediaType, Config: mo.ConfigDescriptor.Digest, EmptyLayer: empty.Digest,
		Reason: "kept beside the Nydus manifest: the source layers unchanged after an empty gzip layer (" + AnnotationNydusEmptyLayer + "), so runtimes never share its snapshots with the stock image"}
	return nil
}

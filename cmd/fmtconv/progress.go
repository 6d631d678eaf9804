package main

import (
	"io"

	"github.com/fmtconv/fmtconv/convert"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progressBars draws one bar per layer on a terminal.
type progressBars struct{ p *mpb.Progress }

func newProgressBars(w io.Writer) *progressBars {
	return &progressBars{p: mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh())}
}

func (b *progressBars) Layer(d ocispec.Descriptor, action string) convert.LayerProgress {
	bar := b.p.AddBar(d.Size,
		mpb.PrependDecorators(decor.Name(action+" "+d.Digest.Encoded()[:12]+" "), decor.CountersKibiByte("% .1f / % .1f")),
		mpb.AppendDecorators(decor.OnComplete(decor.Percentage(), "done")),
		mpb.BarRemoveOnComplete())
	return &layerBar{bar}
}

func (b *progressBars) Wait() { b.p.Wait() }

type layerBar struct{ bar *mpb.Bar }

func (l *layerBar) Add(n int64) { l.bar.IncrInt64(n) }
func (l *layerBar) Done(err error) {
	if err != nil {
		l.bar.Abort(true)
		return
	}
	l.bar.SetTotal(-1, true)
}

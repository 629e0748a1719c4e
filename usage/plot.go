package usage

// The picture is drawn with gonum.org/v1/plot: its plotters, axes, ticks
// and legends, and its SVG and PNG canvases (vg/vgsvg, vg/vgimg), with
// the Liberation fonts it embeds, so no font need be installed.

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// KindColors are the colors of the kinds in pictures.
var KindColors = [numKinds]color.RGBA{
	Heap:  {0xd6, 0x27, 0x28, 0xff},
	Anon:  {0xff, 0x7f, 0x0e, 0xff},
	Stack: {0x94, 0x67, 0xbd, 0xff},
	Code:  {0x1f, 0x77, 0xb4, 0xff},
	File:  {0x17, 0xbe, 0xcf, 0xff},
	Shmem: {0x2c, 0xa0, 0x2c, 0xff},
	Other: {0x7f, 0x7f, 0x7f, 0xff},
}

// Point is the figures of one sample, as the timeline keeps them.
type Point struct {
	Time  time.Time
	Kinds [numKinds]Figures
}

// PointOf returns the timeline's point of a sample.
func PointOf(s *Sample) Point { return Point{s.Time, s.Kinds} }

// Plot draws, as SVG or PNG (format "svg" or "png"), the resident bytes of
// each kind over the timeline, stacked in bands, and the address space of
// the last sample as a strip: its regions side by side in address order,
// each as wide as it is large, colored by kind and pale as far as it is
// not resident.
func Plot(w io.Writer, format string, timeline []Point, last *Sample) error {
	width, height := 11*vg.Inch, 7.5*vg.Inch
	var c vg.CanvasWriterTo
	switch format {
	case "svg":
		c = vgsvg.New(width, height)
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(110))}
	default:
		return fmt.Errorf("cannot draw %q: want a file name ending in .svg or .png", format)
	}
	bands, err := timelinePlot(timeline, last)
	if err != nil {
		return err
	}
	strip, err := stripPlot(last)
	if err != nil {
		return err
	}
	dc := draw.New(c)
	bands.Draw(draw.Crop(dc, 0, 0, height*0.32, 0))
	strip.Draw(draw.Crop(dc, 0, 0, 0, -height*0.68))
	_, err = c.WriteTo(w)
	return err
}

// unitFor picks the binary unit in which max reads best.
func unitFor(max uint64) (string, float64) {
	name, div := "bytes", 1.0
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if float64(max)/div < 2048 {
			break
		}
		name, div = u, div*1024
	}
	return name, div
}

func timelinePlot(timeline []Point, last *Sample) (*plot.Plot, error) {
	if len(timeline) == 1 {
		// One sample: a band one second wide, not a line of no width.
		p := timeline[0]
		p.Time = p.Time.Add(time.Second)
		timeline = append(timeline, p)
	}
	var most uint64
	for _, pt := range timeline {
		var sum uint64
		for _, f := range pt.Kinds {
			sum += f.Rss
		}
		most = maxU(most, sum)
	}
	unit, div := unitFor(most)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("process %d (%s): resident memory by kind", last.PID, last.Comm)
	p.X.Label.Text = "seconds since the first sample"
	p.Y.Label.Text = "resident (" + unit + ")"
	// Headroom above the bands for the legend.
	p.Y.Min, p.Y.Max = 0, max(float64(most)/div*1.4, 1)
	p.Legend.Top, p.Legend.Left = true, true
	start := timeline[0].Time
	below := make([]float64, len(timeline))
	for _, k := range Kinds {
		ring := make(plotter.XYs, 0, 2*len(timeline))
		above := make([]float64, len(timeline))
		for i, pt := range timeline {
			above[i] = below[i] + float64(pt.Kinds[k].Rss)/div
			ring = append(ring, plotter.XY{X: pt.Time.Sub(start).Seconds(), Y: above[i]})
		}
		for i := len(timeline) - 1; i >= 0; i-- {
			ring = append(ring, plotter.XY{X: timeline[i].Time.Sub(start).Seconds(), Y: below[i]})
		}
		band, err := plotter.NewPolygon(ring)
		if err != nil {
			return nil, err
		}
		band.Color = KindColors[k]
		band.LineStyle.Width = 0
		p.Add(band)
		p.Legend.Add(fmt.Sprintf("%s %s", k, fmtUnit(float64(timeline[len(timeline)-1].Kinds[k].Rss)/div, unit)), band)
		below = above
	}
	p.Add(plotter.NewGrid())
	return p, nil
}

func fmtUnit(v float64, unit string) string {
	if unit == "bytes" {
		return fmt.Sprintf("%.0f B", v)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

// shades is how many steps of paleness the strip tells resident shares
// apart by.
const shades = 5

func stripPlot(s *Sample) (*plot.Plot, error) {
	unit, div := unitFor(s.Total.Size)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("address space: %d regions, %s mapped, %s resident; to scale by size, pale where not resident",
		len(s.Regions), fmtUnit(float64(s.Total.Size)/div, unit), fmtUnit(float64(s.Total.Rss)/div, unit))
	p.X.Label.Text = "mapped (" + unit + "), regions in address order"
	p.HideY()
	p.Y.Min, p.Y.Max = 0, 1
	var rings [numKinds][shades][]plotter.XYer
	at := 0.0
	for _, run := range runs(s, float64(s.Total.Size)/2000) {
		x0, x1 := at/div, (at+float64(run.size))/div
		at += float64(run.size)
		shade := int(math.Round(float64(shades-1) * float64(run.rss) / float64(max(run.size, 1))))
		shade = min(max(shade, 0), shades-1)
		rings[run.kind][shade] = append(rings[run.kind][shade], plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}, {X: x1, Y: 1}, {X: x0, Y: 1}})
	}
	for _, k := range Kinds {
		for shade, rs := range rings[k] {
			if len(rs) == 0 {
				continue
			}
			poly, err := plotter.NewPolygon(rs...)
			if err != nil {
				return nil, err
			}
			poly.Color = pale(KindColors[k], 0.15+0.85*float64(shade)/(shades-1))
			poly.LineStyle.Width = 0
			p.Add(poly)
		}
	}
	p.X.Min, p.X.Max = 0, float64(s.Total.Size)/div
	return p, nil
}

// run is adjacent regions of one kind drawn as one rectangle.
type run struct {
	kind      Kind
	size, rss uint64
}

// runs joins adjacent regions of one kind narrower than narrow bytes, so a
// strip of 60,000 regions is not 60,000 rectangles thinner than a pixel.
func runs(s *Sample, narrow float64) []run {
	var rs []run
	for _, r := range s.Regions {
		n := len(rs)
		if n > 0 && rs[n-1].kind == r.Kind && float64(rs[n-1].size) < narrow && float64(r.Figures.Size) < narrow {
			rs[n-1].size += r.Figures.Size
			rs[n-1].rss += r.Rss
			continue
		}
		rs = append(rs, run{r.Kind, r.Figures.Size, r.Rss})
	}
	return rs
}

// pale mixes c with white: share 1 is c itself, 0 white.
func pale(c color.RGBA, share float64) color.RGBA {
	mix := func(v uint8) uint8 { return uint8(math.Round(255 - (255-float64(v))*share)) }
	return color.RGBA{mix(c.R), mix(c.G), mix(c.B), 0xff}
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

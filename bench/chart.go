package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// scalingPoint is one scaling step: read latency and generation rate.
type scalingPoint struct {
	Slots          int
	ReadP50        float64 // ms
	ReadP99        float64 // ms
	GenRowsPerSec  float64
	CopyRowsPerSec float64
}

// writeChart draws read latency and generation rate against the table size
// (log scale) side by side, as a PNG.
func writeChart(path string, pts []scalingPoint) error {
	lat := plot.New()
	lat.Title.Text = "GraphQL timeSlots read latency (32 connections)"
	lat.X.Label.Text = "slots in the table"
	lat.Y.Label.Text = "ms"
	var xs []float64
	var maxLat, maxGen float64
	for _, pt := range pts {
		xs = append(xs, float64(pt.Slots))
		maxLat = max(maxLat, pt.ReadP99)
		maxGen = max(maxGen, pt.GenRowsPerSec, pt.CopyRowsPerSec)
	}
	lat.X.Scale, lat.X.Tick.Marker = plot.LogScale{}, countTicks(xs)
	lat.Y.Min = 0
	gen := plot.New()
	gen.Title.Text = "Generation rate"
	gen.X.Label.Text = "slots generated"
	gen.Y.Label.Text = "rows/s"
	gen.X.Scale, gen.X.Tick.Marker = plot.LogScale{}, countTicks(xs)
	gen.Y.Min = 0

	series := func(p *plot.Plot, name string, c color.Color, dashed bool, y func(scalingPoint) float64) error {
		var xy plotter.XYs
		for _, pt := range pts {
			if v := y(pt); v > 0 {
				xy = append(xy, plotter.XY{X: float64(pt.Slots), Y: v})
			}
		}
		if len(xy) == 0 {
			return nil
		}
		l, s, err := plotter.NewLinePoints(xy)
		if err != nil {
			return err
		}
		l.Color, s.Color = c, c
		l.Width = vg.Points(2)
		if dashed {
			l.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
		}
		p.Add(l, s)
		p.Legend.Add(name, l, s)
		return nil
	}
	blue, red, grey := color.RGBA{R: 31, G: 119, B: 180, A: 255}, color.RGBA{R: 214, G: 39, B: 40, A: 255}, color.RGBA{R: 110, G: 110, B: 110, A: 255}
	for _, err := range []error{
		series(lat, "p50", blue, false, func(p scalingPoint) float64 { return p.ReadP50 }),
		series(lat, "p99", red, false, func(p scalingPoint) float64 { return p.ReadP99 }),
		series(gen, "generateSlots", blue, false, func(p scalingPoint) float64 { return p.GenRowsPerSec }),
		series(gen, "COPY ceiling", grey, true, func(p scalingPoint) float64 { return p.CopyRowsPerSec }),
	} {
		if err != nil {
			return err
		}
	}
	// Headroom above the lines for the legends.
	lat.Y.Max, gen.Y.Max = maxLat*1.3, maxGen*1.3
	lat.Legend.Top, gen.Legend.Top = true, true

	img := vgimg.New(vg.Points(900), vg.Points(340))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(20), PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{{lat, gen}}, tiles, dc)
	lat.Draw(canvases[0][0])
	gen.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// countTicks labels a log axis at the measured sizes (10k, 100k, 1M…).
type countTicks []float64

func (c countTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for _, v := range c {
		var label string
		switch {
		case v >= 995e3:
			label = fmt.Sprintf("%.3gM", v/1e6)
		case v >= 1e3:
			label = fmt.Sprintf("%.3gk", v/1e3)
		default:
			label = fmt.Sprintf("%g", v)
		}
		out = append(out, plot.Tick{Value: v, Label: label})
	}
	return out
}

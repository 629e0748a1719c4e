package usage

import (
	"bytes"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPlot(t *testing.T) {
	ms := mappings(t,
		"555555554000-555555556000 r-xp /usr/bin/prog",
		"555555557000-555555578000 rw-p [heap]",
		"7ffff6002000-7ffff6102000 rw-p",
		"7ffff6200000-7ffff6300000 rw-s /memfd:pool",
		"7ffffffde000-7ffffffff000 rw-p [stack]")
	s0 := sampleOf(ms, nil)
	s1 := sampleOf(slices.Clone(ms), nil)
	s1.Time = s0.Time.Add(time.Second)
	timeline := []Point{PointOf(s0), PointOf(s1)}
	var svg, pngOut bytes.Buffer
	if err := Plot(&svg, "svg", timeline, s1); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "heap", "shmem", "address space"} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if err := Plot(&pngOut, "png", timeline[:1], s1); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&pngOut); err != nil {
		t.Fatal(err)
	}
	if err := Plot(&pngOut, "gif", timeline, s1); err == nil {
		t.Error("a GIF was drawn")
	}
}

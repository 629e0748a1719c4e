package procfs

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// figuresOf parses text whole with the figures parser.
func figuresOf(text []byte) ([]MappingFigures, error) {
	var got []MappingFigures
	var p figuresParser
	p.reset(collect(&got))
	if _, err := p.feed(text, true); err != nil {
		return nil, err
	}
	p.end()
	return got, nil
}

// collect returns an add function that appends to ms.
func collect(ms *[]MappingFigures) func(*MappingFigures) {
	return func(m *MappingFigures) { *ms = append(*ms, *m) }
}

// figuresFrom projects what the full parser gives onto MappingFigures.
func figuresFrom(mappings []Mapping) []MappingFigures {
	out := make([]MappingFigures, len(mappings))
	for i, m := range mappings {
		out[i].Region = m.Region
		for _, f := range m.Fields {
			switch f.Name {
			case "Rss":
				out[i].Rss = f.Value
			case "Pss":
				out[i].Pss = f.Value
			case "Swap":
				out[i].Swap = f.Value
			case "Private_Dirty":
				out[i].PrivateDirty = f.Value
			}
		}
		out[i].IO = slices.Contains(m.VmFlags, "io") || slices.Contains(m.VmFlags, "pf")
	}
	return out
}

// checkFigures: where the full parser takes the text, the figures parser
// does and gives the same figures; where the figures parser refuses it,
// so does the full one.
func checkFigures(t *testing.T, text []byte) {
	t.Helper()
	got, err := figuresOf(text)
	if err != nil && !errors.Is(err, ErrParse) {
		t.Fatalf("error does not wrap ErrParse: %v", err)
	}
	full, fullErr := parseSmapsText(append([]byte(nil), text...))
	switch {
	case fullErr == nil && err != nil:
		t.Fatalf("the full parser takes the text, the figures parser says %v", err)
	case fullErr == nil && !slices.Equal(got, figuresFrom(full)):
		t.Fatalf("figures differ from the full parser's:\n%+v\n%+v", got, figuresFrom(full))
	case err != nil && fullErr == nil:
		t.Fatalf("figures parser refuses what the full parser takes: %v", err)
	}
}

func TestParseFiguresFixtures(t *testing.T) {
	for _, name := range []string{"testdata/fixture.smaps", "testdata/sleep.smaps"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		checkFigures(t, b)
		got, _ := figuresOf(b)
		if len(got) == 0 || got[0].Rss == 0 && got[0].Pss == 0 {
			t.Errorf("%s: %+v", name, got)
		}
	}
	checkFigures(t, []byte(smapsOf(50)))
}

func TestParseFiguresIO(t *testing.T) {
	in := "1000-2000 rw-s 0 00:05 7 /dev/mem\nRss: 4 kB\nVmFlags: rd wr sh io pf\n" +
		"2000-3000 rw-p 0 00:00 0\nRss: 8 kB\nPss: 8 kB\nRss: 12 kB\nVmFlags: rd wr\n"
	got, err := figuresOf([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].IO || got[1].IO || got[1].Rss != 12<<10 || got[1].Pss != 8<<10 {
		t.Errorf("got %+v", got)
	}
}

func FuzzParseFigures(f *testing.F) {
	fuzzSeeds(f, "smaps")
	f.Add([]byte("1000-2000 rw-p 0 00:00 0\nRss: 4 kB\nVmFlags: io\nSwap:  1 kB\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFigures(t, b)
	})
}

// BenchmarkParseFigures parses the smaps of a process with 60,000
// mappings keeping only the figures, against the full parser (reused, as
// SmapsScanner used it before).
func BenchmarkParseFigures(b *testing.B) {
	text := []byte(smapsOf60000())
	b.Run("figures", func(b *testing.B) {
		var p figuresParser
		n := 0
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			p.reset(func(*MappingFigures) { n++ })
			if _, err := p.feed(text, true); err != nil {
				b.Fatal(err)
			}
			p.end()
		}
	})
	b.Run("full", func(b *testing.B) {
		var p smapsParser
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.parse(text); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestKernelMapsLine: the one-pass parser takes the lines the kernel
// writes, as parseMapsLine parses them, and leaves others to it.
func TestKernelMapsLine(t *testing.T) {
	for _, line := range []string{
		"7f2a00000000-7f2a00021000 rw-p 00000000 00:00 0 ",
		"555555554000-555555556000 r-xp 00001000 fd:01 1835012                    /usr/bin/prog",
		"7ffff7fc0000-7ffff7fc2000 r-xp 00000000 00:00 0                          [vdso]",
		"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
		"7f2a00000000-7f2a00021000 rw-s 00000000 00:01 4242                       /memfd:pool (deleted)",
		"1000-2000 rw-p 0 00:00 0",
		"1000-2000 rw-p 0 00:00 0 a path with  spaces ",
	} {
		got, ok := kernelMapsLine(line)
		want, err := parseMapsLine(line)
		if !ok || err != nil || got != want {
			t.Errorf("%q: %+v, %v; parseMapsLine: %+v, %v", line, got, ok, want, err)
		}
	}
	for _, line := range []string{
		"", "1000-2000", "2000-1000 rw-p 0 00:00 0", "1000-2000  rw-p 0 00:00 0", "1000-2000 rw-p 0 0000 0",
		"1000-2000 rw-p 0 00:00:00 0", "1000-2000 rw-p 0 00:00 0x1", "1000-2000 rw-p 0 00:00 \t0",
		"10000000000000000-20000000000000000 rw-p 0 00:00 0", "1000-2000 rw-q 0 00:00 0",
		"1000-2000 rw-p 0 00:00 99999999999999999999",
	} {
		if got, ok := kernelMapsLine(line); ok {
			t.Errorf("%q taken: %+v", line, got)
		}
	}
}

func FuzzKernelMapsLine(f *testing.F) {
	fuzzSeeds(f, "maps")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, line := range strings.Split(string(b), "\n") {
			got, ok := kernelMapsLine(line)
			if !ok {
				continue
			}
			want, err := parseMapsLine(line)
			if err != nil || got != want {
				t.Fatalf("%q: %+v; parseMapsLine: %+v, %v", line, got, want, err)
			}
		}
	})
}

package procfs

import (
	"errors"
	"os"
	"slices"
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

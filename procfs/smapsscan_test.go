package procfs

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSmapsScannerChunks: text fed in chunks cut anywhere, even inside a
// line, parses as the whole text does.
func TestSmapsScannerChunks(t *testing.T) {
	text := []byte(smapsOf(3000))
	text = text[:strings.LastIndex(string(text), "\n")+1]
	want, err := figuresOf(text)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Clone(want)
	var s SmapsScanner
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 3 {
		var got []MappingFigures
		s.parser.reset(collect(&got))
		s.carry = s.carry[:0]
		for rest := text; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(3000))
			if err := s.feed(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := s.end(nil); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: %d mappings from chunks, %d from the whole", round, len(got), len(want))
		}
	}
}

// TestSmapsScannerSelf: Scan reads this process's smaps as Smaps does,
// again and again, with a file short enough to be read whole and one
// read in chunks while parsed.
func TestSmapsScannerSelf(t *testing.T) {
	p, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var s SmapsScanner
	check := func(what string) {
		t.Helper()
		var got []MappingFigures
		if err := s.Scan(p, collect(&got)); err != nil {
			t.Fatal(err)
		}
		want, err := p.Smaps()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || len(got) < len(want)-8 || len(got) > len(want)+8 {
			t.Fatalf("%s: Scan found %d mappings, Smaps %d", what, len(got), len(want))
		}
		if got[0].Region != want[0].Region || got[0].Rss != figuresFrom(want[:1])[0].Rss {
			t.Errorf("%s: first mapping: %+v, Smaps: %+v", what, got[0], want[0])
		}
	}
	for range 3 {
		check("short")
	}
	// Enough mappings for several chunks: 2,000 pages with alternating
	// protections (each entry is some 700 bytes of text).
	const n = 2000
	page := os.Getpagesize()
	m, err := unix.Mmap(-1, 0, n*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	for i := 0; i < n; i += 2 {
		if err := unix.Mprotect(m[i*page:(i+1)*page], unix.PROT_READ); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		check("long")
	}
	if len(s.chunks) < 2 {
		t.Errorf("%d chunks made for %d mappings", len(s.chunks), n)
	}
}

// TestSmapsScannerRollup: Rollup reads this process's totals as
// SmapsRollup does, and smaps_rollup text of two entries is refused.
func TestSmapsScannerRollup(t *testing.T) {
	p, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var s SmapsScanner
	got, ok, err := s.Rollup(p)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	want, err := p.SmapsRollup()
	if err != nil {
		t.Fatal(err)
	}
	if got.Path != "[rollup]" || got.Region != want.Region || got.Rss == 0 {
		t.Errorf("Rollup: %+v, SmapsRollup: %+v", got, want)
	}
}

// TestSmapsScannerFiles: the scanner reads a copy of a process's files
// (a procfs root of saved files) as it reads /proc: smaps, maps, and
// smaps_rollup, which must hold one entry.
func TestSmapsScannerFiles(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "3029")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, from := range map[string]string{"stat": "fixture.stat", "smaps": "sleep.smaps", "smaps_rollup": "sleep.smaps_rollup"} {
		b, err := os.ReadFile(filepath.Join("testdata", from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if name == "smaps" { // its maps: the lines that are no field
			var maps []string
			for _, line := range strings.SplitAfter(string(b), "\n") {
				if _, _, field := smapsFieldLine(strings.TrimSuffix(line, "\n")); !field && line != "" {
					maps = append(maps, line)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "maps"), []byte(strings.Join(maps, "")), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	p, err := OpenIn(root, 3029)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var s SmapsScanner
	var smaps, maps []MappingFigures
	if err := s.Scan(p, collect(&smaps)); err != nil {
		t.Fatal(err)
	}
	if err := s.ScanMaps(p, collect(&maps)); err != nil {
		t.Fatal(err)
	}
	if len(smaps) == 0 || len(maps) != len(smaps) {
		t.Fatalf("%d mappings in smaps, %d in maps", len(smaps), len(maps))
	}
	for i := range maps {
		if maps[i].Region != smaps[i].Region || maps[i].Rss != 0 {
			t.Errorf("maps %+v, smaps %+v", maps[i], smaps[i])
		}
	}
	if r, ok, err := s.Rollup(p); err != nil || !ok || r.Rss != 1812<<10 || r.Pss != 212<<10 {
		t.Errorf("Rollup: %+v, %v, %v", r, ok, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "smaps_rollup"))
	if err := os.WriteFile(filepath.Join(dir, "smaps_rollup"), append(b, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Rollup(p); ok || !errors.Is(err, ErrParse) {
		t.Errorf("Rollup of two entries: %v, %v", ok, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "smaps_rollup"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Rollup(p); ok || err != nil {
		t.Errorf("Rollup of an empty file: %v, %v", ok, err)
	}
}

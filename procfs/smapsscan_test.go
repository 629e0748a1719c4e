package procfs

import (
	"math/rand/v2"
	"os"
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

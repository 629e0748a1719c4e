package procfs

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// TestSmapsScannerChunks: text fed in chunks cut anywhere, even inside a
// line, parses as the whole text does.
func TestSmapsScannerChunks(t *testing.T) {
	text := []byte(smapsOf(3000))
	text = text[:strings.LastIndex(string(text), "\n")+1]
	want, err := parseSmapsText(append([]byte(nil), text...))
	if err != nil {
		t.Fatal(err)
	}
	var s SmapsScanner
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 3 {
		s.parser.reset(0)
		s.carry = s.carry[:0]
		for rest := text; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(3000))
			if err := s.feed(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if _, err := s.parser.feed(s.carry, true); err != nil {
			t.Fatal(err)
		}
		if got := s.parser.end(); !sameMappings(got, want) {
			t.Fatalf("round %d: %d mappings from chunks, %d from the whole", round, len(got), len(want))
		}
	}
}

// TestSmapsScannerSelf: Scan reads this process's smaps as Smaps does,
// again and again.
func TestSmapsScannerSelf(t *testing.T) {
	p, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var s SmapsScanner
	for range 3 {
		got, err := s.Scan(p)
		if err != nil {
			t.Fatal(err)
		}
		want, err := p.Smaps()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 || len(got) < len(want)-8 || len(got) > len(want)+8 {
			t.Fatalf("Scan found %d mappings, Smaps %d", len(got), len(want))
		}
		if got[0].Region != want[0].Region || len(got[0].Fields) != len(want[0].Fields) {
			t.Errorf("first mapping: %+v, Smaps: %+v", got[0], want[0])
		}
	}
}

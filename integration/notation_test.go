//go:build linux

package integration

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// One address notation: every place search and the scan's list print
// pastes into an address argument and means the same byte.

// placesPaste checks that the lines' places (field n) resolve, in
// process pid, to the lines' addresses (field 0): up to four places of
// each kind (a module, [heap], plain hex).
func placesPaste(t *testing.T, pid int, lines []string, n int) int {
	t.Helper()
	checked := 0
	kinds := map[string]int{}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) <= n || strings.HasPrefix(line, " ") {
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		kind, _, _ := strings.Cut(f[n], "+")
		if err != nil || kinds[kind] == 4 {
			continue
		}
		kinds[kind]++
		checked++
		if at, ok := resolve(t, pid, f[n]); !ok || at != addr {
			t.Errorf("%q: %s leads to %#x, not %#x", line, f[n], at, addr)
		}
	}
	return checked
}

// TestSearchPlacesPaste: search names a match in a module from the
// module's load base (game+40c0, as the expression game+40c0 means it),
// one on the heap as [heap]+OFF, and read -r takes both back.
func TestSearchPlacesPaste(t *testing.T) {
	g := startGame(t)
	r := procmem(t, "-p", itoa(g.pid), "search", "-t", "int32", "100", "-w")
	mustSucceed(t, r, "search")
	lines := strings.Split(r.stdout, "\n")
	if n := placesPaste(t, g.pid, lines, 2); n < 2 || !strings.Contains(r.stdout, "  game+") || !strings.Contains(r.stdout, "  [heap]+") {
		t.Errorf("%d places checked of:\n%s", n, r.stdout)
	}
}

// TestSearchRangeOffsets: search -r names a match from the start of its
// region, not from the start of the range searched.
func TestSearchRangeOffsets(t *testing.T) {
	g := startGame(t)
	name := g.addr["health"] - 0x10 // the player's name, "hero"
	heap := procmem(t, "-p", itoa(g.pid), "info", "-P", "[heap]")
	mustSucceed(t, heap, "info")
	start, err := strconv.ParseUint(strings.SplitN(heap.stdout, "-", 2)[0], 16, 64)
	if err != nil {
		t.Fatalf("info -P [heap]: %q", heap.stdout)
	}
	r := procmem(t, "-p", itoa(g.pid), "search", "-r", fmt.Sprintf("%x:+1000", name-0x100), "-s", "hero")
	mustSucceed(t, r, "search -r")
	want := fmt.Sprintf("%016x  rw-p  [heap]+%x\n", name, name-start)
	if !strings.HasPrefix(r.stdout, want) {
		t.Errorf("search -r printed\n%s\nwant its first line %q", r.stdout, want)
	}
	placesPaste(t, g.pid, strings.Split(r.stdout, "\n"), 2)
}

// TestScanListPlacesPaste: the places the scan's list prints paste back.
func TestScanListPlacesPaste(t *testing.T) {
	g := startGame(t)
	s := newScanner(t, g)
	s.count("100")
	var lines []string
	for _, line := range s.listed(200) {
		lines = append(lines, line)
	}
	if n := placesPaste(t, g.pid, lines, 2); n < 2 {
		t.Errorf("%d places checked of %q", n, lines)
	}
	// [heap]+OFF and game+OFF go into write -a as they are printed.
	for _, line := range lines {
		if f := strings.Fields(line); strings.HasPrefix(f[2], "[heap]+") {
			mustSucceed(t, procmem(t, "-p", itoa(g.pid), "write", "-a", f[2], "-b", "65 00 00 00"), "write -a "+f[2])
			break
		}
	}
}

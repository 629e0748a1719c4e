package main

import (
	"fmt"
	"testing"

	"github.com/procmem/procmem/procfs"
)

// staticRange is a static base for tests: [start, end) named mod, offsets
// from start.
func staticRange(mod string, start, end uint64) staticBase {
	return func(addr uint64) (string, uint64, bool) {
		if addr >= start && addr < end {
			return mod, addr - start, true
		}
		return "", 0, false
	}
}

func chainsOf(cs []chain) []string {
	var s []string
	for _, c := range cs {
		s = append(s, c.String())
	}
	return s
}

// TestFindChains searches synthetic memory: a two-level chain from a
// static base, a longer one, a cycle, many candidates, and the limits.
func TestFindChains(t *testing.T) {
	const target = 0x5000_000c
	ps := []pointer{
		{0x1010, 0x4000_0000},      // static -> world
		{0x4000_0008, 0x5000_0000}, // world+8 -> player; player+0xc is the target
		{0x1020, 0x6000_0000},      // static -> a -> b -> world (longer)
		{0x6000_0000, 0x7000_0000},
		{0x7000_0010, 0x4000_0000},
		{0x8000_0000, 0x8000_0008}, // a cycle, unreachable from the target
		{0x8000_0008, 0x8000_0000},
		{0x4000_0008, 0x4000_0008}, // a pointer to itself on the way
	}
	m := sortPointers(ps)
	static := staticRange("game", 0x1000, 0x2000)
	lim := searchLimits{depth: 4, maxOffset: 0x100, results: 10, nodes: 100}
	got := chainsOf(findChains(m, static, target, lim))
	want := []string{"[[game+10]+8]+c", "[[[[game+20]+0]+10]+8]+c"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("chains: %q, want %q", got, want)
	}
	lim.depth = 2
	if got := chainsOf(findChains(m, static, target, lim)); fmt.Sprint(got) != fmt.Sprint(want[:1]) {
		t.Errorf("depth 2: %q, want %q", got, want[:1])
	}
	lim.depth, lim.maxOffset = 4, 8
	if got := findChains(m, static, target, lim); len(got) != 0 {
		t.Errorf("max offset 8 (the last step needs 0xc): %q, want none", chainsOf(got))
	}

	// Many candidates: every one of 1,000 statics points near the target.
	ps = nil
	for i := uint64(0); i < 1000; i++ {
		ps = append(ps, pointer{0x1000 + 8*i, target - i%0x10})
	}
	lim = searchLimits{depth: 4, maxOffset: 0x100, results: 5, nodes: 100}
	got = chainsOf(findChains(sortPointers(ps), staticRange("game", 0x1000, 0x3000), target, lim))
	if len(got) != 5 || got[0] != "[game+0]+0" {
		t.Errorf("many candidates, limit 5: %q", got)
	}
}

func TestStaticBases(t *testing.T) {
	regions := []struct {
		start, end uint64
		path       string
		inode      uint64
		w          bool
	}{
		{0x1000, 0x2000, "/bin/game", 1, false},
		{0x2000, 0x3000, "/bin/game", 1, true},
		{0x3000, 0x4000, "", 0, true}, // .bss past the file
		{0x9000, 0xa000, "", 0, true}, // the heap or mmap: not static
	}
	var rs []procfs.Region
	for _, r := range regions {
		rs = append(rs, procfs.Region{Start: r.start, End: r.end, Path: r.path, Inode: r.inode, Perms: procfs.Perms{Read: true, Write: r.w}})
	}
	static := staticBases(rs)
	for _, c := range []struct {
		addr uint64
		mod  string
		off  uint64
		ok   bool
	}{
		{0x2010, "game", 0x1010, true}, {0x3008, "game", 0x2008, true}, {0x1010, "", 0, false}, {0x9000, "", 0, false}, {0x2011, "", 0, false},
	} {
		mod, off, ok := static(c.addr)
		if mod != c.mod || off != c.off || ok != c.ok {
			t.Errorf("static(%#x) = %q %#x %v, want %q %#x %v", c.addr, mod, off, ok, c.mod, c.off, c.ok)
		}
	}
}

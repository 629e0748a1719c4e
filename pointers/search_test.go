package pointers

import (
	"fmt"
	"slices"
	"testing"

	"github.com/procmem/procmem/addrexpr"
	"github.com/procmem/procmem/procfs"
)

// testMap makes a map of the given pointers, with one module (the
// program, "/bin/game", static data at [static.Start, static.End) from
// base) and the given stacks.
func testMap(base uint64, static Range, stacks []Stack, ps []Pointer) *Map {
	mods := []Module{{Path: "/bin/game", Base: base, Static: []Range{static}, Main: true}}
	m := &Map{
		Regions: []procfs.Region{{Start: base, End: base + static.End, Path: "/bin/game", Inode: 1, Perms: procfs.Perms{Read: true, Write: true}}},
		Modules: mods, Stacks: stacks,
	}
	statics := staticData(mods, stacks)
	es := make([]entry, len(ps))
	for i, p := range ps {
		es[i] = entry{at: p.Addr, value: p.Value}
		for _, s := range statics {
			if s.contains(p.Addr) {
				es[i].at |= staticFlag
			}
		}
	}
	radixSort(es)
	m.fill(es, nil)
	return m
}

func exprs(m *Map, cs []Chain) []string {
	n := addrexpr.NewNamer(m.Regions)
	var out []string
	for _, c := range cs {
		out = append(out, c.Expr(n))
	}
	return out
}

var testLimits = Limits{Depth: 4, MaxOffset: 0x100, Nodes: 100, Chains: 100}

// TestSearchOneRun searches synthetic memory: a two-level chain from a
// static base, a longer one, a cycle, a pointer to itself, and the
// limits.
func TestSearchOneRun(t *testing.T) {
	const target = 0x5000_000c
	ps := []Pointer{
		{0x1010, 0x4000_0000},      // static -> world
		{0x4000_0008, 0x5000_0000}, // world+8 -> player; player+0xc is the target
		{0x1020, 0x6000_0000},      // static -> a -> b -> world (longer)
		{0x6000_0000, 0x7000_0000},
		{0x7000_0010, 0x4000_0000},
		{0x8000_0000, 0x8000_0008}, // a cycle, unreachable from the target
		{0x8000_0008, 0x8000_0000},
		{0x4000_0008, 0x4000_0008}, // a pointer to itself on the way
	}
	m := testMap(0x1000, Range{0, 0x1000}, nil, ps)
	run := []Run{{Map: m, Target: target}}
	got := exprs(m, Search(run, testLimits).Chains)
	want := []string{"[[game+10]+8]+c", "[[[[game+20]+0]+10]+8]+c"}
	if !slices.Equal(got, want) {
		t.Errorf("chains: %q, want %q", got, want)
	}
	lim := testLimits
	lim.Depth = 2
	if got := exprs(m, Search(run, lim).Chains); !slices.Equal(got, want[:1]) {
		t.Errorf("depth 2: %q, want %q", got, want[:1])
	}
	lim.Depth, lim.MaxOffset = 4, 8
	if got := Search(run, lim).Chains; len(got) != 0 {
		t.Errorf("max offset 8 (the last step needs 0xc): %q, want none", exprs(m, got))
	}

	// Many candidates: every one of 1,000 statics points near the target.
	ps = nil
	for i := range uint64(1000) {
		ps = append(ps, Pointer{0x1000 + 8*i, target - i%0x10})
	}
	m = testMap(0x1000, Range{0, 0x2000}, nil, ps)
	lim = Limits{Depth: 4, MaxOffset: 0x100, Nodes: 100, Chains: 5}
	res := Search([]Run{{Map: m, Target: target}}, lim)
	if got := exprs(m, res.Chains); len(got) != 5 || !res.ChainsCut {
		t.Errorf("many candidates, at most 5: %q, cut %v", got, res.ChainsCut)
	}
}

// TestSearchAcrossRuns: three runs whose heaps lie elsewhere; the true
// chain holds in all three, a decoy holds in the first only, and each run
// says how many candidates it removed.
func TestSearchAcrossRuns(t *testing.T) {
	run := func(heap, static uint64, decoy bool) Run {
		world, player := heap+0x100, heap+0x800
		ps := []Pointer{
			{static + 0x10, world},        // game+10 -> world
			{world + 8, player},           // world+8 -> player
			{static + 0x18, heap + 0x700}, // game+18 -> something before the player
		}
		if decoy {
			ps = append(ps, Pointer{heap + 0x7f0, player - 0x10}) // [[game+18]+f0]+1c: this run only
		}
		return Run{Map: testMap(static, Range{0, 0x1000}, nil, ps), Target: player + 0xc}
	}
	runs := []Run{run(0x5000_0000, 0x1000, true), run(0x6100_0000, 0x3000, false), run(0x7200_0000, 0x9000, false)}
	one := Search(runs[:1], testLimits)
	if got := exprs(runs[0].Map, one.Chains); !slices.Equal(got, []string{"[[game+10]+8]+c", "[[game+18]+f0]+1c"}) {
		t.Fatalf("one run: %q", got)
	}
	all := Search(runs, testLimits)
	if got := exprs(runs[0].Map, all.Chains); !slices.Equal(got, []string{"[[game+10]+8]+c"}) {
		t.Errorf("three runs: %q, want only the true chain", got)
	}
	if all.Removed[1] == 0 || all.Removed[2] != 0 {
		t.Errorf("removed by each run: %v; want the second run to remove the decoy", all.Removed)
	}
}

// TestSearchStacks: a value reached only from a thread's stack is found
// with --stack 2, as an offset below the stack's top, and in another run
// whose stack lies elsewhere.
func TestSearchStacks(t *testing.T) {
	run := func(stackTop, heap uint64) Run {
		stacks := []Stack{{Thread: 0, Start: 0x7ff0_0000, Top: 0x7ff1_0000}, {Thread: 1, Start: stackTop - 0x10000, Top: stackTop}}
		ps := []Pointer{{stackTop - 0x1f8, heap}}
		return Run{Map: testMap(0x1000, Range{0, 0x1000}, stacks, ps), Target: heap + 0x20}
	}
	runs := []Run{run(0x7e00_0000, 0x5000_0000), run(0x7d00_0000, 0x5100_0000)}
	lim := testLimits
	if got := Search(runs, lim).Chains; len(got) != 0 {
		t.Errorf("without --stack: %q", exprs(runs[0].Map, got))
	}
	lim.Stacks, lim.StackSize = 1, 0x1000
	if got := Search(runs, lim).Chains; len(got) != 0 {
		t.Errorf("--stack 1 (thread 1 is the second): %q", exprs(runs[0].Map, got))
	}
	lim.Stacks = 2
	if got := exprs(runs[0].Map, Search(runs, lim).Chains); !slices.Equal(got, []string{"[[stack:1]-1f8]+20"}) {
		t.Errorf("--stack 2: %q", got)
	}
	lim.StackSize = 0x100
	if got := Search(runs, lim).Chains; len(got) != 0 {
		t.Errorf("stack size 0x100 (the base is 0x1f8 below the top): %q", exprs(runs[0].Map, got))
	}
}

func TestRank(t *testing.T) {
	lib := Base{Module: "/lib/libc.so.6", Offset: 0x10}
	game := Base{Module: "/bin/game", Main: true, Offset: 0x4000}
	stack := Base{Thread: 1, Offset: 0x10}
	chains := []Chain{
		{stack, []uint64{8}},
		{lib, []uint64{0x10, 8}},
		{lib, []uint64{8}},
		{game, []uint64{0x100}},
		{game, []uint64{0x10}},
		{game, []uint64{0, 0, 0}},
	}
	chains = Rank(append(chains, chains[0]))
	var got []string
	for _, c := range chains {
		got = append(got, fmt.Sprintf("%s/%d+%x%x", c.Base.Module, c.Base.Thread, c.Base.Offset, c.Offsets))
	}
	want := []string{"/bin/game/0+4000[10]", "/bin/game/0+4000[100]", "/lib/libc.so.6/0+10[8]", "/1+10[8]", "/lib/libc.so.6/0+10[10 8]", "/bin/game/0+4000[0 0 0]"}
	if !slices.Equal(got, want) {
		t.Errorf("ranked:\n%q\nwant\n%q", got, want)
	}
}

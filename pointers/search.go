package pointers

import (
	"cmp"
	"slices"
	"sort"
)

// Run is one run of a program that the chains of a search must hold in: a
// pointer map of it, and where the target is in it.
type Run struct {
	Map    *Map
	Target uint64
	Name   string // how messages name it: "run1.map", "process 4242"
}

// Limits bound a search.
type Limits struct {
	Depth     int    // dereferences at most
	MaxOffset uint64 // each offset from 0 to MaxOffset
	Stacks    int    // the stacks of the first Stacks threads are static bases,
	StackSize uint64 // their StackSize bytes below the top
	Nodes     int    // addresses looked back from per level, at most
	Chains    int    // chains kept at most
}

// Chain is a way from a static base to the target: the pointer at the
// base, then each offset added after a dereference, the last one reaching
// the target: [[base]+Offsets[0]]+Offsets[1].
type Chain struct {
	Base    Base
	Offsets []uint64
}

// Base is where a chain starts: an offset into a module (from its load
// base), or below the top of a thread's stack.
type Base struct {
	Module string // the module's path; "" for a stack
	Main   bool   // the module is the program itself
	Thread int    // for a stack
	Offset uint64
}

// Result is what a search found, and what it left out.
type Result struct {
	Chains     []Chain // the best first (see rank)
	Candidates int     // pointers looked at
	// Removed counts, for each run after the first, the candidates that
	// run was the first to rule out: their offsets lead elsewhere there.
	Removed []int
	// Full lists the levels (dereferences from the target) that reached
	// Limits.Nodes addresses: chains through the others were not looked
	// for.
	Full []int
	// ChainsCut is set when more than Limits.Chains chains were found.
	ChainsCut bool
	// PlacesCut counts the addresses whose places in another run were more
	// than maxPlaces, of which the first were kept.
	PlacesCut int
}

// maxPlaces bounds the places an address of the first run may have in
// another: the same offsets from many pointers to one object.
const maxPlaces = 64

// Search finds the chains of pointers from static bases to the target that
// hold in every run: followed in each run's memory, they lead to that
// run's target. It searches backwards from the target of the first run,
// level by level: the pointers whose value lies at most MaxOffset below an
// address reached, each a candidate. A candidate is checked against every
// other run as soon as it is found: it carries its places there (the
// addresses from which the same offsets lead to that run's target, found
// by exact lookups of the values they need), and one that has none in some
// run is dropped with everything that would have been searched behind it.
// A candidate in static data ends a chain (it is not searched further: a
// longer chain through it only repeats it).
func Search(runs []Run, lim Limits) Result {
	s := newSearch(runs, lim)
	s.run()
	return s.result()
}

// search is one Search under way.
type search struct {
	runs    []Run
	lim     Limits
	bases   []staticRange // the first run's static bases, by address
	statics []Pointer     // the first run's pointers in them, by value
	others  []otherRun
	levels  []level
	seen    map[uint64]struct{}
	found   []found
	res     Result
	stopped bool
}

// staticRange is static data of a module, or the part of a thread's stack
// that counts as static.
type staticRange struct {
	Range
	module int // index in the first run's modules; -1 for a stack
	thread int
}

// otherRun is a run after the first, with the bases of its modules found
// by the first run's module indexes.
type otherRun struct {
	m       *Map
	modBase []uint64 // for each module of the first run: its base here
	modOK   []bool
}

// level is the addresses reached at one number of dereferences from the
// target: in the first run, and their places in the others.
type level struct {
	addr   []uint64
	parent []int32
	offset []uint64 // from the pointer's value to the parent's address
	// places[start[i*k+j] : start[i*k+j+1]] are node i's places in run
	// j+1 (k runs after the first).
	places []uint64
	start  []uint32
}

// found is a chain found: from static pointer base, offset off to node at
// level.
type found struct {
	level, node int32
	base        Base
	off         uint64
}

func newSearch(runs []Run, lim Limits) *search {
	s := &search{runs: runs, lim: lim, seen: map[uint64]struct{}{}}
	s.res.Removed = make([]int, len(runs))
	first := runs[0].Map
	for i, m := range first.Modules {
		for _, r := range m.Static {
			s.bases = append(s.bases, staticRange{Range{m.Base + r.Start, m.Base + r.End}, i, 0})
		}
	}
	for _, st := range first.Stacks[:min(lim.Stacks, len(first.Stacks))] {
		if st.Known() {
			s.bases = append(s.bases, staticRange{Range{max(st.Start, st.Top-min(st.Top, lim.StackSize)), st.Top}, -1, st.Thread})
		}
	}
	slices.SortFunc(s.bases, func(a, b staticRange) int { return cmp.Compare(a.Start, b.Start) })
	for _, p := range first.bases {
		if _, ok := s.base(p.Addr); ok {
			s.statics = append(s.statics, p)
		}
	}
	slices.SortFunc(s.statics, func(a, b Pointer) int {
		return cmp.Or(cmp.Compare(a.Value, b.Value), cmp.Compare(a.Addr, b.Addr))
	})
	for _, r := range runs[1:] {
		o := otherRun{m: r.Map, modBase: make([]uint64, len(first.Modules)), modOK: make([]bool, len(first.Modules))}
		for i, m := range first.Modules {
			if mod, ok := r.Map.module(m.Path); ok {
				o.modBase[i], o.modOK[i] = mod.Base, true
			}
		}
		s.others = append(s.others, o)
	}
	return s
}

// base tells whether addr in the first run is a static base, and which.
func (s *search) base(addr uint64) (Base, bool) {
	i := sort.Search(len(s.bases), func(i int) bool { return s.bases[i].Start > addr }) - 1
	if i < 0 || !s.bases[i].contains(addr) { // the ranges do not overlap
		return Base{}, false
	}
	b := s.bases[i]
	if b.module < 0 {
		return Base{Thread: b.thread, Offset: s.runs[0].Map.Stacks[b.thread].Top - addr}, true
	}
	m := s.runs[0].Map.Modules[b.module]
	return Base{Module: m.Path, Main: m.Main, Offset: addr - m.Base}, true
}

// baseIn returns where base b is in another run.
func (s *search) baseIn(o *otherRun, b Base) (uint64, bool) {
	if b.Module == "" {
		st, ok := o.m.stack(b.Thread)
		if !ok || st.Top-st.Start < b.Offset {
			return 0, false
		}
		return st.Top - b.Offset, true
	}
	mod, ok := o.m.module(b.Module)
	return mod.Base + b.Offset, ok
}

func (s *search) run() {
	s.levels = []level{{addr: []uint64{s.runs[0].Target}, parent: []int32{-1}, offset: []uint64{0}}}
	lv := &s.levels[0]
	lv.start = []uint32{0}
	for _, r := range s.runs[1:] {
		lv.places = append(lv.places, r.Target)
		lv.start = append(lv.start, uint32(len(lv.places)))
	}
	s.seen[s.key(s.runs[0].Target, lv.places)] = struct{}{}
	for depth := 0; depth < s.lim.Depth && len(s.levels[depth].addr) > 0 && !s.stopped; depth++ {
		s.expand(depth)
	}
}

// expand looks back from every address of level depth: each pointer to at
// most MaxOffset below it is a candidate, a static one ends a chain, any
// other is an address of the next level if that is still searched.
func (s *search) expand(depth int) {
	last := depth+1 >= s.lim.Depth
	var next level
	next.start = []uint32{0}
	cur := &s.levels[depth]
	for i, x := range cur.addr {
		if s.stopped {
			break
		}
		lo := x - min(x, s.lim.MaxOffset)
		if last || len(next.addr) >= s.lim.Nodes {
			s.staticsInto(lo, x, func(p Pointer) { s.tryBase(depth, i, p) })
			continue
		}
		s.runs[0].Map.ix.down(lo, x, func(e entry) bool {
			s.res.Candidates++
			if e.isStatic() {
				if b, ok := s.base(e.addr()); ok {
					s.tryChain(depth, i, b, x-e.value)
					return !s.stopped
				}
			}
			s.tryNode(depth, i, e, &next)
			return !s.stopped
		})
	}
	if !last {
		s.levels = append(s.levels, next)
	}
}

// staticsInto calls f for the first run's static pointers whose value lies
// in [lo, hi].
func (s *search) staticsInto(lo, hi uint64, f func(Pointer)) {
	for i := sort.Search(len(s.statics), func(i int) bool { return s.statics[i].Value >= lo }); i < len(s.statics) && s.statics[i].Value <= hi; i++ {
		s.res.Candidates++
		f(s.statics[i])
	}
}

func (s *search) tryBase(depth, node int, p Pointer) {
	if b, ok := s.base(p.Addr); ok {
		s.tryChain(depth, node, b, s.levels[depth].addr[node]-p.Value)
	}
}

// tryChain keeps the chain from base b with offset off to node, if it
// leads to the target in every other run too.
func (s *search) tryChain(depth, node int, b Base, off uint64) {
	lv := &s.levels[depth]
	for j := range s.others {
		o := &s.others[j]
		at, ok := s.baseIn(o, b)
		var v uint64
		if ok {
			v, ok = o.m.baseValue(at)
		}
		if !ok || !slices.Contains(lv.placesOf(node, j, len(s.others)), v+off) {
			s.res.Removed[j+1]++
			return
		}
	}
	if len(s.found) >= s.lim.Chains {
		s.res.ChainsCut, s.stopped = true, true
		return
	}
	s.found = append(s.found, found{int32(depth), int32(node), b, off})
}

// tryNode adds candidate e, found from node of level depth, to the next
// level, with its places in the other runs; none in some run drops it.
func (s *search) tryNode(depth, node int, e entry, next *level) {
	lv := &s.levels[depth]
	x := lv.addr[node]
	off := x - e.value
	mark := len(next.places)
	k := len(s.others)
	for j := range s.others {
		ix := &s.others[j].m.ix
		n := 0
		for _, y := range lv.placesOf(node, j, k) {
			if y < off {
				continue
			}
			ix.equal(y-off, func(p entry) {
				if n < maxPlaces {
					next.places = append(next.places, p.addr())
				} else if n == maxPlaces {
					s.res.PlacesCut++
				}
				n++
			})
		}
		if n == 0 {
			next.places = next.places[:mark]
			next.start = next.start[:len(next.addr)*k+1]
			s.res.Removed[j+1]++
			return
		}
		next.start = append(next.start, uint32(len(next.places)))
	}
	key := s.key(e.addr(), next.places[mark:])
	_, seen := s.seen[key]
	if seen || len(next.addr) >= s.lim.Nodes {
		if !seen && !slices.Contains(s.res.Full, depth+1) {
			s.res.Full = append(s.res.Full, depth+1)
		}
		next.places = next.places[:mark]
		next.start = next.start[:len(next.addr)*k+1]
		return
	}
	s.seen[key] = struct{}{}
	next.addr = append(next.addr, e.addr())
	next.parent = append(next.parent, int32(node))
	next.offset = append(next.offset, off)
}

// placesOf returns node's places in run j+1, of k runs after the first.
func (lv *level) placesOf(node, j, k int) []uint64 {
	return lv.places[lv.start[node*k+j]:lv.start[node*k+j+1]]
}

// key identifies an address reached with its places in the other runs:
// reached again with the same places, it leads nowhere new.
func (s *search) key(addr uint64, places []uint64) uint64 {
	if len(s.others) == 0 {
		return addr
	}
	h := mix(addr)
	for _, p := range places {
		h = mix(h ^ p)
	}
	return h
}

// mix is splitmix64's finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// result puts the chains found together and ranks them.
func (s *search) result() Result {
	for _, f := range s.found {
		c := Chain{Base: f.base, Offsets: []uint64{f.off}}
		for d, n := int(f.level), int(f.node); d > 0; d-- {
			lv := &s.levels[d]
			c.Offsets = append(c.Offsets, lv.offset[n])
			n = int(lv.parent[n])
		}
		s.res.Chains = append(s.res.Chains, c)
	}
	s.res.Chains = Rank(s.res.Chains)
	return s.res
}

// Rank puts the chain a human would pick first: the fewest dereferences,
// then a base in the program before one in a library before one on a
// stack, then the smallest offsets; a chain found twice (through different
// places in other runs) is kept once.
func Rank(chains []Chain) []Chain {
	slices.SortFunc(chains, compareChains)
	return slices.CompactFunc(chains, func(a, b Chain) bool { return compareChains(a, b) == 0 })
}

func compareChains(a, b Chain) int {
	return cmp.Or(
		cmp.Compare(len(a.Offsets), len(b.Offsets)),
		cmp.Compare(a.Base.class(), b.Base.class()),
		cmp.Compare(sum(a.Offsets), sum(b.Offsets)),
		slices.Compare(a.Offsets, b.Offsets),
		cmp.Compare(a.Base.Module, b.Base.Module),
		cmp.Compare(a.Base.Thread, b.Base.Thread),
		cmp.Compare(a.Base.Offset, b.Base.Offset),
	)
}

// class ranks the kinds of base: the program, a library, a stack.
func (b Base) class() int {
	switch {
	case b.Module == "":
		return 2
	case b.Main:
		return 0
	}
	return 1
}

func sum(offs []uint64) uint64 {
	var t uint64
	for _, o := range offs {
		t += o
	}
	return t
}

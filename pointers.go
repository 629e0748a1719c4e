package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// The pointer search behind the pointers verb: given every aligned word of
// a process that points into mapped memory (a pointer map, sorted by the
// value stored), find the chains from a static base (a module's writable
// data) to an address, by a breadth-first search backwards from the
// address. It is pure: the verb reads the memory, this searches it.

// pointer is a word at addr that holds value.
type pointer struct{ addr, value uint64 }

// pointerMap is every pointer found, sorted by value.
type pointerMap []pointer

// sortPointers sorts pointers by value, then address.
func sortPointers(ps []pointer) pointerMap {
	slices.SortFunc(ps, func(a, b pointer) int {
		if c := cmp.Compare(a.value, b.value); c != 0 {
			return c
		}
		return cmp.Compare(a.addr, b.addr)
	})
	return pointerMap(ps)
}

// into returns the pointers whose value lies in [lo, hi].
func (m pointerMap) into(lo, hi uint64) []pointer {
	i, _ := slices.BinarySearchFunc(m, lo, func(p pointer, v uint64) int { return cmp.Compare(p.value, v) })
	j := i
	for j < len(m) && m[j].value <= hi {
		j++
	}
	return m[i:j]
}

// staticBase tells whether addr is a static base: in a module's writable
// data, named module+off.
type staticBase func(addr uint64) (module string, off uint64, ok bool)

// chain is one way to reach the target: the static base, then the offset
// added after each dereference (the last one reaches the target).
type chain struct {
	module  string
	base    uint64 // offset of the first pointer in its module
	offsets []uint64
}

// String is the chain as an address expression: [[mod+base]+o1]+o2.
func (c chain) String() string {
	e := fmt.Sprintf("[%s+%x]", c.module, c.base)
	for i, o := range c.offsets {
		if i == len(c.offsets)-1 {
			return e + fmt.Sprintf("+%x", o)
		}
		e = fmt.Sprintf("[%s+%x]", e, o)
	}
	return e
}

// searchLimits bound a search.
type searchLimits struct {
	depth     int    // dereferences at most
	maxOffset uint64 // each offset in [0, maxOffset]
	results   int    // chains at most
	nodes     int    // addresses looked back from, per level at most
}

// node is an address the search reached backwards: a pointer location,
// with the offsets that lead from it to the target.
type node struct {
	addr    uint64
	offsets []uint64 // from this pointer's value on, to the target
}

// findChains returns the chains from static bases to target, shortest
// first, then by their offsets, at most lim.results. Each address is
// looked back from once, at the level it is first reached (so cycles end).
func findChains(m pointerMap, static staticBase, target uint64, lim searchLimits) []chain {
	var found []chain
	seen := map[uint64]bool{target: true}
	level := []node{{addr: target}}
	for depth := 1; depth <= lim.depth && len(level) > 0 && len(found) < lim.results; depth++ {
		var next []node
		for _, n := range level {
			lo := n.addr - min(n.addr, lim.maxOffset)
			for _, p := range m.into(lo, n.addr) {
				offsets := append([]uint64{n.addr - p.value}, n.offsets...)
				if mod, off, ok := static(p.addr); ok {
					found = append(found, chain{module: mod, base: off, offsets: offsets})
				}
				if !seen[p.addr] && len(next) < lim.nodes {
					seen[p.addr] = true
					next = append(next, node{addr: p.addr, offsets: offsets})
				}
			}
		}
		level = next
	}
	slices.SortStableFunc(found, func(a, b chain) int {
		if c := cmp.Compare(len(a.offsets), len(b.offsets)); c != 0 {
			return c
		}
		if c := slices.Compare(a.offsets, b.offsets); c != 0 {
			return c
		}
		return strings.Compare(a.String(), b.String())
	})
	return found[:min(len(found), lim.results)]
}

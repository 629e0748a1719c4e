package addrexpr

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/procmem/procmem/procfs"
)

// Namer writes the addresses of one address space in the notation Parse
// reads, so that each pastes back as the same byte:
//
//	game+4010          in a mapped file: from its load base
//	[heap]+2c0         in a region maps names, from its lowest region's start
//	[stack:0]-1f8      in the main thread's stack: below its top, which
//	                   does not move as the stack grows
//	7f2a4c001000       anywhere else (anonymous memory), and in a file whose
//	                   name no word can hold
//
// A module is written by its base name, or by its full path when another
// file has the same base name (which of them is lowest may change from run
// to run). Offsets are hex without 0x, unless a mapped
// file has that very name.
type Namer struct {
	regions []procfs.Region
	modules map[string]moduleName // by path
	taken   map[string]bool       // the words that name a module
}

// moduleName is how a module is written, and the base its offsets count
// from; name is "" when no word names it.
type moduleName struct {
	name string
	base uint64
}

// NewNamer prepares to name addresses among regions (maps, in address
// order).
func NewNamer(regions []procfs.Region) *Namer {
	n := &Namer{regions: regions, modules: map[string]moduleName{}, taken: map[string]bool{}}
	pathsOfBase := map[string]int{}
	for _, r := range regions {
		if !isModule(r) {
			continue
		}
		base := filepath.Base(r.Path)
		n.taken[r.Path], n.taken[base] = true, true
		if _, ok := n.modules[r.Path]; !ok {
			n.modules[r.Path] = moduleName{base: r.Start}
			pathsOfBase[base]++
		}
	}
	for path, m := range n.modules {
		switch base := filepath.Base(path); {
		case pathsOfBase[base] == 1 && isWord(base):
			m.name = base
		case isWord(path):
			m.name = path
		}
		n.modules[path] = m
	}
	return n
}

// Format writes one address of the address space.
func Format(regions []procfs.Region, addr uint64) string {
	return NewNamer(regions).Format(addr)
}

// Format writes addr.
func (n *Namer) Format(addr uint64) string {
	r, ok := procfs.RegionAt(n.regions, addr)
	switch {
	case !ok:
	case isModule(r):
		if m := n.modules[r.Path]; m.name != "" {
			return m.name + "+" + n.Hex(addr-m.base)
		}
	case r.Path == "[stack]":
		return "[stack:0]-" + n.Hex(r.End-addr)
	case r.Pseudo() && pseudoPath(r.Path[1:len(r.Path)-1]):
		start, _ := RegionStart(n.regions, r.Path)
		return r.Path + "+" + n.Hex(addr-start)
	}
	return n.Hex(addr)
}

// Module returns how the module mapped from path is written, and its load
// base; ok is false when no word names it.
func (n *Namer) Module(path string) (name string, base uint64, ok bool) {
	m := n.modules[path]
	return m.name, m.base, m.name != ""
}

// Hex writes v in hex, with 0x only where a mapped file has the name the
// digits alone would spell.
func (n *Namer) Hex(v uint64) string {
	s := fmt.Sprintf("%x", v)
	if n.taken[s] {
		return "0x" + s
	}
	return s
}

// isWord reports whether name parses as one word that names a file: not a
// forced number (0x...), nothing but word bytes and "++".
func isWord(name string) bool {
	return name != "" && !strings.HasPrefix(name, "0x") && !strings.HasPrefix(name, "0X") &&
		name[0] != '-' && wordEnd(name, 0) == len(name)
}

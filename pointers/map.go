package pointers

import (
	"slices"
	"sort"

	"github.com/procmem/procmem/procfs"
)

// Map is a pointer map of one run: its pointers, and what a chain needs
// to be followed in it: where its modules are loaded and where their
// static data lies, and its threads' stacks.
type Map struct {
	Regions []procfs.Region
	Modules []Module
	Stacks  []Stack
	PID     int    // the process it was taken of; 0 if not known
	Target  uint64 // the address it was taken for; 0 if none was given

	ix    index
	bases []Pointer // the pointers in static data or on a stack, by address
	unmap func()    // for a map read from a file mapped into memory
}

// Count is how many pointers the map holds.
func (m *Map) Count() int { return m.ix.count }

// Bases are the pointers that lie in a module's static data or on a
// thread's stack, by address.
func (m *Map) Bases() []Pointer { return m.bases }

// Each calls f for every pointer, by value.
func (m *Map) Each(f func(Pointer)) {
	m.ix.all(func(e entry) { f(Pointer{e.addr(), e.value}) })
}

// baseValue returns the pointer stored at addr, if addr is a static base
// that holds one.
func (m *Map) baseValue(addr uint64) (uint64, bool) {
	i := sort.Search(len(m.bases), func(i int) bool { return m.bases[i].Addr >= addr })
	if i < len(m.bases) && m.bases[i].Addr == addr {
		return m.bases[i].Value, true
	}
	return 0, false
}

// module returns the module mapped from path.
func (m *Map) module(path string) (Module, bool) {
	i := slices.IndexFunc(m.Modules, func(mod Module) bool { return mod.Path == path })
	if i < 0 {
		return Module{}, false
	}
	return m.Modules[i], true
}

// stack returns thread n's stack, if it is known.
func (m *Map) stack(n int) (Stack, bool) {
	if n < len(m.Stacks) && m.Stacks[n].Known() {
		return m.Stacks[n], true
	}
	return Stack{}, false
}

// StackTop returns the top of thread n's stack, for [stack:N].
func (m *Map) StackTop(n int) (uint64, bool) {
	s, ok := m.stack(n)
	return s.Top, ok
}

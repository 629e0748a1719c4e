// Package usage tells where a process's memory goes: its mappings sorted
// into kinds (heap, other anonymous memory, thread stacks, file-backed code
// and data, shared memory, other), each with its size, resident, proportional,
// swapped and private dirty bytes, sampled over time from /proc/PID/smaps
// (or, between reads of it, maps and pagemap) without touching the
// process's pages; the regions that grew between two samples; tables, CSV,
// JSON and plots of it; and the conditions on which procmem writes a core.
package usage

import (
	"slices"
	"strings"

	"github.com/procmem/procmem/procfs"
)

// Kind is what a mapping holds, as far as the kernel's tables tell.
type Kind int

const (
	Heap  Kind = iota // [heap] and glibc malloc's arenas
	Anon              // other private anonymous memory
	Stack             // the main thread's [stack] and other threads' stacks
	Code              // executable mappings of files
	File              // other mappings of files: data, read-only data, gaps
	Shmem             // shared memory: memfd, SysV, /dev/shm, shared anonymous
	Other             // [vdso], [vvar], [vsyscall], device mappings
	numKinds
)

// Kinds lists every kind, in the order tables show them.
var Kinds = []Kind{Heap, Anon, Stack, Code, File, Shmem, Other}

var kindNames = [numKinds]string{"heap", "anon", "stack", "code", "file", "shmem", "other"}

func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return "?"
	}
	return kindNames[k]
}

// ParseKind returns the kind of the given name.
func ParseKind(name string) (Kind, bool) {
	i := slices.Index(kindNames[:], name)
	return Kind(i), i >= 0
}

const (
	// arenaSize is glibc's HEAP_MAX_SIZE on 64-bit machines (twice the
	// largest mmap threshold, 32 MiB): each arena other than the main one
	// is carved from reservations of this size, aligned to it.
	arenaSize = 64 << 20
	// maxGuard bounds the guard page below a thread's stack: glibc and
	// musl put one page (or the guard size asked for) there.
	maxGuard = 64 << 10
)

// classify gives each of the regions (in address order) its kind. sps are
// the stack pointers of the process's threads where they could be read.
func classify(regions []Region, sps []uint64) {
	for i := range regions {
		regions[i].Kind = basicKind(&regions[i])
	}
	markArenas(regions)
	markStacks(regions, sps)
}

// basicKind is the kind a mapping has by its own name, permissions and
// flags.
func basicKind(m *Region) Kind {
	switch {
	case m.Path == "[heap]":
		return Heap
	case m.Path == "[stack]" || strings.HasPrefix(m.Path, "[stack:"):
		return Stack
	case shmem(m.Region):
		return Shmem
	case m.Path == "" || strings.HasPrefix(m.Path, "[anon:"):
		return Anon
	case m.Pseudo() || m.io:
		return Other
	case m.Perms.Exec:
		return Code
	}
	return File
}

// shmem reports whether a mapping is of shared memory: memfd and SysV
// segments, tmpfs's /dev/shm, shared anonymous mappings (which the kernel
// names /dev/zero) and hugetlbfs's anonymous ones.
func shmem(r procfs.Region) bool {
	switch {
	case strings.HasPrefix(r.Path, "/memfd:"), strings.HasPrefix(r.Path, "/SYSV"),
		strings.HasPrefix(r.Path, "/dev/shm/"), strings.HasPrefix(r.Path, "[anon_shmem:"),
		strings.HasPrefix(r.Path, "/anon_hugepage"):
		return true
	case r.Perms.Shared && strings.HasPrefix(r.Path, "/dev/zero"):
		return true
	}
	return false
}

// markArenas finds glibc's arenas among the anonymous mappings: a
// read-write mapping at a 64 MiB boundary, at most 64 MiB long, followed
// within that block by the rest of the reservation, inaccessible (---p),
// unless the arena has grown to fill it. Both are heap.
func markArenas(regions []Region) {
	for i := range regions {
		m := &regions[i]
		if m.Kind != Anon || m.Start%arenaSize != 0 || m.Figures.Size > arenaSize || !m.Perms.Read || !m.Perms.Write {
			continue
		}
		end := m.Start + arenaSize
		next := i + 1
		tail := next < len(regions) && regions[next].Kind == Anon && inaccessible(&regions[next]) &&
			regions[next].Start == m.End && regions[next].End <= end
		if !tail && m.Figures.Size != arenaSize {
			continue
		}
		m.Kind = Heap
		if tail {
			regions[next].Kind = Heap
		}
	}
}

// markStacks finds the stacks of threads other than the main one: the
// mapping that holds a thread's stack pointer, and otherwise, for threads
// running (whose stack pointer /proc does not show), the shape glibc and
// musl give a stack: a read-write anonymous mapping right above an
// inaccessible guard of at most 64 KiB. The guard counts as stack.
func markStacks(regions []Region, sps []uint64) {
	for _, sp := range sps {
		i, ok := slices.BinarySearchFunc(regions, sp, func(m Region, sp uint64) int {
			switch {
			case m.End <= sp:
				return -1
			case m.Start > sp:
				return 1
			}
			return 0
		})
		if ok && (regions[i].Kind == Anon || regions[i].Kind == Heap && regions[i].Path != "[heap]") {
			regions[i].Kind = Stack
			if i > 0 && regions[i-1].Kind == Anon && guardBelow(&regions[i-1], &regions[i], arenaSize) {
				regions[i-1].Kind = Stack
			}
		}
	}
	for i := 1; i < len(regions); i++ {
		m := &regions[i]
		if m.Kind == Anon && regions[i-1].Kind == Anon && m.Perms.Read && m.Perms.Write && guardBelow(&regions[i-1], m, maxGuard) {
			regions[i-1].Kind, m.Kind = Stack, Stack
		}
	}
}

// guardBelow reports whether g is an inaccessible anonymous mapping of at
// most max bytes right below m.
func guardBelow(g, m *Region, max uint64) bool {
	return inaccessible(g) && g.End == m.Start && g.Figures.Size <= max && g.Path == ""
}

func inaccessible(m *Region) bool {
	return !m.Perms.Read && !m.Perms.Write && !m.Perms.Exec && !m.Perms.Shared
}

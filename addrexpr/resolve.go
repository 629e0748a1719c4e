package addrexpr

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/procmem/procmem/procfs"
)

// Memory reads the pointers an expression dereferences; a *memory.Reader
// is one.
type Memory interface {
	ReadRange(b []byte, addr uint64, regions []procfs.Region) error
}

// Resolver gives the names and pointers of expressions their values in one
// address space.
type Resolver struct {
	Regions []procfs.Region // its maps, in address order
	Memory  Memory          // nil: an expression that dereferences fails
	// Stack returns the top of thread n's stack; nil: only [stack:0] is
	// known, as the end of [stack].
	Stack func(thread int) (uint64, error)
}

// Eval computes the expression. A step that reads an unmapped or
// unreadable pointer fails, saying which.
func (r *Resolver) Eval(x Expr) (uint64, error) {
	var v uint64
	for _, t := range x.terms {
		tv, err := r.term(t)
		if err != nil {
			return 0, err
		}
		if t.neg {
			v -= tv
		} else {
			v += tv
		}
	}
	return v, nil
}

func (r *Resolver) term(t term) (uint64, error) {
	switch t.kind {
	case regionTerm:
		if start, ok := RegionStart(r.Regions, t.word); ok {
			return start, nil
		}
		return 0, fmt.Errorf("%w: %s is not mapped in the process", ErrBadAddress, t.word)
	case stackTerm:
		return r.stackTop(t.thread)
	case derefTerm:
		return r.deref(t)
	}
	return r.word(t.word)
}

// deref reads the pointer a [EXPR] term points at.
func (r *Resolver) deref(t term) (uint64, error) {
	at, err := r.Eval(t.deref)
	if err != nil {
		return 0, err
	}
	if r.Memory == nil {
		return 0, fmt.Errorf("%w: %s reads memory, and nothing is there to read", ErrBadAddress, t)
	}
	var b [8]byte
	if err := r.Memory.ReadRange(b[:], at, r.Regions); err != nil {
		return 0, fmt.Errorf("%s: reading the pointer at 0x%x: %w", t, at, err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// stackTop is the top of thread n's stack: the end of [stack] for the main
// thread, when maps names it.
func (r *Resolver) stackTop(n int) (uint64, error) {
	if n == 0 {
		for _, reg := range r.Regions {
			if reg.Path == "[stack]" {
				return reg.End, nil
			}
		}
	}
	if r.Stack == nil {
		return 0, fmt.Errorf("%w: [stack:%d]: the threads' stacks are not known here", ErrBadAddress, n)
	}
	top, err := r.Stack(n)
	if err != nil {
		return 0, fmt.Errorf("[stack:%d]: %w", n, err)
	}
	return top, nil
}

// word is a module's load base or a hex number; a word with a '-' that is
// neither is a subtraction (libc.so.6-10).
func (r *Resolver) word(w string) (uint64, error) {
	if !strings.HasPrefix(w, "0x") && !strings.HasPrefix(w, "0X") {
		if base, ok := ModuleBase(r.Regions, w); ok {
			return base, nil
		}
	}
	if v, ok := parseHex(w); ok {
		return v, nil
	}
	if i := strings.LastIndexByte(w, '-'); i > 0 && i < len(w)-1 {
		left, err := r.word(w[:i])
		if err != nil {
			return 0, err
		}
		right, err := r.word(w[i+1:])
		if err != nil {
			return 0, err
		}
		return left - right, nil
	}
	return 0, fmt.Errorf("%w: %q is no hex number and no file mapped in the process", ErrBadAddress, w)
}

// parseHex parses hex digits with an optional 0x, nothing else.
func parseHex(w string) (uint64, bool) {
	digits := strings.TrimPrefix(strings.TrimPrefix(w, "0x"), "0X")
	if digits == "" || digits[0] == '+' {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, 16, 64)
	return v, err == nil
}

// ModuleBase returns the load base of the mapped file named name (its
// full path or its base name): the start of its lowest mapping.
func ModuleBase(regions []procfs.Region, name string) (uint64, bool) {
	for _, reg := range regions { // in address order: the first is the lowest
		if isModule(reg) && (reg.Path == name || filepath.Base(reg.Path) == name) {
			return reg.Start, true
		}
	}
	return 0, false
}

// RegionStart returns the start of the lowest region whose pathname is
// path, such as "[heap]".
func RegionStart(regions []procfs.Region, path string) (uint64, bool) {
	for _, reg := range regions {
		if reg.Path == path {
			return reg.Start, true
		}
	}
	return 0, false
}

// isModule reports whether a region maps a file: a module, whose offsets
// count from its load base.
func isModule(r procfs.Region) bool {
	return r.MapsFile()
}

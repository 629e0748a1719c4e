package main

import (
	"errors"

	"github.com/procmem/procmem/addrexpr"
	"github.com/procmem/procmem/core"
	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/pointers"
	"github.com/procmem/procmem/procfs"
)

// The verbs' side of package addrexpr, the one address notation: parsing
// and evaluating ADDR and RANGE arguments in the target, with the
// notation's mistakes as usage errors.

// expr is an address expression as the verbs hold it: one part, whose
// term tells whether it dereferences (the shape freeze's reads walks; once
// freeze asks addrexpr.Expr.Reads, expr can be addrexpr.Expr itself).
type expr []exprPart

type exprPart struct {
	x    addrexpr.Expr
	term exprTerm
}

type exprTerm struct{ isRef bool }

// parseExpr parses an address expression; a malformed one is a usage
// error.
func parseExpr(s string) (expr, error) {
	x, err := addrexpr.Parse(s)
	if err != nil {
		return nil, usagef("%s", err)
	}
	return expr{{x: x, term: exprTerm{isRef: x.Reads()}}}, nil
}

func (x expr) String() string {
	if len(x) == 0 {
		return ""
	}
	return x[0].x.String()
}

// resolver evaluates expressions in one process: its regions (which the
// caller may read again) and its memory, for the pointers expressions
// read.
type resolver struct {
	regions []procfs.Region
	mem     *memory.Reader
	proc    *procfs.Process
	stacks  []pointers.Stack // the threads' stacks, found when first asked
}

// newResolver reads the regions of process p and opens its memory for the
// pointers an expression reads.
func newResolver(p *procfs.Process) (*resolver, error) {
	regions, err := p.Maps()
	if err != nil {
		return nil, err
	}
	mem, err := memory.Open(p, memory.Self, false)
	if err != nil {
		return nil, err
	}
	return &resolver{regions: regions, mem: mem, proc: p}, nil
}

// targetResolver resolves in the target: the live process, or the
// captured one, whose threads' stacks its registers tell.
func targetResolver(e *env) (*resolver, error) {
	if e.capture == nil {
		return newResolver(e.proc)
	}
	mem, err := openMemory(e, false)
	if err != nil {
		return nil, err
	}
	regions := e.capture.Regions()
	return &resolver{regions: regions, mem: mem, stacks: capturedStacks(e.capture, regions)}, nil
}

// capturedStacks are a capture's threads' stacks, as their stack pointers
// tell, in the order the core lists the threads (the main one first).
func capturedStacks(c *core.Capture, regions []procfs.Region) []pointers.Stack {
	var stacks []pointers.Stack
	for i, t := range c.Threads() {
		s := pointers.Stack{Thread: i, TID: t.TID}
		if sp, ok := c.StackPointer(t); ok {
			if r, ok := procfs.RegionAt(regions, sp); ok {
				s.Start, s.Top = r.Start, r.End
			}
		}
		stacks = append(stacks, s)
	}
	return stacks
}

func (r *resolver) close() {
	if r.mem != nil {
		r.mem.Close()
	}
}

// addrexpr is the resolver as package addrexpr takes it.
func (r *resolver) addrexpr() *addrexpr.Resolver {
	ar := &addrexpr.Resolver{Regions: r.regions, Stack: r.stackTop}
	if r.mem != nil {
		ar.Memory = r.mem
	}
	return ar
}

// eval computes the expression; a name the process lacks is a usage
// error, a pointer that cannot be read a failure.
func (r *resolver) eval(x expr) (uint64, error) {
	v, err := r.addrexpr().Eval(x[0].x)
	return v, usageOf(err)
}

// stackTop is the top of thread n's stack, for [stack:N].
func (r *resolver) stackTop(n int) (uint64, error) {
	if r.stacks == nil && r.proc == nil {
		return 0, errors.New("no process to ask for its threads")
	}
	if r.stacks == nil {
		var err error
		if r.stacks, err = pointers.Stacks(r.proc, r.regions); err != nil {
			return 0, err
		}
	}
	return pointers.StackTop(r.stacks, n)
}

// usageOf turns the notation's own mistakes into usage errors.
func usageOf(err error) error {
	if errors.Is(err, addrexpr.ErrBadAddress) || errors.Is(err, addrexpr.ErrBadRange) {
		return usagef("%s", err)
	}
	return err
}

// resolveAddr parses and evaluates one ADDR argument.
func resolveAddr(e *env, s string) (uint64, error) {
	x, err := parseExpr(s)
	if err != nil {
		return 0, err
	}
	r, err := targetResolver(e)
	if err != nil {
		return 0, err
	}
	defer r.close()
	return r.eval(x)
}

// addrRange is a half-open address range [start, end).
type addrRange struct{ start, end uint64 }

// resolveRange parses a RANGE and computes it in the target.
func resolveRange(e *env, s string) (addrRange, error) {
	if _, err := addrexpr.ParseRange(s); err != nil {
		return addrRange{}, usageOf(err)
	}
	r, err := targetResolver(e)
	if err != nil {
		return addrRange{}, err
	}
	defer r.close()
	return resolveRangeWith(r, s)
}

func resolveRangeWith(r *resolver, s string) (addrRange, error) {
	rr, err := addrexpr.ParseRange(s)
	if err != nil {
		return addrRange{}, usageOf(err)
	}
	start, end, err := rr.Resolve(r.addrexpr())
	return addrRange{start, end}, usageOf(err)
}

package main

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// Address expressions, wherever an ADDR is taken: hex numbers (0x
// optional), MODULE (the load base of a mapped file, named by its base name
// or full path: the start of its lowest mapping), [EXPR] (the pointer
// stored at EXPR, in the target's size and byte order), and + or - between
// them. A value found on the heap moves with every run; a chain of
// pointers from a module does not:
//
//	[[game+0x4010]+0x8]+0xc
//
// A name that is both a mapped file and valid hex is the file; 0x makes a
// number.

// expr is a parsed address expression: terms added or subtracted.
type expr []signedTerm

type signedTerm struct {
	neg  bool
	term exprTerm
}

// exprTerm is a number, a module or a dereference.
type exprTerm struct {
	word  string // a number or a module name, as written
	deref expr   // for [EXPR]
	isRef bool
}

// exprSyntax is what a malformed expression is told.
const exprSyntax = "want hex numbers, mapped file names and [EXPR] joined by + and -, such as '[[game+0x4010]+0x8]+0xc'"

// parseExpr parses an address expression; a malformed one is a usage
// error.
func parseExpr(s string) (expr, error) {
	p := &exprParser{s: s}
	e, err := p.expr()
	if err == nil && p.pos < len(p.s) {
		err = p.fail("unexpected %q", p.s[p.pos:])
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

type exprParser struct {
	s   string
	pos int
}

func (p *exprParser) fail(format string, a ...any) error {
	return usagef("bad address %q: %s at offset %d: %s", p.s, fmt.Sprintf(format, a...), p.pos, exprSyntax)
}

func (p *exprParser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// expr := ['-'] term { ('+' | '-') term }
func (p *exprParser) expr() (expr, error) {
	var e expr
	neg := false
	p.skipSpace()
	if p.pos < len(p.s) && p.s[p.pos] == '-' {
		neg = true
		p.pos++
	}
	for {
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		e = append(e, signedTerm{neg, t})
		p.skipSpace()
		if p.pos >= len(p.s) || (p.s[p.pos] != '+' && p.s[p.pos] != '-') {
			return e, nil
		}
		neg = p.s[p.pos] == '-'
		p.pos++
	}
}

// term := '[' expr ']' | word
func (p *exprParser) term() (exprTerm, error) {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return exprTerm{}, p.fail("missing term")
	}
	if p.s[p.pos] == '[' {
		p.pos++
		inner, err := p.expr()
		if err != nil {
			return exprTerm{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] != ']' {
			return exprTerm{}, p.fail("missing ]")
		}
		p.pos++
		return exprTerm{deref: inner, isRef: true}, nil
	}
	start := p.pos
	for p.pos < len(p.s) && isWordByte(p.s[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return exprTerm{}, p.fail("unexpected %q", p.s[p.pos:p.pos+1])
	}
	return exprTerm{word: p.s[start:p.pos]}, nil
}

// isWordByte reports whether c may be part of a number or a file name. A
// '-' is one of them (ld-linux-x86-64.so.2); subtraction inside a word is
// told apart when the word is resolved.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '/' || c == '-' || c == '@' || c == '~'
}

// resolver gives an expression's words and pointers their values in one
// process.
type resolver struct {
	regions []procfs.Region
	mem     *memory.Reader
}

// eval computes the expression. A step that reads an unmapped or
// unreadable pointer fails, saying which.
func (r *resolver) eval(e expr) (uint64, error) {
	var v uint64
	for _, st := range e {
		t, err := r.evalTerm(st.term)
		if err != nil {
			return 0, err
		}
		if st.neg {
			v -= t
		} else {
			v += t
		}
	}
	return v, nil
}

func (r *resolver) evalTerm(t exprTerm) (uint64, error) {
	if !t.isRef {
		return r.word(t.word)
	}
	at, err := r.eval(t.deref)
	if err != nil {
		return 0, err
	}
	if r.mem == nil {
		return 0, usagef("bad address: %s reads memory, and nothing is there to read", t.String())
	}
	var b [8]byte
	if err := r.mem.ReadRange(b[:], at, r.regions); err != nil {
		return 0, fmt.Errorf("%s: reading the pointer at 0x%x: %w", t.String(), at, err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// word is a module's load base or a hex number; a word with a '-' that is
// neither is a subtraction (libc.so.6-10).
func (r *resolver) word(w string) (uint64, error) {
	if !strings.HasPrefix(w, "0x") && !strings.HasPrefix(w, "0X") {
		if base, ok := r.module(w); ok {
			return base, nil
		}
	}
	if v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(w, "0x"), "0X"), 16, 64); err == nil && !strings.HasPrefix(w, "+") {
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
	return 0, usagef("bad address: %q is no hex number and no file mapped in the process", w)
}

// module returns the load base of the mapped file named name: the start
// of its lowest mapping.
func (r *resolver) module(name string) (uint64, bool) {
	for _, reg := range r.regions { // in address order: the first is the lowest
		if reg.Inode != 0 && !reg.Pseudo() && (reg.Path == name || filepath.Base(reg.Path) == name) {
			return reg.Start, true
		}
	}
	return 0, false
}

// String writes the term back.
func (t exprTerm) String() string {
	if !t.isRef {
		return t.word
	}
	return "[" + t.deref.String() + "]"
}

func (e expr) String() string {
	var b strings.Builder
	for i, st := range e {
		switch {
		case st.neg:
			b.WriteString("-")
		case i > 0:
			b.WriteString("+")
		}
		b.WriteString(st.term.String())
	}
	return b.String()
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
	return &resolver{regions: regions, mem: mem}, nil
}

func (r *resolver) close() { r.mem.Close() }

// resolveAddr parses and evaluates one ADDR argument.
func resolveAddr(e *env, s string) (uint64, error) {
	x, err := parseExpr(s)
	if err != nil {
		return 0, err
	}
	r, err := newResolver(e.proc)
	if err != nil {
		return 0, err
	}
	defer r.close()
	return r.eval(x)
}

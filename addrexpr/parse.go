// Package addrexpr is procmem's one address notation: how an address is
// written wherever procmem takes one, and how procmem prints every address
// it names, so that what it prints pastes into any address argument and
// means the same byte.
//
// An expression is terms joined by + and -:
//
//	7f2a4c001000   a hex number (0x optional)
//	game           a mapped file, by base name or full path: its load base,
//	               the start of its lowest mapping
//	[heap]         a region as maps names it ([heap], [stack], [vdso],
//	               [anon:NAME] ...): the start of its lowest region
//	[stack:1]      the top of thread 1's stack (threads counted in the order
//	               they were started, 0 the main thread): the end of the
//	               region that holds its stack pointer
//	[EXPR]         the pointer stored at EXPR (8 bytes, little-endian)
//
// such as [[game+4010]+8]+c, a chain of pointers from a module's data that
// finds a value again after a restart. A bracket holds a region when its
// text is one of the kernel's pseudo-paths (see pseudoPath); any other
// bracket dereferences, so a file named "heap" is dereferenced as
// [heap+0]. A word that is both a mapped file and hex is the file; 0x makes
// a number. Words may hold '-' (ld-linux-x86-64.so.2) and "++"
// (libstdc++.so.6); a '-' in a word that names nothing is a subtraction.
package addrexpr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadAddress is what every malformed expression, and every name an
// address space does not have, wraps: a mistake in the argument.
var ErrBadAddress = errors.New("bad address")

// Expr is a parsed address expression.
type Expr struct{ terms []term }

// term is one signed term of an expression.
type term struct {
	neg    bool
	kind   termKind
	word   string // a number or file name as written; a region's pseudo-path, brackets included
	thread int    // for a thread's stack
	deref  Expr   // for [EXPR]
}

type termKind uint8

const (
	wordTerm   termKind = iota // a hex number or a mapped file
	regionTerm                 // [heap], [anon:NAME] ...: the region's start
	stackTerm                  // [stack:N]: the top of thread N's stack
	derefTerm                  // [EXPR]
)

// Syntax says what an expression may hold, for error messages.
const Syntax = "want hex numbers, mapped file names, regions such as [heap] or [stack:1], and [EXPR] joined by + and -, such as '[[game+4010]+8]+c'"

// SyntaxError is an expression that cannot be parsed.
type SyntaxError struct {
	Input  string
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("bad address %q: %s at offset %d: %s", e.Input, e.Msg, e.Offset, Syntax)
}

// Unwrap makes every SyntaxError an ErrBadAddress.
func (e *SyntaxError) Unwrap() error { return ErrBadAddress }

// Parse parses an address expression.
func Parse(s string) (Expr, error) {
	p := &parser{s: s}
	x, err := p.expr(0)
	if err == nil && p.pos < len(p.s) {
		err = p.fail("unexpected %q", p.s[p.pos:])
	}
	if err != nil {
		return Expr{}, err
	}
	return x, nil
}

// maxNesting bounds the brackets inside brackets: no chain needs more, and
// a parser of outside input must not recurse without end.
const maxNesting = 64

type parser struct {
	s   string
	pos int
}

func (p *parser) fail(format string, a ...any) error {
	return &SyntaxError{Input: p.s, Offset: p.pos, Msg: fmt.Sprintf(format, a...)}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// expr := ['-'] term { ('+' | '-') term }
func (p *parser) expr(depth int) (Expr, error) {
	var x Expr
	neg := false
	p.skipSpace()
	if p.pos < len(p.s) && p.s[p.pos] == '-' {
		neg = true
		p.pos++
	}
	for {
		t, err := p.term(depth)
		if err != nil {
			return Expr{}, err
		}
		t.neg = neg
		x.terms = append(x.terms, t)
		p.skipSpace()
		if p.pos >= len(p.s) || (p.s[p.pos] != '+' && p.s[p.pos] != '-') {
			return x, nil
		}
		neg = p.s[p.pos] == '-'
		p.pos++
	}
}

// term := '[' pseudo-path ']' | '[stack:' N ']' | '[' expr ']' | word
func (p *parser) term(depth int) (term, error) {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return term{}, p.fail("missing term")
	}
	if p.s[p.pos] == '[' {
		return p.bracket(depth)
	}
	start := p.pos
	p.pos = wordEnd(p.s, p.pos)
	if p.pos == start {
		return term{}, p.fail("unexpected %q", p.s[p.pos:p.pos+1])
	}
	return term{kind: wordTerm, word: p.s[start:p.pos]}, nil
}

// bracket parses what starts at '[': a region, a thread's stack, or a
// dereference.
func (p *parser) bracket(depth int) (term, error) {
	if end := strings.IndexByte(p.s[p.pos:], ']'); end > 0 {
		inner := p.s[p.pos+1 : p.pos+end]
		if thread, ok, err := stackThread(inner); ok || err != nil {
			if err != nil {
				return term{}, p.fail("%v", err)
			}
			p.pos += end + 1
			return term{kind: stackTerm, thread: thread}, nil
		}
		if pseudoPath(inner) {
			p.pos += end + 1
			return term{kind: regionTerm, word: "[" + inner + "]"}, nil
		}
	}
	if depth >= maxNesting {
		return term{}, p.fail("more than %d brackets inside each other", maxNesting)
	}
	p.pos++
	inner, err := p.expr(depth + 1)
	if err != nil {
		return term{}, err
	}
	p.skipSpace()
	if p.pos >= len(p.s) || p.s[p.pos] != ']' {
		return term{}, p.fail("missing ]")
	}
	p.pos++
	return term{kind: derefTerm, deref: inner}, nil
}

// pseudoPath reports whether the text inside brackets is a kernel
// pseudo-path of maps, which names a region rather than a pointer to read.
// Names given with PR_SET_VMA_ANON_NAME hold no brackets (the kernel
// refuses them), so the first ']' ends one.
func pseudoPath(inner string) bool {
	switch inner {
	case "heap", "stack", "vdso", "vvar", "vvar_vclock", "vsyscall", "uprobes":
		return true
	}
	return strings.HasPrefix(inner, "anon:") || strings.HasPrefix(inner, "anon_shmem:")
}

// stackThread parses "stack:N", a thread's stack. ok is false for any
// other text; err is set for "stack:" followed by no thread index.
func stackThread(inner string) (thread int, ok bool, err error) {
	n, isStack := strings.CutPrefix(inner, "stack:")
	if !isStack {
		return 0, false, nil
	}
	v, perr := strconv.ParseUint(n, 10, 16)
	if perr != nil || n == "" || n[0] == '+' {
		return 0, false, fmt.Errorf("[stack:%s]: want [stack:N], N a thread's index in decimal (0 the main thread)", n)
	}
	return int(v), true, nil
}

// wordEnd returns where the word that starts at i ends: a "++" inside it
// is its own (libstdc++.so.6), a single '+' adds.
func wordEnd(s string, i int) int {
	start := i
	for i < len(s) {
		switch {
		case isWordByte(s[i]):
			i++
		case s[i] == '+' && i > start && i+1 < len(s) && s[i+1] == '+':
			i += 2
		default:
			return i
		}
	}
	return i
}

// isWordByte reports whether c may be part of a number or a file name. A
// '-' is one of them (ld-linux-x86-64.so.2); subtraction inside a word is
// told apart when the word is resolved.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '/' || c == '-' || c == '@' || c == '~'
}

// Reads reports whether evaluating the expression reads memory.
func (x Expr) Reads() bool {
	for _, t := range x.terms {
		if t.kind == derefTerm {
			return true
		}
	}
	return false
}

// Empty reports whether x is the zero Expr, which Parse never returns.
func (x Expr) Empty() bool { return len(x.terms) == 0 }

// String writes the expression back in the notation Parse reads.
func (x Expr) String() string {
	var b strings.Builder
	for i, t := range x.terms {
		switch {
		case t.neg:
			b.WriteString("-")
		case i > 0:
			b.WriteString("+")
		}
		b.WriteString(t.String())
	}
	return b.String()
}

// String writes the term without its sign.
func (t term) String() string {
	switch t.kind {
	case stackTerm:
		return fmt.Sprintf("[stack:%d]", t.thread)
	case derefTerm:
		return "[" + t.deref.String() + "]"
	}
	return t.word
}

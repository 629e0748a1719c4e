package pointers

import (
	"fmt"
	"strings"

	"github.com/procmem/procmem/addrexpr"
)

// Expr writes the chain as an address expression, its module named as n
// names it (the first run's namer): [[game+4010]+8]+c, [[stack:1]-1f8]+10.
// A module that no word names (a deleted file) is written as the address
// of its base in that run, which holds in that run only.
func (c Chain) Expr(n *addrexpr.Namer) string {
	var e string
	switch name, base, ok := n.Module(c.Base.Module); {
	case c.Base.Module == "":
		e = fmt.Sprintf("[stack:%d]-%s", c.Base.Thread, n.Hex(c.Base.Offset))
	case ok:
		e = name + "+" + n.Hex(c.Base.Offset)
	default:
		e = n.Hex(base + c.Base.Offset)
	}
	e = "[" + e + "]"
	for i, o := range c.Offsets {
		if i == len(c.Offsets)-1 {
			return e + "+" + n.Hex(o)
		}
		e = "[" + e + "+" + n.Hex(o) + "]"
	}
	return e
}

// Saved is a chain as a results file holds it: the line pointers printed.
type Saved struct {
	Line int
	Text string
	Expr addrexpr.Expr
}

// ParseResults reads a results file: one address expression a line, as
// pointers prints them; blank lines and lines starting with # are
// skipped. A line that is no expression is an error that names it.
func ParseResults(text string) ([]Saved, error) {
	var out []Saved
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		x, err := addrexpr.Parse(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, Saved{Line: i + 1, Text: line, Expr: x})
	}
	return out, nil
}

// Leads tells whether a chain, followed in one run, leads where it should.
type Leads func(x addrexpr.Expr) bool

// Filter keeps the chains that lead where they should, in their order,
// and returns how many it dropped.
func Filter(chains []Saved, leads Leads) (kept []Saved, dropped int) {
	for _, c := range chains {
		if leads(c.Expr) {
			kept = append(kept, c)
		} else {
			dropped++
		}
	}
	return kept, dropped
}

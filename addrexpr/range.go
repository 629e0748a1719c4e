package addrexpr

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadRange is what every malformed RANGE wraps.
var ErrBadRange = errors.New("bad range")

// Range is a RANGE as written: ADDR (one byte), ADDR:END, ADDR:+LEN or
// ADDR:-LEN (the LEN bytes before ADDR); ADDR and END are expressions, LEN
// hex.
type Range struct {
	text       string
	start, end Expr   // end for ADDR:END
	n          uint64 // for +LEN and -LEN
	kind       byte   // 0 (one byte), ':', '+' or '-'
}

// RangeSyntax says how a RANGE is written, for error messages.
const RangeSyntax = "want ADDR, ADDR:END, ADDR:+LEN or ADDR:-LEN (hex, ADDR and END also address expressions)"

// ParseRange parses a RANGE. The ':' that ends ADDR is the first one
// outside brackets: [stack:1] and [anon:NAME] hold their own.
func ParseRange(s string) (Range, error) {
	rr := Range{text: s}
	bad := func() (Range, error) {
		return Range{}, fmt.Errorf("%w %q: %s", ErrBadRange, s, RangeSyntax)
	}
	lhs, rhs, hasRHS := cutOutsideBrackets(s, ':')
	var err error
	if rr.start, err = Parse(lhs); err != nil {
		return bad()
	}
	switch {
	case !hasRHS:
	case strings.HasPrefix(rhs, "+"), strings.HasPrefix(rhs, "-"):
		rr.kind = rhs[0]
		var ok bool
		if rr.n, ok = parseHex(rhs[1:]); !ok || rr.n == 0 {
			return bad()
		}
	default:
		rr.kind = ':'
		if rr.end, err = Parse(rhs); err != nil {
			return bad()
		}
	}
	return rr, nil
}

// cutOutsideBrackets cuts s around the first sep at bracket depth 0.
func cutOutsideBrackets(s string, sep byte) (before, after string, found bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case sep:
			if depth == 0 {
				return s[:i], s[i+1:], true
			}
		}
	}
	return s, "", false
}

// Resolve computes the range [start, end) in r's address space.
func (rr Range) Resolve(r *Resolver) (start, end uint64, err error) {
	bad := func(why string) (uint64, uint64, error) {
		return 0, 0, fmt.Errorf("%w %q: %s", ErrBadRange, rr.text, why)
	}
	eval := func(x Expr) (uint64, error) {
		v, err := r.Eval(x)
		if errors.Is(err, ErrBadAddress) {
			err = fmt.Errorf("%w %q: %s", ErrBadRange, rr.text, strings.TrimPrefix(err.Error(), ErrBadAddress.Error()+": "))
		}
		return v, err
	}
	if start, err = eval(rr.start); err != nil {
		return 0, 0, err
	}
	switch rr.kind {
	case 0:
		if start == 1<<64-1 {
			return bad("a byte there would run past the last address")
		}
		return start, start + 1, nil
	case '+':
		if start+rr.n < start {
			return bad("it runs past the last address")
		}
		return start, start + rr.n, nil
	case '-':
		if rr.n > start {
			return bad("it starts before address 0")
		}
		return start - rr.n, start, nil
	}
	if end, err = eval(rr.end); err != nil {
		return 0, 0, err
	}
	if end <= start {
		return bad("END is not after ADDR")
	}
	return start, end, nil
}

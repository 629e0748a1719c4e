package scan

import (
	"bytes"
	"cmp"
	"fmt"
	"strings"
)

// test is a Cond made ready for a Spec: its values parsed for every
// reading they apply to.
type test struct {
	op    Op
	spec  Spec   // what the scan finds: for a first scan of text or a group, made by the test
	lanes []lane // numeric specs: the readings the value fits, with the value in each
	mask  uint16 // the lanes' flags
	pat   pattern
	parts []test // groups: one per value
	since string
	// widths: for = on integers alone, the value's bits at each width
	// (1, 2, 4, 8 bytes) and the lanes of that width it fits, so that a
	// match's bytes are read once a width and compared.
	widths []exactWidth
}

type exactWidth struct {
	size  int
	flags uint16
	want  uint64
}

// lane is one reading of a numeric test, with its values in that type.
type lane struct {
	t    Type
	a, b Value
	// exact: the test is = on an integer, passed by the bits want alone.
	exact bool
	want  uint64
}

// DefaultWindow is a group's window when the first group scan gives none.
const DefaultWindow = 64

// Compile checks c against what the session scans for (s; for a first
// scan, what -t asked for) and makes it ready to run. first says there are
// no matches to narrow. Errors are ErrSyntax: a value the type does not
// take, a command the class has not.
func (s Spec) compile(c Cond, first bool) (*test, error) {
	t := &test{op: c.Op, spec: s, since: c.Since}
	if c.Parts != nil {
		return s.compileGroup(c, first)
	}
	switch {
	case first && c.NeedsPrevious() && c.Since == "":
		return nil, fmt.Errorf("%w: %s compares with a previous scan: start with a value, or snapshot when the value is not known", errNoPrevious, c)
	case s.Class == Group && first:
		// A first scan that is no group scans for the first value's type.
		return Spec{Class: Number, Num: s.Parts[0], Big: s.Big, Unaligned: s.Unaligned}.compile(c, first)
	case s.Class == Group:
		// Other commands test the first value.
		first, err := Spec{Class: Number, Num: s.Parts[0]}.compile(c, false)
		if err != nil {
			return nil, err
		}
		t.parts = make([]test, len(s.Parts))
		t.parts[0] = *first
		for i := 1; i < len(s.Parts); i++ {
			t.parts[i] = test{op: OpAny, spec: Spec{Class: Number, Num: s.Parts[i]}, lanes: []lane{{t: s.Parts[i]}}}
		}
		return t, nil
	case s.Text():
		return t, s.compileText(t, c, first)
	}
	return t, s.compileLanes(t, c)
}

// errNoPrevious is a first scan that needs a previous one: an error of
// the session's state, not of the command's syntax.
var errNoPrevious = fmt.Errorf("no scan yet")

func (s Spec) compileLanes(t *test, c Cond) error {
	valued := c.Op >= OpEq && c.Op <= OpRange || c.Op == OpUp || c.Op == OpDown
	if valued && strings.ContainsAny(c.A, " \t") {
		if c.bare {
			return fmt.Errorf("%w: unknown command %q: type help", ErrSyntax, c.A)
		}
		return fmt.Errorf("%w: %s takes one value", ErrSyntax, strings.Fields(c.String())[0])
	}
	var firstErr error
	for _, ty := range s.lanes() {
		l := lane{t: ty}
		var err error
		if valued {
			if l.a, err = ty.ParseValue(c.A); err == nil && c.Op == OpRange {
				if l.b, err = ty.ParseValue(c.B); err == nil && ty.compare(l.a.n, l.b.n) > 0 {
					return fmt.Errorf("%w: range %s..%s: %s is above %s", ErrSyntax, c.A, c.B, c.A, c.B)
				}
			}
		}
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		if c.Op == OpEq && ty.Kind != Float {
			l.exact, l.want = true, ty.bits(ty.Encode(l.a))
		}
		t.lanes = append(t.lanes, l)
		t.mask |= ty.Flag
	}
	switch {
	case len(t.lanes) > 0:
		t.widths = exactWidths(t.lanes)
		return nil
	case s.Class != Number:
		return fmt.Errorf("%w: %s value %q: no number of any width it scans (or an unknown command: type help)", ErrSyntax, s, c.A)
	case c.Op == OpEq:
		return fmt.Errorf("%w (or unknown command: type help)", firstErr)
	}
	return firstErr
}

func (s Spec) compileText(t *test, c Cond, first bool) error {
	switch c.Op {
	case OpEq, OpNe:
	case OpChanged, OpUnchanged, OpUpdate:
		if first && s.Len == 0 {
			return fmt.Errorf("%w: a %s scan starts with its value", ErrSyntax, s)
		}
		return nil
	default:
		return fmt.Errorf("%w: %s scans take = VALUE, != VALUE, changed, unchanged and update", ErrSyntax, s)
	}
	if c.Op == OpNe && first {
		return fmt.Errorf("%w: a %s scan starts with = VALUE", ErrSyntax, s)
	}
	var err error
	if s.Class == Bytes {
		t.pat, err = parseBytes(c.A)
	} else {
		var b []byte
		if b, err = encodeText(c.A, s.UTF16, s.Big); err == nil {
			mask := bytes.Repeat([]byte{0xff}, len(b))
			t.pat = newPattern(b, mask)
		}
	}
	if err != nil {
		return err
	}
	if c.Op == OpEq {
		t.spec.Len = len(t.pat.b)
	}
	return nil
}

// compileGroup makes a group test: on a first scan, one that finds the
// group and makes it what the session scans for.
func (s Spec) compileGroup(c Cond, first bool) (*test, error) {
	bad := func(format string, a ...any) (*test, error) {
		return nil, fmt.Errorf("%w: group: %s", ErrSyntax, fmt.Sprintf(format, a...))
	}
	g := s
	if first || s.Class != Group {
		if !first {
			return bad("the matches are %s values: reset starts a group scan", s)
		}
		g = Spec{Class: Group, Big: s.Big, Unaligned: s.Unaligned, Window: c.Window}
		if g.Window == 0 {
			g.Window = DefaultWindow
		}
		for _, p := range c.Parts {
			if p.Op != OpEq {
				return bad("a first group scan takes values, not %s", opWord(p.Op))
			}
			name := p.Type
			if name == "" {
				name = "int32"
				if s.Class == Number {
					name = s.Num.Name
				}
			}
			ty, err := ParseType(name, map[bool]string{false: "little", true: "big"}[s.Big])
			if err != nil {
				return bad("%v", strings.TrimPrefix(err.Error(), ErrSyntax.Error()+": "))
			}
			g.Parts = append(g.Parts, ty)
		}
		if g.packedLen(0) > g.Window {
			return bad("%d bytes of values do not fit within %d", g.packedLen(0), g.Window)
		}
	} else {
		if len(c.Parts) != len(s.Parts) {
			return bad("the matches are groups of %d values, not %d", len(s.Parts), len(c.Parts))
		}
		if c.Window != 0 && c.Window != s.Window {
			return bad("the matches lie within %d bytes: leave within out", s.Window)
		}
	}
	t := &test{op: OpEq, spec: g, since: c.Since}
	for i, p := range c.Parts {
		if p.Type != "" && p.Type != g.Parts[i].Name {
			return bad("value %d is %s: leave :%s out", i+1, g.Parts[i].Name, p.Type)
		}
		part := Spec{Class: Number, Num: g.Parts[i]}
		if p.Op == OpAny {
			t.parts = append(t.parts, test{op: OpAny, spec: part, lanes: []lane{{t: g.Parts[i]}}})
			continue
		}
		pt, err := part.compile(Cond{Op: p.Op, A: p.Value}, false)
		if err != nil {
			return nil, err
		}
		t.parts = append(t.parts, *pt)
	}
	return t, nil
}

// exactWidths groups lanes that test = on integers by width; nil unless
// every lane does. Within a width every lane the value fits has its bits.
func exactWidths(lanes []lane) []exactWidth {
	var out []exactWidth
lanes:
	for _, l := range lanes {
		if !l.exact {
			return nil
		}
		for i := range out {
			if out[i].size == l.t.Size {
				out[i].flags |= l.t.Flag
				continue lanes
			}
		}
		out = append(out, exactWidth{l.t.Size, l.t.Flag, l.want})
	}
	return out
}

// pass reports whether cur (whose value at the last scan was old) passes
// the lane's test.
func (l *lane) pass(op Op, cur, old []byte) bool {
	t := &l.t
	switch op {
	case OpAny, OpSnapshot, OpUpdate:
		return true
	case OpChanged:
		return !bytes.Equal(cur[:t.Size], old[:t.Size])
	case OpUnchanged:
		return bytes.Equal(cur[:t.Size], old[:t.Size])
	}
	v := t.load(cur)
	switch op {
	case OpEq:
		return t.equals(v, l.a)
	case OpNe:
		return !t.equals(v, l.a)
	case OpGt:
		return t.compare(v, l.a.n) > 0
	case OpLt:
		return t.compare(v, l.a.n) < 0
	case OpRange:
		return t.compare(v, l.a.n) >= 0 && t.compare(v, l.b.n) <= 0
	case OpIncreased:
		return t.compare(v, t.load(old)) > 0
	case OpDecreased:
		return t.compare(v, t.load(old)) < 0
	case OpUp:
		return t.changedBy(v, t.load(old), l.a, 1)
	case OpDown:
		return t.changedBy(v, t.load(old), l.a, -1)
	}
	return false
}

// flags returns which of the lanes have pass at cur, whose value at the
// last scan was old (as long as the widest of have); a lane that would
// reach past cur does not.
func (t *test) flags(cur, old []byte, have uint16) uint16 {
	var out uint16
	if t.widths != nil {
		for _, w := range t.widths {
			if have&w.flags != 0 && len(cur) >= w.size && (Type{Size: w.size, Big: t.spec.Big}).bits(cur) == w.want {
				out |= have & w.flags
			}
		}
		return out
	}
	for i := range t.lanes {
		l := &t.lanes[i]
		if have&l.t.Flag != 0 && len(cur) >= l.t.Size && l.pass(t.op, cur, old) {
			out |= l.t.Flag
		}
	}
	return out
}

// passText reports whether the text or bytes at cur pass (old: the match's
// value at the last scan).
func (t *test) passText(cur, old []byte) bool {
	switch t.op {
	case OpEq:
		return t.pat.match(cur)
	case OpNe:
		return !t.pat.match(cur)
	case OpChanged, OpUnchanged:
		n := t.spec.Len
		return len(cur) >= n && bytes.Equal(cur[:n], old[:n]) == (t.op == OpUnchanged)
	}
	return len(cur) >= t.spec.Len
}

// passGroup reports whether the group whose bytes from its address on are
// cur passes: each value at its offset (0 and offs), old the values packed.
func (t *test) passGroup(cur []byte, offs []uint16, old []byte) bool {
	at, o := 0, 0
	for i := range t.parts {
		p := &t.parts[i]
		size := p.lanes[0].t.Size
		if i > 0 {
			at = int(offs[i-1])
		}
		if at+size > len(cur) || !p.lanes[0].pass(p.op, cur[at:], old[o:]) {
			return false
		}
		o += size
	}
	return true
}

// readLen is how many bytes from a match's address narrowing must read:
// its extent, or more for a longer string to compare with.
func (t *test) readLen(have uint16) int {
	n := t.spec.extent(have)
	if t.spec.Text() {
		n = max(n, len(t.pat.b))
	}
	return n
}

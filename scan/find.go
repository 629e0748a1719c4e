package scan

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// finder finds the matches a first scan keeps in one page.
type finder interface {
	// find sets m to the matches starting at page offsets from to to-1 of
	// b, which holds the page from its start on and, after it, the bytes
	// a match may reach into (as far as they are known).
	find(b []byte, from, to int, m *pageMatches)
}

// newFinder makes the finder of a first scan's test.
func newFinder(t *test) finder {
	switch t.spec.Class {
	case Number:
		return newNumFinder(t, &t.lanes[0], t.spec.step())
	case AnyInt, AnyNumber:
		return newAnyFinder(t)
	case Group:
		return &groupFinder{t: t, first: newNumFinder(&t.parts[0], &t.parts[0].lanes[0], t.spec.step())}
	}
	return &textFinder{t: t, step: t.spec.step()}
}

// numFinder finds the values of one numeric type that pass.
type numFinder struct {
	t      *test
	l      *lane
	step   int
	needle []byte // for = on integers: the value's bytes, found with bytes.Index
	span   *span  // for the other tests of little-endian integers
}

func newNumFinder(t *test, l *lane, step int) *numFinder {
	f := &numFinder{t: t, l: l, step: step}
	if t.op == OpEq && l.t.Kind != Float {
		f.needle = l.t.Encode(l.a)
	}
	f.span = newSpan(l, t.op)
	return f
}

func (f *numFinder) find(b []byte, from, to int, m *pageMatches) {
	m.offs = f.offsets(b, from, to, m.offs[:0])
}

// offsets appends the offsets of the values that pass.
func (f *numFinder) offsets(b []byte, from, to int, offs []uint16) []uint16 {
	size, step := f.l.t.Size, f.step
	start := (from + step - 1) / step * step
	limit := min(to, len(b)-size+1) // positions below it
	if start >= limit {
		return offs
	}
	switch {
	case f.needle != nil:
		end := limit - 1 + size
		for at := start; at < limit; {
			i := bytes.Index(b[at:end], f.needle)
			if i < 0 {
				break
			}
			if at += i; at%step == 0 {
				offs = append(offs, uint16(at))
				at += step
			} else {
				at++
			}
		}
	case f.span != nil:
		offs = f.span.find(b, size, start, limit, step, offs)
	case f.t.op == OpSnapshot:
		for off := start; off < limit; off += step {
			offs = append(offs, uint16(off))
		}
	default:
		for off := start; off < limit; off += step {
			if f.l.pass(f.t.op, b[off:], nil) {
				offs = append(offs, uint16(off))
			}
		}
	}
	return offs
}

// span is an integer test as one interval of the values' bits, read
// little-endian and biased so that the type's order is the order of
// unsigned numbers (signed: the sign bit flipped): a value passes when
// its biased bits lie in [lo, hi], or outside when invert is set. It lets
// a first scan test a value in a few instructions.
type span struct {
	flip, lo, hi uint64
	invert, none bool // none: no value passes
}

// newSpan makes the span of op on l, or nil if it is no such test.
func newSpan(l *lane, op Op) *span {
	t := &l.t
	if t.Kind == Float || t.Big {
		return nil
	}
	bits := uint(8 * t.Size)
	max := ^uint64(0) >> (64 - bits)
	sp := &span{}
	if t.Kind == Signed {
		sp.flip = 1 << (bits - 1)
	}
	biased := func(v Value) uint64 {
		if t.Kind == Signed {
			return uint64(v.n.i)&max ^ sp.flip
		}
		return v.n.u
	}
	switch op {
	case OpNe:
		sp.lo, sp.hi, sp.invert = biased(l.a), biased(l.a), true
	case OpGt:
		sp.lo, sp.hi = biased(l.a)+1, max
		sp.none = biased(l.a) == max
	case OpLt:
		sp.lo, sp.hi = 0, biased(l.a)-1
		sp.none = biased(l.a) == 0
	case OpRange:
		sp.lo, sp.hi = biased(l.a), biased(l.b)
	default:
		return nil
	}
	return sp
}

// find appends the offsets, from start on and below limit, of the values
// of b that pass.
func (sp *span) find(b []byte, size, start, limit, step int, offs []uint16) []uint16 {
	if sp.none {
		return offs
	}
	lo, width, flip, invert := sp.lo, sp.hi-sp.lo, sp.flip, sp.invert
	for at := start; at < limit; at += step {
		var u uint64
		switch size {
		case 1:
			u = uint64(b[at])
		case 2:
			u = uint64(binary.LittleEndian.Uint16(b[at:]))
		case 4:
			u = uint64(binary.LittleEndian.Uint32(b[at:]))
		default:
			u = binary.LittleEndian.Uint64(b[at:])
		}
		if ((u^flip)-lo <= width) != invert {
			offs = append(offs, uint16(at))
		}
	}
	return offs
}

// anyFinder finds the values of anyint and anynumber: each lane on its
// own, the flags of every position gathered.
type anyFinder struct {
	t     *test
	low   int          // = on integers: the low byte every lane's value starts with, found with IndexByte; -1 if none
	ints  []*numFinder // the lanes found one by one
	acc   []uint16     // flags by page offset
	seen  []uint16     // the offsets acc holds flags for
	vals  []uint64     // = on integers: each int lane's value bits
	lanes []*lane
}

func newAnyFinder(t *test) *anyFinder {
	f := &anyFinder{t: t, low: -1, acc: make([]uint16, PageSize)}
	intEq := t.op == OpEq && !t.spec.Big
	for i := range t.lanes {
		l := &t.lanes[i]
		step := l.t.Size
		if t.spec.Unaligned {
			step = 1
		}
		if intEq && l.t.Kind != Float {
			f.lanes = append(f.lanes, l)
			f.vals = append(f.vals, l.t.bits(l.t.Encode(l.a)))
			f.low = int(l.t.Encode(l.a)[0])
			continue
		}
		f.ints = append(f.ints, newNumFinder(t, l, step))
	}
	return f
}

func (f *anyFinder) find(b []byte, from, to int, m *pageMatches) {
	m.offs, m.flags = m.offs[:0], m.flags[:0]
	if f.t.op == OpSnapshot {
		for off := from; off < to; off++ {
			if fl := f.fit(f.t.spec.allowed(off), off, len(b)); fl != 0 {
				m.offs = append(m.offs, uint16(off))
				m.flags = append(m.flags, fl)
			}
		}
		return
	}
	f.seen = f.seen[:0]
	if f.low >= 0 {
		f.findLow(b, from, to)
	}
	var offs []uint16
	for _, nf := range f.ints {
		offs = nf.offsets(b, from, to, offs[:0])
		for _, off := range offs {
			f.mark(off, nf.l.t.Flag)
		}
	}
	if len(f.seen) > 1 && !slices.IsSorted(f.seen) {
		slices.Sort(f.seen)
	}
	for _, off := range f.seen {
		m.offs = append(m.offs, off)
		m.flags = append(m.flags, f.acc[off])
		f.acc[off] = 0
	}
}

func (f *anyFinder) mark(off, flag uint16) {
	if f.acc[off] == 0 {
		f.seen = append(f.seen, off)
	}
	f.acc[off] |= flag
}

// fit is the flags of fl whose lanes fit in the n bytes from page offset
// off's page start.
func (f *anyFinder) fit(fl uint16, off, n int) uint16 {
	if off+8 <= n {
		return fl
	}
	for _, t := range types {
		if off+t.Size > n {
			fl &^= t.Flag
		}
	}
	return fl
}

// findLow finds = on the integer lanes: every lane's value starts with the
// same low byte, so IndexByte finds the candidates for all of them.
func (f *anyFinder) findLow(b []byte, from, to int) {
	low := byte(f.low)
	end := min(to, len(b))
	for at := from; at < end; {
		i := bytes.IndexByte(b[at:end], low)
		if i < 0 {
			return
		}
		at += i
		for k, l := range f.lanes {
			size := l.t.Size
			if (f.t.spec.Unaligned || at%size == 0) && at+size <= len(b) && l.t.bits(b[at:]) == f.vals[k] {
				f.mark(uint16(at), l.t.Flag)
			}
		}
		at++
	}
}

// textFinder finds a string or byte pattern: its longest run of fixed
// bytes with bytes.Index, then the rest compared.
type textFinder struct {
	t    *test
	step int
}

func (f *textFinder) find(b []byte, from, to int, m *pageMatches) {
	m.offs = m.offs[:0]
	p := &f.t.pat
	n := len(p.b)
	start := (from + f.step - 1) / f.step * f.step
	limit := min(to, len(b)-n+1) // positions below it
	if start >= limit {
		return
	}
	if len(p.anchor) == 0 {
		for off := start; off < limit; off += f.step {
			if p.match(b[off:]) {
				m.offs = append(m.offs, uint16(off))
			}
		}
		return
	}
	// The anchor of a match at off lies at off+anchorAt.
	end := limit - 1 + p.anchorAt + len(p.anchor)
	for at := start + p.anchorAt; at < end; {
		i := bytes.Index(b[at:end], p.anchor)
		if i < 0 {
			return
		}
		at += i
		if off := at - p.anchorAt; off%f.step == 0 && p.match(b[off:]) {
			m.offs = append(m.offs, uint16(off))
		}
		at++
	}
}

// groupFinder finds the first value, then each next one after the one
// before, nearest first, within the window.
type groupFinder struct {
	t     *test
	first *numFinder
	offs  []uint16
}

func (f *groupFinder) find(b []byte, from, to int, m *pageMatches) {
	m.offs, m.goffs = m.offs[:0], m.goffs[:0]
	f.offs = f.first.offsets(b, from, to, f.offs[:0])
	s := &f.t.spec
	for _, off := range f.offs {
		w := b[off:min(len(b), int(off)+s.Window)]
		k := len(m.goffs)
		if f.rest(w, m) {
			m.offs = append(m.offs, off)
		} else {
			m.goffs = m.goffs[:k]
		}
	}
}

// rest finds the values after the first in w, the window from the first
// on, and appends their offsets.
func (f *groupFinder) rest(w []byte, m *pageMatches) bool {
	s := &f.t.spec
	end := s.Parts[0].Size
	for i := 1; i < len(s.Parts); i++ {
		p := &f.t.parts[i]
		size := s.Parts[i].Size
		step := size
		if s.Unaligned {
			step = 1
		}
		o := (end + step - 1) / step * step
		for ; o+size <= len(w); o += step {
			if p.lanes[0].pass(p.op, w[o:], nil) {
				break
			}
		}
		if o+size > len(w) {
			return false
		}
		m.goffs = append(m.goffs, uint16(o))
		end = o + size
	}
	return true
}

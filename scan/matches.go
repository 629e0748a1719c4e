package scan

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Match is one match, as list shows it and set writes it.
type Match struct {
	Addr    uint64
	Flags   uint16   // anyint, anynumber: the readings that passed every scan
	Offsets []uint16 // groups: the offsets of the values after the first
	Old     []byte   // the value at the last scan (a group's values, packed)
}

// ErrNoScan is the error of a command that needs matches when there are
// none.
var ErrNoScan = errors.New("no scan yet: start with a value, or snapshot")

// Matches calls fn with each match, lowest address first, until it
// returns false. The match's slices are valid during the call only.
func (s *Session) Matches(fn func(Match) bool) error {
	cur := s.Current()
	if cur == nil {
		return ErrNoScan
	}
	r, err := s.openStep(cur.ID)
	if err != nil {
		return err
	}
	defer r.close()
	spec := r.hdr.Spec
	c := newCursor(&spec)
	var scratch []byte
	for {
		p, err := r.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		f, err := p.unpack(&spec, &scratch)
		if err != nil {
			return err
		}
		for i := range f.pages {
			c.start(f, &f.pages[i])
			for m, ok := c.next(); ok; m, ok = c.next() {
				if !fn(Match{Addr: f.pages[i].addr + uint64(m.off), Flags: m.flags, Offsets: m.goffs, Old: m.old}) {
					return nil
				}
			}
		}
	}
}

// First returns up to n matches, lowest addresses first, with slices of
// their own.
func (s *Session) First(n int) ([]Match, error) {
	var out []Match
	err := s.Matches(func(m Match) bool {
		m.Offsets = append([]uint16(nil), m.Offsets...)
		m.Old = append([]byte(nil), m.Old...)
		out = append(out, m)
		return len(out) < n
	})
	return out, err
}

// Extent is how many bytes from a match's address its value takes.
func (s Spec) Extent(m Match) int {
	if s.Class != Group {
		return s.extent(m.Flags)
	}
	return int(m.Offsets[len(m.Offsets)-1]) + s.Parts[len(s.Parts)-1].Size
}

// widest is the reading list and set use for a match: its widest, an
// integer before a float, signed unless only unsigned passed.
func (s Spec) widest(flags uint16) Type {
	if s.Class == Number {
		return s.Num
	}
	var best Type
	for _, t := range s.lanes() {
		if flags&t.Flag != 0 && (t.Size > best.Size || t.Size == best.Size && best.Kind == Float && t.Kind != Float ||
			t.Size == best.Size && best.Kind == Unsigned && t.Kind == Signed) {
			best = t
		}
	}
	return best
}

// Format shows a value of match m: cur holds the bytes from its address
// on (Extent of them), or m.Old for its value at the last scan.
func (s Spec) Format(m Match, cur []byte, old bool) string {
	switch s.Class {
	case String:
		return formatText(cur[:min(len(cur), s.Len)], s.UTF16, s.Big)
	case Bytes:
		return formatBytes(cur[:min(len(cur), s.Len)])
	case Group:
		vals := make([]string, len(s.Parts))
		at := 0
		for i, t := range s.Parts {
			if !old && i > 0 {
				at = int(m.Offsets[i-1])
			}
			if at+t.Size > len(cur) {
				return "?"
			}
			vals[i] = t.Format(cur[at:])
			if old {
				at += t.Size
			}
		}
		return strings.Join(vals, ",")
	}
	t := s.widest(m.Flags)
	if len(cur) < t.Size {
		return "?"
	}
	return t.Format(cur)
}

// Kind says what a match is beside its value: the readings of an anyint or
// anynumber match ("int8,int16,int32"), a group's offsets ("+0x8,+0x10"),
// or nothing.
func (s Spec) Kind(m Match) string {
	var words []string
	switch s.Class {
	case AnyInt, AnyNumber:
		for _, size := range []int{1, 2, 4, 8} {
			var signed, unsigned, float bool
			for _, t := range s.lanes() {
				if t.Size == size && m.Flags&t.Flag != 0 {
					signed = signed || t.Kind == Signed
					unsigned = unsigned || t.Kind == Unsigned
					float = float || t.Kind == Float
				}
			}
			switch {
			case signed:
				words = append(words, "int"+strconv.Itoa(8*size))
			case unsigned:
				words = append(words, "uint"+strconv.Itoa(8*size))
			}
			if float {
				words = append(words, map[int]string{4: "float", 8: "double"}[size])
			}
		}
	case Group:
		for _, o := range m.Offsets {
			words = append(words, fmt.Sprintf("+0x%x", o))
		}
	}
	return strings.Join(words, ",")
}

// Write is bytes to write at an address.
type Write struct {
	Addr  uint64
	Bytes []byte
}

// Writes is what set V writes: V at each match, as the matches read it
// (anyint: at the widest width that holds V; a group: its first value),
// at most max of them. skipped counts matches that no reading of V fits.
func (s *Session) Writes(value string, max int) (writes []Write, skipped int, err error) {
	cur := s.Current()
	switch {
	case cur == nil:
		return nil, 0, errors.New("no matches to write: scan first")
	case cur.Matches == 0:
		return nil, 0, errors.New("no matches to write")
	case cur.Matches > uint64(max):
		return nil, 0, fmt.Errorf("%d matches: narrow them first (set and freeze write at most %d)", cur.Matches, max)
	}
	spec := cur.Spec
	enc, err := spec.encoder(value)
	if err != nil {
		return nil, 0, err
	}
	err = s.Matches(func(m Match) bool {
		if b := enc(m.Flags); b != nil {
			writes = append(writes, Write{m.Addr, b})
		} else {
			skipped++
		}
		return true
	})
	return writes, skipped, err
}

// Encode is the bytes set ADDR V writes: V in the type of the matches (or
// of a first scan's when there are none). For anyint and anynumber, a
// match at addr is written as set writes it; any other address at the
// narrowest integer width that holds V.
func (s *Session) Encode(addr uint64, value string) ([]byte, error) {
	spec := s.Spec()
	enc, err := spec.encoder(value)
	if err != nil {
		return nil, err
	}
	if spec.Class != AnyInt && spec.Class != AnyNumber {
		return enc(spec.allowed(0)), nil
	}
	var found *Match
	if s.Current() != nil {
		err := s.Matches(func(m Match) bool {
			if m.Addr == addr {
				found = &m
			}
			return m.Addr < addr
		})
		if err != nil {
			return nil, err
		}
	}
	if found != nil {
		if b := enc(found.Flags); b != nil {
			return b, nil
		}
	}
	for _, size := range []int{1, 2, 4, 8} {
		for _, t := range spec.lanes() {
			if t.Size == size && t.Kind != Float {
				if b := enc(t.Flag); b != nil {
					return b, nil
				}
			}
		}
	}
	if b := enc(FlagF64); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("%w: %s fits no width of %s", ErrSyntax, value, spec)
}

// encoder parses a value for set and returns what to write at a match with
// the given flags (nil if the value fits none of its readings).
func (s Spec) encoder(value string) (func(flags uint16) []byte, error) {
	switch s.Class {
	case String, Bytes:
		var b []byte
		var err error
		if s.Class == Bytes {
			p, perr := parseBytes(value)
			if perr == nil && !p.exact() {
				perr = fmt.Errorf("%w: set writes bytes without wildcards", ErrSyntax)
			}
			b, err = p.b, perr
		} else {
			b, err = encodeText(value, s.UTF16, s.Big)
		}
		if err != nil {
			return nil, err
		}
		if len(b) != s.Len {
			return nil, fmt.Errorf("%w: the matches are %d bytes, %q is %d: set writes a value as long as the matches", ErrSyntax, s.Len, value, len(b))
		}
		return func(uint16) []byte { return b }, nil
	case Group:
		enc, err := Spec{Class: Number, Num: s.Parts[0]}.encoder(value)
		if err != nil {
			return nil, err
		}
		return func(uint16) []byte { return enc(s.Parts[0].Flag) }, nil
	}
	if strings.ContainsAny(value, " \t") {
		return nil, fmt.Errorf("%w: %q: one value", ErrSyntax, value)
	}
	type lane struct {
		t Type
		b []byte
	}
	var lanes []lane
	var firstErr error
	for _, t := range s.lanes() {
		v, err := t.ParseValue(value)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		lanes = append(lanes, lane{t, t.Encode(v)})
	}
	if len(lanes) == 0 {
		return nil, firstErr
	}
	return func(flags uint16) []byte {
		var best *lane
		for i := range lanes {
			l := &lanes[i]
			if flags&l.t.Flag != 0 && (best == nil || l.t.Size > best.t.Size || l.t.Size == best.t.Size && best.t.Kind == Float) {
				best = l
			}
		}
		if best == nil {
			return nil
		}
		return best.b
	}, nil
}

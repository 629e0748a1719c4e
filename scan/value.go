// Package scan finds a value in a process's memory and narrows the matches
// as the value changes: what game modders do to find health or gold. A
// first scan reads every selected page that holds data, on every core; each
// following scan reads only the previous matches again, and keeps those
// that pass. Matches and the values they held are kept per page (frame.go)
// in set files that are written and read as streams (setfile.go), and a
// session keeps every step of them, for undo and redo, with named
// snapshots of memory, in a directory (session.go).
package scan

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrSyntax is wrapped by every error about a command or value as typed.
var ErrSyntax = errors.New("bad command")

// Kind is how a type's bits are read.
type Kind uint8

const (
	Signed Kind = iota
	Unsigned
	Float
)

// Type is one numeric type: of the value scanned for, or of one reading of
// the bytes at a match (a lane, for anyint and anynumber).
type Type struct {
	Name string // int8 ... int64, uint8 ... uint64, float, double
	Size int    // in bytes
	Kind Kind
	Big  bool   // big-endian
	Flag uint16 // the type's bit in a match's flags (one per type, as scanmem's)
}

// The flags of a match say which readings of its bytes passed every scan
// so far: for a one-type scan always its type's, for anyint and anynumber
// any of them.
const (
	FlagU8 uint16 = 1 << iota
	FlagS8
	FlagU16
	FlagS16
	FlagU32
	FlagS32
	FlagU64
	FlagS64
	FlagF32
	FlagF64
)

var types = []Type{
	{Name: "int8", Size: 1, Flag: FlagS8}, {Name: "int16", Size: 2, Flag: FlagS16},
	{Name: "int32", Size: 4, Flag: FlagS32}, {Name: "int64", Size: 8, Flag: FlagS64},
	{Name: "uint8", Size: 1, Kind: Unsigned, Flag: FlagU8}, {Name: "uint16", Size: 2, Kind: Unsigned, Flag: FlagU16},
	{Name: "uint32", Size: 4, Kind: Unsigned, Flag: FlagU32}, {Name: "uint64", Size: 8, Kind: Unsigned, Flag: FlagU64},
	{Name: "float", Size: 4, Kind: Float, Flag: FlagF32}, {Name: "double", Size: 8, Kind: Float, Flag: FlagF64},
}

// TypeNames lists the types ParseType knows.
func TypeNames() []string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.Name
	}
	return names
}

// ParseType returns the type of that name, in the byte order endian
// ("little" or "big").
func ParseType(name, endian string) (Type, error) {
	for _, t := range types {
		if t.Name == name {
			switch endian {
			case "little":
			case "big":
				t.Big = true
			default:
				return Type{}, fmt.Errorf("%w: byte order %q: want little or big", ErrSyntax, endian)
			}
			return t, nil
		}
	}
	return Type{}, fmt.Errorf("%w: type %q: want one of %s", ErrSyntax, name, strings.Join(TypeNames(), ", "))
}

// Endian is the type's byte order, as ParseType takes it.
func (t Type) Endian() string {
	if t.Big {
		return "big"
	}
	return "little"
}

// bits reads the value's bits from the first Size bytes of b. It runs for
// every match a narrowing tests, so the byte order is no interface call.
func (t Type) bits(b []byte) uint64 {
	le, be := binary.LittleEndian, binary.BigEndian
	switch {
	case t.Size == 1:
		return uint64(b[0])
	case t.Size == 2 && t.Big:
		return uint64(be.Uint16(b))
	case t.Size == 2:
		return uint64(le.Uint16(b))
	case t.Size == 4 && t.Big:
		return uint64(be.Uint32(b))
	case t.Size == 4:
		return uint64(le.Uint32(b))
	case t.Big:
		return be.Uint64(b)
	}
	return le.Uint64(b)
}

// num is a value read from memory or typed: the field of its type's kind.
type num struct {
	i int64
	u uint64
	f float64
}

// load decodes the value at the start of b.
func (t Type) load(b []byte) num {
	u := t.bits(b)
	switch t.Kind {
	case Signed:
		shift := 64 - 8*t.Size
		return num{i: int64(u<<shift) >> shift}
	case Unsigned:
		return num{u: u}
	}
	if t.Size == 4 {
		return num{f: float64(math.Float32frombits(uint32(u)))}
	}
	return num{f: math.Float64frombits(u)}
}

// Format prints the value at the start of b as a number.
func (t Type) Format(b []byte) string {
	n := t.load(b)
	switch t.Kind {
	case Signed:
		return strconv.FormatInt(n.i, 10)
	case Unsigned:
		return strconv.FormatUint(n.u, 10)
	}
	return strconv.FormatFloat(n.f, 'g', -1, 8*t.Size)
}

// Value is a number as typed for a type: its bits, and for floats the
// precision typed, so that "3.14" matches 3.1400001.
type Value struct {
	Text string
	n    num
	tol  float64 // floats: half a unit in the last digit typed
}

// ParseValue parses s as a value of type t: decimal or 0x hex for
// integers, within the type's range; decimal for floats.
func (t Type) ParseValue(s string) (Value, error) {
	bad := func(why string) (Value, error) {
		return Value{}, fmt.Errorf("%w: %s value %q: %s", ErrSyntax, t.Name, s, why)
	}
	v := Value{Text: s}
	var err error
	switch t.Kind {
	case Signed:
		v.n.i, err = strconv.ParseInt(s, 0, 8*t.Size)
	case Unsigned:
		if strings.HasPrefix(s, "-") {
			return bad("negative")
		}
		v.n.u, err = strconv.ParseUint(s, 0, 8*t.Size)
	case Float:
		if v.n.f, err = strconv.ParseFloat(s, 64); err == nil {
			if strings.ContainsAny(s, "xXpP_") { // hex floats and underscores: not what anyone types
				return bad("not a decimal number")
			}
			if math.IsNaN(v.n.f) || math.IsInf(v.n.f, 0) {
				return bad("not a finite number")
			}
			if t.Size == 4 && math.Abs(v.n.f) > math.MaxFloat32 {
				return bad("out of range for float")
			}
			v.tol = tolerance(s)
		}
	}
	switch {
	case errors.Is(err, strconv.ErrRange):
		return bad("out of range for " + t.Name)
	case err != nil:
		return bad("not a number")
	}
	return v, nil
}

// tolerance is half a unit in the last decimal place of the number s: the
// numbers that round to s as typed lie within it.
func tolerance(s string) float64 {
	mant, exp, _ := strings.Cut(strings.ToLower(s), "e")
	digits := 0
	if _, frac, ok := strings.Cut(mant, "."); ok {
		digits = len(frac)
	}
	if e, err := strconv.Atoi(exp); err == nil {
		digits -= e
	}
	return 0.5 * math.Pow(10, float64(-digits))
}

// Encode returns the bytes of v in memory.
func (t Type) Encode(v Value) []byte {
	var u uint64
	switch t.Kind {
	case Signed:
		u = uint64(v.n.i)
	case Unsigned:
		u = v.n.u
	case Float:
		if t.Size == 4 {
			u = uint64(math.Float32bits(float32(v.n.f)))
		} else {
			u = math.Float64bits(v.n.f)
		}
	}
	b := make([]byte, 8)
	if t.Big {
		binary.BigEndian.PutUint64(b, u)
		return b[8-t.Size:]
	}
	binary.LittleEndian.PutUint64(b, u)
	return b[:t.Size]
}

// compare orders a and b as values of type t: -1, 0 or 1.
func (t Type) compare(a, b num) int {
	switch t.Kind {
	case Signed:
		return cmp3(a.i, b.i)
	case Unsigned:
		return cmp3(a.u, b.u)
	}
	return cmp3(a.f, b.f)
}

func cmp3[T int64 | uint64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// equals reports whether a is v, as precisely as v was typed.
func (t Type) equals(a num, v Value) bool {
	if t.Kind == Float {
		return math.Abs(a.f-v.n.f) <= v.tol
	}
	return a == v.n
}

// changedBy reports whether cur - old is d (d may be negative for a
// decrease), in the type's own arithmetic: integers wrap as in the
// process.
func (t Type) changedBy(cur, old num, d Value, sign int) bool {
	switch t.Kind {
	case Signed:
		diff := uint64(cur.i - old.i)
		want := uint64(d.n.i * int64(sign))
		mask := ^uint64(0) >> (64 - 8*t.Size)
		return diff&mask == want&mask
	case Unsigned:
		diff := cur.u - old.u
		want := d.n.u
		if sign < 0 {
			want = -want
		}
		mask := ^uint64(0) >> (64 - 8*t.Size)
		return diff&mask == want&mask
	}
	return math.Abs(cur.f-old.f-float64(sign)*d.n.f) <= d.tol
}

package scan

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Class is the kind of thing a session scans for.
type Class uint8

const (
	Number    Class = iota // one numeric type
	AnyInt                 // every integer width that holds the value
	AnyNumber              // every integer width, float and double
	String                 // text, UTF-8 or UTF-16
	Bytes                  // bytes, with wildcards
	Group                  // several numbers close together
)

// MaxLen bounds the length of a string or byte pattern, and MaxWindow a
// group's window: a match reaches at most that far past its page, so a
// scan needs to look no further ahead.
const (
	MaxLen    = 4096
	MaxWindow = 4096
	maxParts  = 8
)

// Spec is what a session scans for: the class, and what the class needs.
type Spec struct {
	Class     Class
	Num       Type   // Number: the type
	Big       bool   // big-endian numbers, UTF-16BE text
	UTF16     bool   // String: UTF-16 rather than UTF-8
	Unaligned bool   // every byte offset, not only multiples of each value's size
	Len       int    // String, Bytes: bytes in a match; 0 until a value gives it
	Parts     []Type // Group: each value's type, the first at the match's address
	Window    int    // Group: the bytes, from the first value on, that all lie in
}

// anyNames are the classes -t takes beside the numeric types.
var anyNames = map[string]Class{"anyint": AnyInt, "anynumber": AnyNumber, "string": String, "bytes": Bytes}

// SpecNames lists what ParseSpec takes.
func SpecNames() []string {
	return append(TypeNames(), "anyint", "anynumber", "string", "bytes")
}

// ParseSpec returns the spec of a type name as -t takes it (a numeric
// type, anyint, anynumber, string or bytes), in the byte order endian.
func ParseSpec(name, endian string, utf16, unaligned bool) (Spec, error) {
	if endian != "little" && endian != "big" {
		return Spec{}, fmt.Errorf("%w: byte order %q: want little or big", ErrSyntax, endian)
	}
	s := Spec{Big: endian == "big", Unaligned: unaligned, UTF16: utf16}
	if c, ok := anyNames[name]; ok {
		s.Class = c
	} else {
		t, err := ParseType(name, endian)
		if err != nil {
			return Spec{}, fmt.Errorf("%w: type %q: want one of %s", ErrSyntax, name, strings.Join(SpecNames(), ", "))
		}
		s.Num = t
	}
	if utf16 && s.Class != String {
		return Spec{}, fmt.Errorf("%w: --utf16 is for -t string", ErrSyntax)
	}
	return s, nil
}

// String names the spec as the prompt shows it.
func (s Spec) String() string {
	var name string
	switch s.Class {
	case Number:
		name = s.Num.Name
	case String:
		name = "string"
		if s.UTF16 {
			name = "string (UTF-16)"
		}
	case Group:
		parts := make([]string, len(s.Parts))
		for i, t := range s.Parts {
			parts[i] = t.Name
		}
		name = fmt.Sprintf("group %s within %d", strings.Join(parts, ","), s.Window)
	default:
		for n, c := range anyNames {
			if c == s.Class {
				name = n
			}
		}
	}
	if s.Big && s.Class != Bytes && (s.Class != String || s.UTF16) {
		name += " big-endian"
	}
	if s.Unaligned && s.Class != Bytes && (s.Class != String || s.UTF16) {
		name += " unaligned"
	}
	return name
}

// Same reports whether s and o scan the same way: a session's matches are
// narrowed only by the spec that found them (a string's length may change).
func (s Spec) Same(o Spec) bool {
	if s.Class != o.Class || s.Big != o.Big || s.UTF16 != o.UTF16 || s.Unaligned != o.Unaligned || s.Num != o.Num ||
		s.Window != o.Window || len(s.Parts) != len(o.Parts) {
		return false
	}
	for i := range s.Parts {
		if s.Parts[i] != o.Parts[i] {
			return false
		}
	}
	return true
}

// Text reports whether the spec's values are typed as text (the rest of
// the line) rather than as a number.
func (s Spec) Text() bool { return s.Class == String || s.Class == Bytes }

// step is the distance between the positions a scan tries.
func (s Spec) step() int {
	switch {
	case s.Unaligned:
		return 1
	case s.Class == Number:
		return s.Num.Size
	case s.Class == String && s.UTF16:
		return 2
	case s.Class == Group:
		return s.Parts[0].Size
	}
	return 1
}

// lanes are the readings of a match's bytes that a numeric spec tries.
func (s Spec) lanes() []Type {
	var out []Type
	for _, t := range types {
		t.Big = s.Big
		switch {
		case s.Class == Number && t.Name == s.Num.Name,
			s.Class == AnyInt && t.Kind != Float,
			s.Class == AnyNumber:
			out = append(out, t)
		}
	}
	return out
}

// numeric reports whether matches carry flags: which lanes passed.
func (s Spec) numeric() bool { return s.Class <= AnyNumber }

// allowed is the flags a match at page offset off may have: every lane
// whose values are aligned there. It runs for every match, so it is
// written out rather than derived from lanes.
func (s Spec) allowed(off int) uint16 {
	switch s.Class {
	case Number:
		return s.Num.Flag
	case AnyInt, AnyNumber:
	default:
		return 0
	}
	f := FlagU8 | FlagS8
	if s.Unaligned || off%2 == 0 {
		f |= FlagU16 | FlagS16
	}
	if s.Unaligned || off%4 == 0 {
		f |= FlagU32 | FlagS32
	}
	if s.Unaligned || off%8 == 0 {
		f |= FlagU64 | FlagS64
	}
	if s.Class == AnyNumber && f&FlagU32 != 0 {
		f |= FlagF32
	}
	if s.Class == AnyNumber && f&FlagU64 != 0 {
		f |= FlagF64
	}
	return f
}

// extent is how many bytes a match with flags f covers: its widest lane, a
// pattern's length, or a group's window.
func (s Spec) extent(f uint16) int {
	switch s.Class {
	case Number:
		return s.Num.Size
	case AnyInt, AnyNumber:
		switch {
		case f&(FlagU64|FlagS64|FlagF64) != 0:
			return 8
		case f&(FlagU32|FlagS32|FlagF32) != 0:
			return 4
		case f&(FlagU16|FlagS16) != 0:
			return 2
		}
		return 1
	case Group:
		return s.Window
	}
	return s.Len
}

// maxExtent is the most bytes any match covers.
func (s Spec) maxExtent() int {
	switch s.Class {
	case AnyInt, AnyNumber:
		return 8
	}
	return s.extent(0)
}

// packedLen is how many bytes of value a match with flags f keeps: a
// group keeps its values' bytes, one after the other, not its window.
func (s Spec) packedLen(f uint16) int {
	if s.Class != Group {
		return s.extent(f)
	}
	n := 0
	for _, t := range s.Parts {
		n += t.Size
	}
	return n
}

// straddles reports whether a match may reach into the page after its own:
// aligned numbers never do.
func (s Spec) straddles() bool {
	return s.maxExtent() > s.step() && (s.Unaligned || s.Class == String || s.Class == Bytes || s.Class == Group)
}

// valid reports whether the spec is one ParseSpec or a group scan makes:
// a file that left it out decodes to none.
func (s Spec) valid() bool {
	switch s.Class {
	case Number:
		return s.Num.Size > 0
	case Group:
		return len(s.Parts) >= 2
	case AnyInt, AnyNumber, String, Bytes:
		return true
	}
	return false
}

// specJSON is a spec as session and set files keep it.
type specJSON struct {
	Type      string   `json:"type"`
	Endian    string   `json:"endian"`
	UTF16     bool     `json:"utf16,omitempty"`
	Unaligned bool     `json:"unaligned,omitempty"`
	Len       int      `json:"len,omitempty"`
	Parts     []string `json:"parts,omitempty"`
	Window    int      `json:"window,omitempty"`
}

func (s Spec) MarshalJSON() ([]byte, error) {
	j := specJSON{Type: s.Num.Name, Endian: "little", UTF16: s.UTF16, Unaligned: s.Unaligned, Len: s.Len, Window: s.Window}
	if s.Big {
		j.Endian = "big"
	}
	switch s.Class {
	case Number:
	case Group:
		j.Type = "group"
		for _, t := range s.Parts {
			j.Parts = append(j.Parts, t.Name)
		}
	default:
		for n, c := range anyNames {
			if c == s.Class {
				j.Type = n
			}
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a spec from a file and checks it: a damaged file
// makes an error, never a spec the scanner cannot work with.
func (s *Spec) UnmarshalJSON(b []byte) error {
	var j specJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var out Spec
	var err error
	if j.Type == "group" {
		out, err = ParseSpec("int32", j.Endian, false, j.Unaligned)
		if err != nil {
			return err
		}
		out.Class, out.Window, out.Num = Group, j.Window, Type{}
		if len(j.Parts) < 2 || len(j.Parts) > maxParts || j.Window < 1 || j.Window > MaxWindow {
			return fmt.Errorf("group of %d values within %d", len(j.Parts), j.Window)
		}
		for _, p := range j.Parts {
			t, err := ParseType(p, j.Endian)
			if err != nil {
				return err
			}
			out.Parts = append(out.Parts, t)
		}
		if out.packedLen(0) > j.Window {
			return fmt.Errorf("group values larger than the window")
		}
	} else if out, err = ParseSpec(j.Type, j.Endian, j.UTF16, j.Unaligned); err != nil {
		return err
	}
	if out.Text() {
		if j.Len < 0 || j.Len > MaxLen { // 0: no value given yet (a reset)
			return fmt.Errorf("length %d", j.Len)
		}
		out.Len = j.Len
	}
	*s = out
	return nil
}

package scan

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// pattern is the bytes a string or byte scan looks for: each byte with
// the bits of it that must match (0xff: all; 0xf0 or 0x0f: a nibble, for
// "9?" or "?9"; 0: any, for "??").
type pattern struct {
	b, mask []byte
	// anchor is the longest run of fully fixed bytes, found with
	// bytes.Index before the rest is compared; anchorAt is where it
	// starts in the pattern. A pattern without one is tried everywhere.
	anchor   []byte
	anchorAt int
}

func newPattern(b, mask []byte) pattern {
	p := pattern{b: b, mask: mask}
	for i := 0; i < len(b); {
		if mask[i] != 0xff {
			i++
			continue
		}
		j := i
		for j < len(b) && mask[j] == 0xff {
			j++
		}
		if j-i > len(p.anchor) {
			p.anchor, p.anchorAt = b[i:j], i
		}
		i = j
	}
	return p
}

// exact reports whether the pattern has no wildcards: a value set can
// write.
func (p *pattern) exact() bool { return len(p.anchor) == len(p.b) }

// match reports whether b starts with the pattern.
func (p *pattern) match(b []byte) bool {
	if len(b) < len(p.b) {
		return false
	}
	if p.exact() {
		return bytes.Equal(b[:len(p.b)], p.b)
	}
	for i, m := range p.mask {
		if b[i]&m != p.b[i] {
			return false
		}
	}
	return true
}

// parseBytes parses a byte pattern: pairs of hex digits, "??" for any
// byte, "9?" or "?9" for a byte with one nibble known; spaces between
// bytes are optional ("48 8b ?? 9?", "488b??9?").
func parseBytes(s string) (pattern, error) {
	bad := func(why string) (pattern, error) {
		return pattern{}, fmt.Errorf("%w: bytes %q: %s", ErrSyntax, s, why)
	}
	digits := strings.Join(strings.Fields(s), "")
	switch {
	case digits == "":
		return bad("no bytes")
	case len(digits)%2 != 0:
		return bad("an odd number of hex digits: want pairs such as 48 8b ?? 9?")
	case len(digits)/2 > MaxLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxLen))
	}
	b := make([]byte, len(digits)/2)
	mask := make([]byte, len(b))
	for i := range b {
		for k, c := range []byte(digits[2*i : 2*i+2]) {
			shift := 4 * (1 - k)
			switch {
			case c == '?':
			case '0' <= c && c <= '9':
				b[i] |= (c - '0') << shift
				mask[i] |= 0xf << shift
			case 'a' <= c|0x20 && c|0x20 <= 'f':
				b[i] |= (c | 0x20 - 'a' + 10) << shift
				mask[i] |= 0xf << shift
			default:
				return bad(fmt.Sprintf("%q is no hex digit or ?", c))
			}
		}
	}
	return newPattern(b, mask), nil
}

// encodeText is s as it lies in memory: UTF-8 as typed, or UTF-16 in the
// given byte order.
func encodeText(s string, utf16Text, big bool) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: an empty string", ErrSyntax)
	}
	if !utf16Text {
		if len(s) > MaxLen {
			return nil, fmt.Errorf("%w: a string longer than %d bytes", ErrSyntax, MaxLen)
		}
		return []byte(s), nil
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w: %q is no valid UTF-8, so it has no UTF-16 form", ErrSyntax, s)
	}
	units := utf16.Encode([]rune(s))
	if 2*len(units) > MaxLen {
		return nil, fmt.Errorf("%w: a string longer than %d bytes", ErrSyntax, MaxLen)
	}
	out := make([]byte, 0, 2*len(units))
	for _, u := range units {
		if big {
			out = binary.BigEndian.AppendUint16(out, u)
		} else {
			out = binary.LittleEndian.AppendUint16(out, u)
		}
	}
	return out, nil
}

// formatText shows the bytes of a string match as text: UTF-16 decoded,
// bytes that are no text escaped.
func formatText(b []byte, utf16Text, big bool) string {
	if utf16Text {
		units := make([]uint16, len(b)/2)
		for i := range units {
			if big {
				units[i] = binary.BigEndian.Uint16(b[2*i:])
			} else {
				units[i] = binary.LittleEndian.Uint16(b[2*i:])
			}
		}
		b = []byte(string(utf16.Decode(units)))
	}
	return strconv.Quote(string(b))
}

// formatBytes shows bytes as hex pairs.
func formatBytes(b []byte) string {
	var s strings.Builder
	for i, c := range b {
		if i > 0 {
			s.WriteByte(' ')
		}
		fmt.Fprintf(&s, "%02x", c)
	}
	return s.String()
}

package addrexpr

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"10", "10"},
		{"0x10+0x20-8", "0x10+0x20-8"},
		{"[[game+4010] + 8] + c", "[[game+4010]+8]+c"},
		{"-1+2", "-1+2"},
		{"[heap]+2c0", "[heap]+2c0"},
		{"[stack:0]-1f8", "[stack:0]-1f8"},
		{"[[stack:12]-40]+8", "[[stack:12]-40]+8"},
		{"[anon:glibc: malloc arena]+10", "[anon:glibc: malloc arena]+10"},
		{"[[heap]+8]", "[[heap]+8]"},
		{"libstdc+++10", "libstdc+++10"},
		{"[libc++abi.so.1+8]", "[libc++abi.so.1+8]"},
		{"[heap+0]", "[heap+0]"}, // a file named heap, dereferenced
	} {
		x, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got := x.String(); got != c.out {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, got, c.out)
		}
	}
	kinds := map[string]termKind{"[heap]": regionTerm, "[stack]": regionTerm, "[vdso]": regionTerm, "[anon:x y]": regionTerm,
		"[stack:3]": stackTerm, "[heap+0]": derefTerm, "[10]": derefTerm, "heap": wordTerm, "libstdc++.so.6": wordTerm}
	for in, want := range kinds {
		x, err := Parse(in)
		if err != nil || len(x.terms) != 1 || x.terms[0].kind != want {
			t.Errorf("Parse(%q) = %+v, %v; want one term of kind %d", in, x, err, want)
		}
	}
	for _, bad := range []string{"", "[", "[10", "10]", "+", "[]", "a b", "1:2", "[stack:]", "[stack:x]", "[stack:-1]", "[stack:+1]", "+5",
		strings.Repeat("[", 100) + "1" + strings.Repeat("]", 100)} {
		_, err := Parse(bad)
		var se *SyntaxError
		if !errors.As(err, &se) || !errors.Is(err, ErrBadAddress) {
			t.Errorf("Parse(%q): %v, want a SyntaxError", bad, err)
		}
	}
}

func TestReads(t *testing.T) {
	for in, want := range map[string]bool{"10": false, "[heap]+8": false, "[stack:1]-8": false, "[10]": true, "game+[10]": true} {
		if x, _ := Parse(in); x.Reads() != want {
			t.Errorf("%q reads memory: %v, want %v", in, x.Reads(), want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"10", "[[game+0x4010]+0x8]+0xc", "libc.so.6-10", "[ [1] - 2 ]", "-5", "[heap]+2c0",
		"[stack:1]-1f8", "[anon:a b]+1", "libstdc+++10", "[[stack:0]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(x.String())
		if err != nil || again.String() != x.String() {
			t.Fatalf("%q prints as %q, which parses as %q (%v)", s, x.String(), again.String(), err)
		}
		(&Resolver{}).Eval(x) // no regions, no memory: never panics
	})
}

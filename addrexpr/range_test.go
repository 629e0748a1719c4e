package addrexpr

import (
	"errors"
	"testing"

	"github.com/procmem/procmem/procfs"
)

func TestParseRange(t *testing.T) {
	regions := []procfs.Region{
		{Start: 0x10000, End: 0x20000, Path: "[heap]"},
		{Start: 0x7ff00000, End: 0x7ff21000, Path: "[stack]"},
	}
	tests := []struct {
		in         string
		start, end uint64
		ok         bool
	}{
		{"1000", 0x1000, 0x1001, true},
		{"0x1000:2000", 0x1000, 0x2000, true},
		{"1000:+10", 0x1000, 0x1010, true},
		{"1000:-10", 0xff0, 0x1000, true},
		{"[heap]+10:+8", 0x10010, 0x10018, true},
		{"[stack:0]-10:[stack:0]", 0x7ff20ff0, 0x7ff21000, true},
		{"[heap]:[heap]+100", 0x10000, 0x10100, true},
		{"ffffffffffffffff", 0, 0, false},
		{"ffffffffffffff00:+100", 0, 0, false},
		{"10:-20", 0, 0, false},
		{"2000:1000", 0, 0, false},
		{"1000:+0", 0, 0, false},
		{"", 0, 0, false},
		{":", 0, 0, false},
		{"1000:", 0, 0, false},
		{"+1000", 0, 0, false},
		{"1000:++1", 0, 0, false},
		{"[vdso]:+1", 0, 0, false}, // not mapped
	}
	r := &Resolver{Regions: regions}
	for _, tt := range tests {
		rr, err := ParseRange(tt.in)
		var start, end uint64
		if err == nil {
			start, end, err = rr.Resolve(r)
		}
		if (err == nil) != tt.ok || (tt.ok && (start != tt.start || end != tt.end)) {
			t.Errorf("range %q = %x-%x, %v; want %x-%x ok=%v", tt.in, start, end, err, tt.start, tt.end, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadRange) {
			t.Errorf("range %q: %v is no ErrBadRange", tt.in, err)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"1000", "1000:2000", "1000:+10", "1000:-10", "0x7fff:+0x10", "[stack:1]-8:+8", "[anon:a:b]:+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rr, err := ParseRange(s)
		if err != nil {
			return
		}
		if start, end, err := rr.Resolve(&Resolver{}); err == nil && start >= end {
			t.Fatalf("range %q = empty range %x-%x", s, start, end)
		}
	})
}

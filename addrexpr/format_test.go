package addrexpr

import (
	"testing"

	"github.com/procmem/procmem/procfs"
)

// layout is an address space with every kind of region Format names.
func layout() []procfs.Region {
	rx := procfs.Perms{Read: true, Exec: true}
	rw := procfs.Perms{Read: true, Write: true}
	return []procfs.Region{
		{Start: 0x1000, End: 0x2000, Perms: rx, Path: "/usr/bin/dd", Inode: 1},             // a name that is hex
		{Start: 0x400000, End: 0x401000, Perms: rx, Path: "/opt/game/game", Inode: 2},      // load base 0x400000
		{Start: 0x402000, End: 0x404000, Perms: rw, Path: "/opt/game/game", Inode: 2},      // its data
		{Start: 0x404000, End: 0x405000, Perms: rw},                                        // anonymous, after it
		{Start: 0x500000, End: 0x600000, Perms: rw, Path: "[heap]"},                        //
		{Start: 0x600000, End: 0x601000, Perms: rw, Path: "/lib/a/libx.so", Inode: 3},      // two files of one
		{Start: 0x602000, End: 0x603000, Perms: rw, Path: "/lib/b/libx.so", Inode: 4},      // base name
		{Start: 0x610000, End: 0x611000, Perms: rw, Path: "/lib/libstdc++.so.6", Inode: 5}, //
		{Start: 0x620000, End: 0x621000, Perms: rw, Path: "/tmp/game (deleted)", Inode: 6}, // no word names it
		{Start: 0x630000, End: 0x631000, Perms: rw, Path: "/10", Inode: 7},                 // named like an offset
		{Start: 0x700000, End: 0x710000, Perms: rw, Path: "[anon:glibc: malloc arena]"},    //
		{Start: 0x720000, End: 0x730000, Perms: rw, Path: "[anon:glibc: malloc arena]"},    // a second one
		{Start: 0x7ff00000, End: 0x7ff21000, Perms: rw, Path: "[stack]"},                   //
		{Start: 0x7ff30000, End: 0x7ff32000, Perms: rx, Path: "[vdso]"},                    //
	}
}

func TestFormat(t *testing.T) {
	n := NewNamer(layout())
	for addr, want := range map[uint64]string{
		0x400010:   "game+0x10", // a file is named 10
		0x402230:   "game+2230",
		0x404008:   "404008",
		0x5002c0:   "[heap]+2c0",
		0x600008:   "/lib/a/libx.so+8",
		0x602008:   "/lib/b/libx.so+8",
		0x610010:   "libstdc++.so.6+0x10",
		0x620010:   "620010",
		0x630001:   "10+1",
		0x1010:     "dd+0x10",
		0x720010:   "[anon:glibc: malloc arena]+20010",
		0x7ff20e08: "[stack:0]-1f8",
		0x7ff30004: "[vdso]+4",
		0x900000:   "900000",
	} {
		if got := n.Format(addr); got != want {
			t.Errorf("Format(%#x) = %q, want %q", addr, got, want)
		}
	}
}

// TestFormatPastes: every address Format writes means the same byte when
// parsed back.
func TestFormatPastes(t *testing.T) {
	regions := layout()
	n := NewNamer(regions)
	r := &Resolver{Regions: regions}
	for _, reg := range regions {
		for _, addr := range []uint64{reg.Start, reg.Start + 8, reg.End - 1} {
			s := n.Format(addr)
			x, err := Parse(s)
			if err != nil {
				t.Errorf("Format(%#x) = %q, which does not parse: %v", addr, s, err)
				continue
			}
			if got, err := r.Eval(x); err != nil || got != addr {
				t.Errorf("Format(%#x) = %q, which resolves to %#x, %v", addr, s, got, err)
			}
		}
	}
}

func FuzzFormat(f *testing.F) {
	f.Add(uint64(0x402230))
	f.Add(uint64(0x7ff20e08))
	f.Fuzz(func(t *testing.T, addr uint64) {
		regions := layout()
		s := NewNamer(regions).Format(addr)
		x, err := Parse(s)
		if err != nil {
			t.Fatalf("Format(%#x) = %q: %v", addr, s, err)
		}
		if got, err := (&Resolver{Regions: regions}).Eval(x); err != nil || got != addr {
			t.Fatalf("Format(%#x) = %q = %#x, %v", addr, s, got, err)
		}
	})
}

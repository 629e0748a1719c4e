package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

func mustType(t testing.TB, name string) Type {
	t.Helper()
	ty, err := ParseType(name, "little")
	if err != nil {
		t.Fatal(err)
	}
	return ty
}

func mustCond(t testing.TB, ty Type, line string) Cond {
	t.Helper()
	c, err := ParseCommand(line, ty)
	if err != nil || c.Name != "scan" {
		t.Fatalf("ParseCommand(%q) = %+v, %v", line, c, err)
	}
	return c.Cond
}

func TestParseValue(t *testing.T) {
	for _, tc := range []struct {
		typ, in string
		ok      bool
	}{
		{"int8", "-128", true}, {"int8", "128", false}, {"uint8", "255", true}, {"uint8", "-1", false},
		{"int32", "0x7fffffff", true}, {"int32", "0x80000000", false}, {"uint64", "18446744073709551615", true},
		{"float", "3.14", true}, {"float", "1e39", false}, {"double", "1e308", true}, {"double", "nan", false},
		{"double", "inf", false}, {"float", "0x1p3", false}, {"int16", "ten", false}, {"int16", "", false},
	} {
		_, err := mustType(t, tc.typ).ParseValue(tc.in)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrSyntax) {
			t.Errorf("%s %q: %v, want ok=%v", tc.typ, tc.in, err, tc.ok)
		}
	}
}

func encode(ty Type, s string) []byte {
	v, err := ty.ParseValue(s)
	if err != nil {
		panic(err)
	}
	return ty.Encode(v)
}

// TestCond: every test, on values of several types.
func TestCond(t *testing.T) {
	f32 := func(x float32) []byte { return mustType(t, "float").Encode(Value{n: num{f: float64(x)}}) }
	i32, u8, flt, dbl := mustType(t, "int32"), mustType(t, "uint8"), mustType(t, "float"), mustType(t, "double")
	big, _ := ParseType("int16", "big")
	for _, tc := range []struct {
		ty       Type
		cmd      string
		cur, old []byte
		want     bool
	}{
		{i32, "100", encode(i32, "100"), nil, true},
		{i32, "= 100", encode(i32, "99"), nil, false},
		{i32, "=-5", encode(i32, "-5"), nil, true},
		{i32, "!= 100", encode(i32, "99"), nil, true},
		{i32, "> -1", encode(i32, "0"), nil, true},
		{i32, "< -1", encode(i32, "0"), nil, false},
		{i32, "-10..10", encode(i32, "-10"), nil, true},
		{i32, "-10..10", encode(i32, "11"), nil, false},
		{i32, "changed", encode(i32, "1"), encode(i32, "2"), true},
		{i32, "unchanged", encode(i32, "1"), encode(i32, "2"), false},
		{i32, "increased", encode(i32, "-1"), encode(i32, "-2"), true},
		{i32, "decreased", encode(i32, "-1"), encode(i32, "-2"), false},
		{i32, "+ 10", encode(i32, "110"), encode(i32, "100"), true},
		{i32, "+10", encode(i32, "111"), encode(i32, "100"), false},
		{i32, "- 10", encode(i32, "90"), encode(i32, "100"), true},
		{u8, "+ 1", encode(u8, "0"), encode(u8, "255"), true}, // wraps as the process's arithmetic does
		{u8, "> 200", encode(u8, "255"), nil, true},           // unsigned, not -1
		{flt, "= 3.14", f32(3.1400001), nil, true},
		{flt, "3.14", f32(3.146), nil, false},
		{flt, "= 100", f32(99.6), nil, true},
		{flt, "= 100", f32(99.4), nil, false},
		{flt, "= 1.5e-3", f32(0.00151), nil, true},
		{flt, "+ 0.5", f32(2.0), f32(1.5), true},
		{dbl, "< 0", encode(dbl, "-0.001"), nil, true},
		{dbl, "increased", encode(dbl, "2.5"), encode(dbl, "2.25"), true},
		{big, "= 258", []byte{1, 2}, nil, true},
	} {
		c := mustCond(t, tc.ty, tc.cmd)
		old := tc.old
		if old == nil {
			old = make([]byte, tc.ty.Size)
		}
		if got := c.test(tc.ty, tc.cur, old); got != tc.want {
			t.Errorf("%s %q on %x (was %x) = %v, want %v", tc.ty.Name, tc.cmd, tc.cur, tc.old, got, tc.want)
		}
	}
}

func TestParseCommand(t *testing.T) {
	i32 := mustType(t, "int32")
	for _, line := range []string{"", "= ", "= 1 2", "bogus", "bogus 1", "list 0", "list x", "set", "set 1 2 3",
		"freeze", "count 1", "5..1", "1..x", "changed 1", "+", "= 1e3", "undo now"} {
		if _, err := ParseCommand(line, i32); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseCommand(%q): %v, want a syntax error", line, err)
		}
	}
	for line, want := range map[string]Command{
		"list":          {Name: "list"},
		"list 5":        {Name: "list", N: 5},
		"q":             {Name: "quit"},
		"set 0x10 7":    {Name: "set", Addr: "0x10", Value: Value{Text: "7", n: num{i: 7}}},
		"  snapshot  ":  {Name: "scan", Cond: Cond{Op: OpSnapshot}},
		"freeze 100":    {Name: "freeze", Value: Value{Text: "100", n: num{i: 100}}},
		"unfreeze":      {Name: "unfreeze"},
		"reset":         {Name: "reset"},
		">=5":           {}, // not an operator: an error, checked below
		"decreased":     {Name: "scan", Cond: Cond{Op: OpDecreased}},
		"-3":            {Name: "scan", Cond: Cond{Op: OpEq, A: Value{Text: "-3", n: num{i: -3}}}},
		"- 3":           {Name: "scan", Cond: Cond{Op: OpDown, A: Value{Text: "3", n: num{i: 3}}}},
		"[[a+8]+4] 100": {},
	} {
		got, err := ParseCommand(line, i32)
		if want.Name == "" {
			if err == nil {
				t.Errorf("ParseCommand(%q) = %+v, want an error", line, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %+v", line, got, err, want)
		}
	}
	if c := mustCond(t, i32, "-1..5"); c.String() != "-1..5" {
		t.Errorf("String = %q", c.String())
	}
}

// memoryOf returns a page-aligned buffer of n pages and its address.
func memoryOf(t testing.TB, n int) ([]byte, uint64) {
	b, err := syscall.Mmap(-1, 0, n*PageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	return b, uint64(uintptr(unsafe.Pointer(&b[0])))
}

func scannerOf(t testing.TB, write bool) (*Scanner, *procfs.Process) {
	p, err := procfs.Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	rd, err := memory.Open(p, memory.Self, write)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return &Scanner{Mem: rd, Workers: 3}, p
}

// regionsOf returns the mapping of buf, as maps shows it, cut to buf.
func regionsOf(t testing.TB, p *procfs.Process, addr uint64, n int) []procfs.Region {
	regions, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		if r.Contains(addr) {
			r.Start, r.End = addr, addr+uint64(n)
			return []procfs.Region{r}
		}
	}
	t.Fatalf("0x%x not mapped", addr)
	return nil
}

func addrs(s *Set) []uint64 {
	var out []uint64
	s.Each(func(m Match) bool { out = append(out, m.Addr); return true })
	return out
}

// TestFirstAndNarrow: a first scan finds exactly the planted values, in
// data pages only (a hole holds zeros and is not scanned), and narrowing
// keeps those that changed as asked; a snapshot remembers every value and
// narrows like a value scan.
func TestFirstAndNarrow(t *testing.T) {
	sc, p := scannerOf(t, false)
	const pages = 40 // several chunks for several workers? one region: chunks of 8 MiB; pages enough for encodings
	buf, base := memoryOf(t, pages)
	i32 := mustType(t, "int32")
	put := func(off int, v string) { copy(buf[off:], encode(i32, v)) }
	// Page 0: a few matches (a list); page 1: every position (all); page
	// 2: half (a bitmap); page 3 stays a hole; page 5: an unaligned one.
	var want []uint64
	for _, off := range []int{0, 8, 4092} {
		put(off, "777")
		want = append(want, base+uint64(off))
	}
	for off := PageSize; off < 2*PageSize; off += 4 {
		put(off, "777")
		want = append(want, base+uint64(off))
	}
	for off := 2 * PageSize; off < 3*PageSize; off += 8 {
		put(off, "777")
		want = append(want, base+uint64(off))
	}
	put(5*PageSize+2, "777")
	regions := regionsOf(t, p, base, pages*PageSize)
	ctx := context.Background()
	res, err := sc.First(ctx, regions, i32, 4, mustCond(t, i32, "777"))
	if err != nil {
		t.Fatal(err)
	}
	if got := addrs(res.Set); !equalU64(got, want) {
		t.Fatalf("first scan: %d matches, want %d", len(got), len(want))
	}
	encs := map[uint8]bool{}
	for _, pg := range res.Set.pages {
		encs[pg.enc&posMask] = true
	}
	if len(encs) != 3 {
		t.Errorf("encodings used: %v, want all three", encs)
	}
	if res.Set.Bytes() > 3*uint64(PageSize) {
		t.Errorf("the set takes %d bytes", res.Set.Bytes())
	}

	// Unaligned finds the one at +2 too.
	un, err := sc.First(ctx, regions, i32, 1, mustCond(t, i32, "777"))
	if err != nil || un.Set.Count() != uint64(len(want)+1) {
		t.Fatalf("unaligned: %d matches, %v", un.Set.Count(), err)
	}

	// Narrow: change all but two, keep those.
	for _, a := range want[2:] {
		put(int(a-base), "776")
	}
	n1, err := sc.Narrow(ctx, regions, res.Set, mustCond(t, i32, "unchanged"))
	if err != nil || !equalU64(addrs(n1), want[:2]) {
		t.Fatalf("unchanged: %x, %v", addrs(n1), err)
	}
	put(0, "780")
	n2, err := sc.Narrow(ctx, regions, n1, mustCond(t, i32, "+ 3"))
	if err != nil || !equalU64(addrs(n2), want[:1]) {
		t.Fatalf("+ 3: %x, %v", addrs(n2), err)
	}
	if m := n2.First(5); len(m) != 1 || i32.Format(m[0].Old) != "780" {
		t.Errorf("the match remembers %v", m)
	}

	// Snapshot: every aligned position of the data pages (the hole and
	// the pages never written are not scanned).
	snap, err := sc.First(ctx, regions, i32, 4, Cond{Op: OpSnapshot})
	if err != nil {
		t.Fatal(err)
	}
	dataPages := uint64(4) // pages 0, 1, 2 and 5
	if snap.Set.Count() != dataPages*uint64(PageSize/4) {
		t.Errorf("snapshot: %d values, want %d", snap.Set.Count(), dataPages*uint64(PageSize/4))
	}
	put(PageSize+40, "-5")
	dec, err := sc.Narrow(ctx, regions, snap.Set, mustCond(t, i32, "decreased"))
	if err != nil || !equalU64(addrs(dec), []uint64{base + uint64(PageSize) + 40}) {
		t.Errorf("decreased after a snapshot: %x, %v", addrs(dec), err)
	}

	// A page that is unmapped since is dropped, with no error.
	if _, _, e := syscall.Syscall(syscall.SYS_MUNMAP, uintptr(base)+uintptr(PageSize), uintptr(PageSize), 0); e != 0 {
		t.Fatal(e)
	}
	after, err := sc.Narrow(ctx, regions, res.Set, Cond{Op: OpUpdate})
	if err != nil || after.Count() != res.Set.Count()-uint64(PageSize/4) {
		t.Errorf("after an unmap: %d matches, %v", after.Count(), err)
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSession: a set saved and loaded is the same set; every damage to
// the file is refused.
func TestSession(t *testing.T) {
	sc, p := scannerOf(t, false)
	buf, base := memoryOf(t, 8)
	dbl := mustType(t, "double")
	for off := 0; off < 3*PageSize; off += 24 {
		copy(buf[off:], encode(dbl, "2.5"))
	}
	res, err := sc.First(context.Background(), regionsOf(t, p, base, 8*PageSize), dbl, 8, mustCond(t, dbl, "2.5"))
	if err != nil || res.Set.Count() == 0 {
		t.Fatal(res.Set.Count(), err)
	}
	path := filepath.Join(t.TempDir(), "s")
	if err := Save(path, Header{PID: 42, Scans: []string{"= 2.5"}}, res.Set); err != nil {
		t.Fatal(err)
	}
	h, s, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if h.PID != 42 || h.Type != "double" || h.Matches != res.Set.Count() || !sameSet(s, res.Set) {
		t.Fatalf("loaded %+v, %d matches", h, s.Count())
	}
	data, _ := os.ReadFile(path)
	header := bytes.IndexByte(data, '\n') + 1
	for i := header; i < len(data); i += 97 {
		bad := bytes.Clone(data)
		bad[i] ^= 0xff
		if _, s, err := Decode(bytes.NewReader(bad), int64(len(bad))); err == nil && !sameSet(s, res.Set) {
			// A flipped value byte is still a session, of other values;
			// any other flip must be refused.
			if i < header+int(h.Pages*pageRecord+h.PosBytes) {
				t.Errorf("a flip at %d went unnoticed", i)
			}
		}
	}
	if _, _, err := Decode(bytes.NewReader(data[:len(data)-1]), int64(len(data)-1)); !errors.Is(err, ErrSession) {
		t.Errorf("a cut file: %v", err)
	}
	if _, _, err := Decode(strings.NewReader("{}\n"), 3); !errors.Is(err, ErrSession) {
		t.Errorf("an empty header: %v", err)
	}
}

func sameSet(a, b *Set) bool {
	if a.Type != b.Type || a.Step != b.Step || a.Count() != b.Count() {
		return false
	}
	ma, mb := a.First(math.MaxInt), b.First(math.MaxInt)
	for i := range ma {
		if ma[i].Addr != mb[i].Addr || !bytes.Equal(ma[i].Old, mb[i].Old) {
			return false
		}
	}
	return true
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"= 5", "-5", "- 5", "+5", "1..2", "list 3", "set 0x10 3", "freeze 1", "snapshot", "3.14", "> -2.5e3"} {
		f.Add(s, "int32")
		f.Add(s, "float")
	}
	f.Fuzz(func(t *testing.T, line, typ string) {
		ty, err := ParseType(typ, "little")
		if err != nil {
			return
		}
		c, err := ParseCommand(line, ty)
		if err == nil && c.Name == "scan" {
			c.Cond.test(ty, make([]byte, 8), make([]byte, 8))
			_ = c.Cond.String()
		}
	})
}

func FuzzDecode(f *testing.F) {
	s := NewSet(mustType(f, "int16"), 2)
	b := builder{s: s}
	pg := make([]byte, PageSize)
	pg[10] = 7
	b.add(0x10000, []uint16{2, 10, 40}, pg, 0)
	b.add(0x20000, []uint16{0, 4}, pg, 0)
	path := filepath.Join(f.TempDir(), "s")
	if err := Save(path, Header{PID: 1}, s); err != nil {
		f.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, s, err := Decode(bytes.NewReader(data), int64(len(data)))
		if err == nil {
			s.Each(func(Match) bool { return true })
		}
	})
}

// TestSpan: the first scan's fast integer tests pass exactly the values
// Cond.test passes, for every integer type, test and edge value.
func TestSpan(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 4096)
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	for i := 0; i < 64; i++ { // edge values too: zeros, all ones, sign bits
		b[rnd.IntN(len(b))] = []byte{0, 0xff, 0x80, 0x7f}[i%4]
	}
	for _, name := range []string{"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"} {
		ty := mustType(t, name)
		bits := 8 * ty.Size
		edges := []string{"0", "1", "-1", fmt.Sprint(int64(1)<<(bits-1) - 1), fmt.Sprint(-(int64(1) << (bits - 1))), "100"}
		if ty.Kind == Unsigned {
			edges = []string{"0", "1", "100", new(big.Int).SetUint64(^uint64(0) >> (64 - bits)).String()}
		}
		var cmds []string
		for _, v := range edges {
			cmds = append(cmds, "!= "+v, "> "+v, "< "+v)
			for _, w := range edges {
				cmds = append(cmds, v+".."+w)
			}
		}
		for _, cmd := range cmds {
			c, err := ParseCommand(cmd, ty)
			if err != nil {
				continue // a range the wrong way round, a value out of range
			}
			for _, step := range []int{1, ty.Size} {
				f := newFinder(ty, step, c.Cond)
				if f.span == nil {
					t.Fatalf("%s %q: no span", name, cmd)
				}
				got := append([]uint16(nil), f.find(b[8:], 8)...)
				var want []uint16
				for off := (8 + step - 1) / step * step; off+ty.Size <= len(b); off += step {
					if c.Cond.test(ty, b[off:], nil) {
						want = append(want, uint16(off))
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s %q step %d: span finds %d, test %d", name, cmd, step, len(got), len(want))
				}
			}
		}
	}
}

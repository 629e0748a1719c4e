package scan

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
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

func mustSpec(t testing.TB, name string) Spec {
	t.Helper()
	s, err := ParseSpec(name, "little", false, false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func encode(ty Type, s string) []byte {
	v, err := ty.ParseValue(s)
	if err != nil {
		panic(err)
	}
	return ty.Encode(v)
}

func mustTest(t testing.TB, s Spec, line string, first bool) *test {
	t.Helper()
	c, err := ParseCommand(line)
	if err != nil || c.Name != "scan" {
		t.Fatalf("ParseCommand(%q) = %+v, %v", line, c, err)
	}
	tt, err := s.compile(c.Cond, first)
	if err != nil {
		t.Fatalf("compile(%q): %v", line, err)
	}
	return tt
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

// TestLanes: every test on values of several types, and on anyint's and
// anynumber's readings: each width passes on its own.
func TestLanes(t *testing.T) {
	f32 := func(x float32) []byte { return mustType(t, "float").Encode(Value{n: num{f: float64(x)}}) }
	i32, u8, flt, dbl := mustType(t, "int32"), mustType(t, "uint8"), mustType(t, "float"), mustType(t, "double")
	bigI16, _ := ParseSpec("int16", "big", false, false)
	one := func(ty Type) Spec { return Spec{Class: Number, Num: ty} }
	le := binary.LittleEndian
	for _, tc := range []struct {
		spec     Spec
		cmd      string
		cur, old []byte
		want     uint16
	}{
		{one(i32), "100", encode(i32, "100"), nil, FlagS32},
		{one(i32), "= 100", encode(i32, "99"), nil, 0},
		{one(i32), "=-5", encode(i32, "-5"), nil, FlagS32},
		{one(i32), "!= 100", encode(i32, "99"), nil, FlagS32},
		{one(i32), "> -1", encode(i32, "0"), nil, FlagS32},
		{one(i32), "< -1", encode(i32, "0"), nil, 0},
		{one(i32), "-10..10", encode(i32, "-10"), nil, FlagS32},
		{one(i32), "-10..10", encode(i32, "11"), nil, 0},
		{one(i32), "changed", encode(i32, "1"), encode(i32, "2"), FlagS32},
		{one(i32), "unchanged", encode(i32, "1"), encode(i32, "2"), 0},
		{one(i32), "increased", encode(i32, "-1"), encode(i32, "-2"), FlagS32},
		{one(i32), "decreased", encode(i32, "-1"), encode(i32, "-2"), 0},
		{one(i32), "+ 10", encode(i32, "110"), encode(i32, "100"), FlagS32},
		{one(i32), "+10", encode(i32, "111"), encode(i32, "100"), 0},
		{one(i32), "- 10", encode(i32, "90"), encode(i32, "100"), FlagS32},
		{one(u8), "+ 1", encode(u8, "0"), encode(u8, "255"), FlagU8}, // wraps as the process's arithmetic does
		{one(u8), "> 200", encode(u8, "255"), nil, FlagU8},           // unsigned, not -1
		{one(flt), "= 3.14", f32(3.1400001), nil, FlagF32},
		{one(flt), "3.14", f32(3.146), nil, 0},
		{one(flt), "= 100", f32(99.6), nil, FlagF32},
		{one(flt), "= 100", f32(99.4), nil, 0},
		{one(flt), "= 1.5e-3", f32(0.00151), nil, FlagF32},
		{one(flt), "+ 0.5", f32(2.0), f32(1.5), FlagF32},
		{one(dbl), "< 0", encode(dbl, "-0.001"), nil, FlagF64},
		{one(dbl), "increased", encode(dbl, "2.5"), encode(dbl, "2.25"), FlagF64},
		{bigI16, "= 258", []byte{1, 2}, nil, FlagS16},
		// anyint: 100 in 8 bytes is 100 at every width; 200 fits uint8
		// but not int8; -1 fits only the signed widths.
		{mustSpec(t, "anyint"), "100", le.AppendUint64(nil, 100), nil, 0xff},
		{mustSpec(t, "anyint"), "200", le.AppendUint64(nil, 200), nil, 0xff &^ FlagS8},
		{mustSpec(t, "anyint"), "-1", le.AppendUint64(nil, ^uint64(0)), nil, FlagS8 | FlagS16 | FlagS32 | FlagS64},
		{mustSpec(t, "anyint"), "100", le.AppendUint64(nil, 100|1<<40), nil, 0x3f},
		{mustSpec(t, "anyint"), "> 150", le.AppendUint64(nil, 200), nil, 0xff &^ FlagS8},
		{mustSpec(t, "anynumber"), "100", le.AppendUint64(nil, 100), nil, 0xff},
		{mustSpec(t, "anynumber"), "2.5", f32(2.5), nil, FlagF32},
		{mustSpec(t, "anynumber"), "2.5", encode(dbl, "2.5"), nil, FlagF64},
	} {
		tt := mustTest(t, tc.spec, tc.cmd, false)
		old := tc.old
		if old == nil {
			old = make([]byte, 8)
		}
		if got := tt.flags(tc.cur, old, 0xffff); got != tc.want {
			t.Errorf("%s %q on %x (was %x) = %#x, want %#x", tc.spec, tc.cmd, tc.cur, tc.old, got, tc.want)
		}
	}
}

func TestParseCommand(t *testing.T) {
	for _, line := range []string{"", "= ", "list 0", "list x", "set", "freeze", "count 1", "changed 1", "+", "undo now",
		`"unterminated`, "group 1", "group 1 2 within 0", "group 1 2 within x", "snapshot 1x", "changed since", "forget",
		"changed since 9", "1..", "..2", "+ 1 2"} {
		if _, err := ParseCommand(line); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseCommand(%q): %v, want a syntax error", line, err)
		}
	}
	for line, want := range map[string]string{
		"list":                           "list 0",
		"list 5":                         "list 5",
		"q":                              "quit",
		"set 0x10 7":                     `set [0x10 7] "0x10 7"`,
		"set --force 7":                  `set! [7] "7"`,
		"  snapshot  ":                   "scan snapshot",
		"snapshot before":                "snapshot before",
		"freeze 100":                     `freeze "100"`,
		"decreased":                      "scan decreased",
		"changed since before":           "scan changed since before",
		"+ 2 since b":                    "scan + 2 since b",
		"-3":                             "scan = -3",
		"- 3":                            "scan - 3",
		"1..5":                           "scan 1..5",
		"hello world":                    "scan = hello world",
		`"list"`:                         "scan = list",
		`= "a \"b\"\x00"`:                "scan = a \"b\"\x00",
		"48 8b ?? 9?":                    "scan = 48 8b ?? 9?",
		"group 100 50:int16 within 0x40": "scan group 100 50:int16 within 64",
		"group 90 * changed":             "scan group 90 * changed",
		"redo":                           "redo",
		"history":                        "history",
		"forget before":                  "forget before",
	} {
		c, err := ParseCommand(line)
		if err != nil {
			t.Errorf("ParseCommand(%q): %v", line, err)
			continue
		}
		var got string
		switch c.Name {
		case "list":
			got = fmt.Sprintf("list %d", c.N)
		case "set":
			got = fmt.Sprintf("set%s %v %q", map[bool]string{true: "!"}[c.Force], c.Words, c.Value)
		case "freeze":
			got = fmt.Sprintf("freeze %q", c.Value)
		case "scan":
			got = "scan " + c.Cond.String()
		case "snapshot", "forget":
			got = c.Name + " " + c.Snapshot
		default:
			got = c.Name
		}
		if got != want {
			t.Errorf("ParseCommand(%q) = %s, want %s", line, got, want)
		}
	}
	// Values are checked against what is scanned for.
	for _, tc := range []struct{ spec, line string }{
		{"int32", "= 1 2"}, {"int32", "bogus"}, {"int8", "300"}, {"uint8", "-1"}, {"int32", "5..1"}, {"int32", "= 1e3"},
		{"anyint", "3.5"}, {"anyint", "x"}, {"string", "> 5"}, {"bytes", "4"}, {"bytes", "zz"},
		{"int32", "group 1 2:nosuch"}, {"int32", "group 1:int64 2:int64 within 12"},
	} {
		c, err := ParseCommand(tc.line)
		if err == nil {
			_, err = mustSpec(t, tc.spec).compile(c.Cond, true)
		}
		if !errors.Is(err, ErrSyntax) {
			t.Errorf("%s %q: %v, want a syntax error", tc.spec, tc.line, err)
		}
	}
}

// memoryOf returns a page-aligned buffer of n pages and its address.
func memoryOf(t testing.TB, n int) ([]byte, uint64) {
	b, err := syscall.Mmap(-1, 0, n*PageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	syscall.Madvise(b, syscall.MADV_NOHUGEPAGE) // a page per touch, whatever THP says
	return b, uint64(uintptr(unsafe.Pointer(&b[0])))
}

// fixture is a session scanning a buffer of the test's own memory.
type fixture struct {
	t       testing.TB
	sc      *Scanner
	buf     []byte
	base    uint64
	regions []procfs.Region
	sess    *Session
	spec    Spec
}

func newFixture(t testing.TB, pages int, spec string) *fixture {
	t.Helper()
	p, err := procfs.Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	rd, err := memory.Open(p, memory.Self, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	f := &fixture{t: t, sc: &Scanner{Mem: rd, Workers: 3}, spec: mustSpec(t, spec)}
	f.buf, f.base = memoryOf(t, pages)
	all, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	r, ok := procfs.RegionAt(all, f.base)
	if !ok {
		t.Fatalf("0x%x not mapped", f.base)
	}
	r.Start, r.End = f.base, f.base+uint64(pages*PageSize)
	f.regions = []procfs.Region{r}
	if f.sess, err = Open(filepath.Join(t.TempDir(), "s"), Identity{PID: 1}, Options{Spec: f.spec, SpecGiven: true, Budget: -1}, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) put(off int, b []byte) { copy(f.buf[off:], b) }

// scan runs a command and returns the match count.
func (f *fixture) scan(line string) uint64 {
	f.t.Helper()
	c, err := ParseCommand(line)
	if err != nil {
		f.t.Fatal(err)
	}
	var out Outcome
	switch c.Name {
	case "scan":
		f.sess.def = f.spec
		out, err = f.sess.Scan(context.Background(), f.sc, f.regions, c.Cond, "")
	case "snapshot":
		if _, _, err = f.sess.TakeSnapshot(context.Background(), f.sc, f.regions, c.Snapshot); err != nil {
			f.t.Fatalf("%q: %v", line, err)
		}
		return 0
	default:
		f.t.Fatalf("%q is no scan", line)
	}
	if err != nil {
		f.t.Fatalf("%q: %v", line, err)
	}
	return out.Matches
}

// reset forgets the matches; the next scan is for what f.spec says.
func (f *fixture) reset() {
	f.t.Helper()
	f.sess.def = f.spec
	if _, err := f.sess.Reset(); err != nil {
		f.t.Fatal(err)
	}
}

// matches are the offsets in the buffer of the matches, with their flags.
func (f *fixture) matches() (offs []int, flags []uint16) {
	f.t.Helper()
	err := f.sess.Matches(func(m Match) bool {
		offs = append(offs, int(m.Addr-f.base))
		flags = append(flags, m.Flags)
		return true
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return offs, flags
}

// TestFirstAndNarrow: a first scan finds exactly the planted values, in
// data pages only (a hole holds zeros and is not scanned), and narrowing
// keeps those that changed as asked; a snapshot remembers every value and
// narrows like a value scan.
func TestFirstAndNarrow(t *testing.T) {
	const pages = 2100 // more than one chunk of 8 MiB
	f := newFixture(t, pages, "int32")
	i32 := mustType(t, "int32")
	put := func(off int, v string) { f.put(off, encode(i32, v)) }
	// Page 0: a few matches (a list); page 1: every position (all); page
	// 2: half (a bitmap); page 3 stays a hole; page 5: an unaligned one;
	// one past the first chunk.
	var want []int
	for _, off := range []int{0, 8, 4092, 2050 * PageSize} {
		put(off, "777")
		want = append(want, off)
	}
	for off := PageSize; off < 2*PageSize; off += 4 {
		put(off, "777")
		want = append(want, off)
	}
	for off := 2 * PageSize; off < 3*PageSize; off += 8 {
		put(off, "777")
		want = append(want, off)
	}
	slices.Sort(want)
	put(5*PageSize+2, "777")
	if n := f.scan("777"); n != uint64(len(want)) {
		t.Fatalf("first scan: %d matches, want %d", n, len(want))
	}
	if got, _ := f.matches(); !slices.Equal(got, want) {
		t.Fatalf("first scan found %v", got)
	}
	// Narrow: change all but two, keep those.
	for _, off := range want[2:] {
		put(off, "776")
	}
	if n := f.scan("unchanged"); n != 2 {
		t.Fatalf("unchanged: %d", n)
	}
	put(0, "780")
	if n := f.scan("+ 3"); n != 1 {
		t.Fatalf("+ 3: %d", n)
	}
	if m, _ := f.sess.First(5); len(m) != 1 || i32.Format(m[0].Old) != "780" {
		t.Errorf("the match remembers %v", m)
	}

	// Snapshot: every aligned position of the data pages (the hole and the
	// pages never written are not scanned).
	dataPages := uint64(5) // pages 0, 1, 2, 5 and 2050
	if n := f.scan("snapshot"); n != dataPages*uint64(PageSize/4) {
		t.Errorf("snapshot: %d values, want %d", n, dataPages*uint64(PageSize/4))
	}
	put(PageSize+40, "-5")
	if n := f.scan("decreased"); n != 1 {
		t.Errorf("decreased after a snapshot: %d", n)
	}
	// Undo goes back through every step, redo forth.
	for _, want := range []uint64{dataPages * uint64(PageSize/4), 1, 2, uint64(len(want))} {
		if err := f.sess.Undo(); err != nil || f.sess.Current().Matches != want {
			t.Fatalf("undo: %v, %d matches, want %d", err, f.sess.Current().Matches, want)
		}
	}
	if err := f.sess.Undo(); err != nil || f.sess.Current() != nil {
		t.Fatalf("undo to before the first scan: %v", err)
	}
	if err := f.sess.Undo(); err == nil {
		t.Fatal("undo before the first scan")
	}
	for range 5 {
		if err := f.sess.Redo(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.sess.Redo(); err == nil || f.sess.Current().Matches != 1 {
		t.Fatalf("redo past the last: %v", err)
	}

	// A page that is unmapped since is dropped, with no error.
	if _, _, e := syscall.Syscall(syscall.SYS_MUNMAP, uintptr(f.base)+uintptr(2*PageSize), uintptr(PageSize), 0); e != 0 {
		t.Fatal(e)
	}
	f.scan("snapshot")
	if n := f.scan("update"); n != (dataPages-1)*uint64(PageSize/4) {
		t.Errorf("after an unmap: %d matches", n)
	}
}

// TestAnyInt: every width that holds the value, aligned to its size, each
// match keeping its widths; narrowing compares each at its own; set
// writes the widest that holds the new value.
func TestAnyInt(t *testing.T) {
	f := newFixture(t, 4, "anyint")
	le := binary.LittleEndian
	le.PutUint64(f.buf[64:], 100)         // 100 at every width
	le.PutUint32(f.buf[132:], 100)        // int32 and narrower; int64 at 128 is 100<<32
	le.PutUint16(f.buf[202:], 100)        // int16 and int8, at an offset int32 does not take
	f.buf[301] = 100                      // int8 only
	le.PutUint64(f.buf[PageSize+8:], 200) // 200: no int8
	if n := f.scan("anyint"[:0] + "100"); n != 4 {
		t.Fatalf("100: %d matches", n)
	}
	offs, flags := f.matches()
	want := map[int]uint16{64: 0xff, 132: 0x3f, 202: 0x0f, 301: 0x03}
	for i, off := range offs {
		if want[off] != flags[i] {
			t.Errorf("match at %d: flags %#x, want %#x", off, flags[i], want[off])
		}
	}
	ms, _ := f.sess.First(10)
	if k := f.spec.Kind(ms[0]); k != "int8,int16,int32,int64" {
		t.Errorf("Kind = %q", k)
	}
	// The int64 at 64 becomes 100 + 1<<40: the narrower widths still read
	// 100, the int64 no longer does.
	le.PutUint64(f.buf[64:], 100|1<<40)
	f.buf[301] = 7
	if n := f.scan("100"); n != 3 {
		t.Fatalf("100 again: %d", n)
	}
	offs, flags = f.matches()
	if offs[0] != 64 || flags[0] != 0x3f {
		t.Errorf("after the int64 changed: %v %#x", offs, flags)
	}
	// set writes each match at its widest width: int32 at 64 and 132,
	// int16 at 202.
	writes, skipped, err := f.sess.Writes("1000", 10)
	if err != nil || skipped != 0 || len(writes) != 3 || len(writes[0].Bytes) != 4 || len(writes[2].Bytes) != 2 {
		t.Fatalf("writes %v, %d, %v", writes, skipped, err)
	}
	if _, skipped, _ := f.sess.Writes("100000", 10); skipped != 1 {
		t.Errorf("100000 fits no width of the int16 match: skipped %d", skipped)
	}
	// 200 as anyint: uint8 but no int8, found on the second page.
	f.scan("snapshot")
	f.reset()
	if n := f.scan("200"); n != 1 {
		t.Errorf("200: %d", n)
	}
	// Unaligned: every width at every byte offset, as scanmem's int.
	f.spec.Unaligned = true
	f.reset()
	le.PutUint32(f.buf[401:], 100)
	// At 132, 202 and 401 the zeros after the value make it 100 at
	// every width; at 64 the int64 is 100 + 1<<40.
	f.scan("100")
	if offs, flags := f.matches(); fmt.Sprint(offs, flags) != "[64 132 202 401] [63 255 255 255]" {
		t.Errorf("unaligned 100: %v %v", offs, flags)
	}
}

// TestText: strings (UTF-8 and UTF-16) and byte patterns with wildcards,
// found where they cross a page boundary too, narrowed by =, changed and
// unchanged.
func TestText(t *testing.T) {
	f := newFixture(t, 4, "string")
	f.put(100, []byte("hello, world"))
	f.put(PageSize-5, []byte("hello, world")) // across the first page's end
	f.put(2*PageSize+1, []byte("hello, there"))
	if n := f.scan("hello, world"); n != 2 {
		t.Fatalf("string: %d matches", n)
	}
	f.put(100, []byte("HELLO"))
	if n := f.scan("changed"); n != 1 {
		t.Fatalf("changed: %d", n)
	}
	if n := f.scan(`= "HELLO, world"`); n != 1 {
		t.Fatalf("= HELLO, world: %d", n)
	}
	f.sess.Undo()
	f.sess.Undo()
	if n := f.scan("unchanged"); n != 1 {
		t.Fatalf("unchanged: %d", n)
	}
	ms, _ := f.sess.First(1)
	if got := f.sess.Spec().Format(ms[0], ms[0].Old, true); got != `"hello, world"` {
		t.Errorf("Format = %s", got)
	}
	if _, _, err := f.sess.Writes("HELLO", 10); !errors.Is(err, ErrSyntax) {
		t.Errorf("set of another length: %v", err)
	}

	u := newFixture(t, 2, "string")
	u.spec.UTF16 = true
	u.put(200, []byte{'S', 0, 0xa9, 0x03, 'r', 0}) // "SΩr" in UTF-16LE
	u.put(301, []byte{'S', 0, 0xa9, 0x03, 'r', 0}) // odd: not aligned
	if n := u.scan("SΩr"); n != 1 {
		t.Errorf("UTF-16: %d matches", n)
	}

	b := newFixture(t, 2, "bytes")
	b.put(10, []byte{0x48, 0x8b, 0x05, 0x90, 0x11})
	b.put(PageSize-2, []byte{0x48, 0x8b, 0x77, 0x9f})
	b.put(500, []byte{0x48, 0x8b, 0x05, 0x80})
	if n := b.scan("48 8b ?? 9?"); n != 2 {
		offs, _ := b.matches()
		t.Fatalf("bytes: %d matches at %v", n, offs)
	}
	if n := b.scan("= 488b0590"); n != 1 {
		t.Errorf("= 488b0590: %d", n)
	}
}

// TestGroup: values close together, in order, found at the first one's
// address with the others' offsets, and narrowed value by value.
func TestGroup(t *testing.T) {
	f := newFixture(t, 3, "int32")
	le := binary.LittleEndian
	le.PutUint32(f.buf[1000:], 100)
	le.PutUint16(f.buf[1020:], 50)
	le.PutUint32(f.buf[2000:], 100) // no 50 after it
	le.PutUint32(f.buf[PageSize-8:], 100)
	le.PutUint16(f.buf[PageSize+40:], 50) // across the page's end
	le.PutUint32(f.buf[3000:], 100)
	le.PutUint16(f.buf[3100:], 50) // too far
	if n := f.scan("group 100 50:int16 within 64"); n != 2 {
		t.Fatalf("group: %d", n)
	}
	ms, _ := f.sess.First(5)
	spec := f.sess.Spec()
	if ms[0].Addr != f.base+1000 || spec.Kind(ms[0]) != "+0x14" || spec.Format(ms[0], ms[0].Old, true) != "100,50" {
		t.Errorf("first match: %+v, %s", ms[0], spec.Kind(ms[0]))
	}
	le.PutUint16(f.buf[1020:], 49)
	if n := f.scan("group 100 changed"); n != 1 {
		t.Errorf("group 100 changed: %d", n)
	}
	if n := f.scan("unchanged"); n != 1 {
		t.Errorf("unchanged (the first value): %d", n)
	}
}

// TestSnapshots: snapshot NAME keeps memory; changed since NAME compares
// with it, as a first scan and as a narrowing; the undo budget drops the
// oldest steps.
func TestSnapshots(t *testing.T) {
	f := newFixture(t, 3, "int32")
	i32 := mustType(t, "int32")
	for off := 0; off < 2*PageSize; off += 4 {
		f.put(off, encode(i32, "5"))
	}
	f.scan("snapshot before")
	f.put(40, encode(i32, "6"))
	f.put(PageSize+40, encode(i32, "4"))
	if n := f.scan("changed since before"); n != 2 {
		t.Fatalf("changed since before, as a first scan: %d", n)
	}
	if n := f.scan("increased since before"); n != 1 {
		t.Fatalf("increased since before: %d", n)
	}
	if n := f.scan("+ 1 since before"); n != 1 {
		t.Fatalf("+ 1 since before: %d", n)
	}
	c, _ := ParseCommand("changed since nosuch")
	if _, err := f.sess.Scan(context.Background(), f.sc, f.regions, c.Cond, ""); err == nil || !strings.Contains(err.Error(), `no snapshot "nosuch"`) {
		t.Errorf("since a snapshot that does not exist: %v", err)
	}
	if err := f.sess.Forget("before"); err != nil || len(f.sess.Snapshots()) != 0 {
		t.Errorf("forget: %v", err)
	}

	// A budget of one snapshot's size keeps one to undo to.
	f.scan("snapshot")
	f.sess.SetBudget(f.sess.Current().Size + 1)
	f.scan("snapshot")
	steps, cur, trimmed := f.sess.History()
	if !trimmed || cur != 1 || len(steps) != 2 {
		t.Errorf("after the budget: %d steps, current %d, trimmed %v", len(steps), cur, trimmed)
	}
	f.sess.Undo()
	if err := f.sess.Undo(); err == nil || !strings.Contains(err.Error(), "budget") {
		t.Errorf("undo past the budget: %v", err)
	}
	entries, _ := os.ReadDir(f.sess.Path)
	if len(entries) != 3 { // state and two steps
		t.Errorf("the session holds %d files", len(entries))
	}
}

// TestReferences: a narrowing that keeps a frame as it was writes a
// reference to it, not the frame again; the file it names is kept for as
// long as a step in the history reads it, and removed after.
func TestReferences(t *testing.T) {
	f := newFixture(t, 2100, "int32") // more than one frame
	for off := 0; off < len(f.buf); off += 4 {
		binary.LittleEndian.PutUint32(f.buf[off:], uint32(off/4%1000))
	}
	all := f.scan("snapshot")
	snap := *f.sess.Current()
	if n := f.scan("unchanged"); n != all {
		t.Fatalf("unchanged: %d of %d", n, all)
	}
	cur := f.sess.Current()
	if fmt.Sprint(cur.Uses) != fmt.Sprint([]int{snap.ID}) || cur.Size > snap.Size/100 {
		t.Fatalf("unchanged after a snapshot of %d bytes: %d bytes, uses %v", snap.Size, cur.Size, cur.Uses)
	}
	binary.LittleEndian.PutUint32(f.buf[40:], 5000)
	if n := f.scan("unchanged"); n != all-1 {
		t.Fatalf("unchanged after a change: %d", n)
	}
	if ms, _ := f.sess.First(11); ms[10].Addr != f.base+44 || !bytes.Equal(ms[10].Old, f.buf[44:48]) {
		t.Errorf("read through references: %v", ms[10])
	}
	// A budget of one byte drops the older steps from the history, but
	// for those whose files the current step reads (they cost nothing);
	// the snapshot's file stays while the current step reads it.
	f.sess.SetBudget(1)
	f.scan("update")
	if steps, _, trimmed := f.sess.History(); len(steps) > 2 || !trimmed || f.sess.historySize() != 0 {
		t.Fatalf("after the budget: %d steps, trimmed %v, history %d bytes", len(steps), trimmed, f.sess.historySize())
	}
	if _, err := os.Stat(f.sess.stepPath(snap.ID)); err != nil {
		t.Fatalf("the snapshot's file, which the current step reads: %v", err)
	}
	if n := f.scan("unchanged"); n != all-1 {
		t.Fatalf("unchanged through a kept file: %d", n)
	}
	// A scan anew, and one that keeps its matches as they were: the
	// second refers to the first, and the snapshot's file goes.
	f.reset()
	f.scan("777")
	f.scan("777")
	if cur := f.sess.Current(); len(cur.Uses) != 1 || cur.Size > 3*4096 {
		t.Errorf("a narrowing that keeps every match as it was: %d bytes, uses %v", cur.Size, cur.Uses)
	}
	if _, err := os.Stat(f.sess.stepPath(snap.ID)); !os.IsNotExist(err) {
		t.Errorf("the snapshot's file after the last reference to it went: %v", err)
	}
}

// TestSetFile: a set written and read is the same; every damage to the
// file is refused.
func TestSetFile(t *testing.T) {
	f := newFixture(t, 8, "double")
	dbl := mustType(t, "double")
	for off := 0; off < 3*PageSize; off += 24 {
		f.put(off, encode(dbl, "2.5"))
	}
	if f.scan("2.5") == 0 {
		t.Fatal("no matches")
	}
	path := f.sess.stepPath(f.sess.Current().ID)
	data, _ := os.ReadFile(path)
	var count uint64
	if _, err := readSet(bytes.NewReader(data), func(fr *frame) { count += fr.count }); err != nil || count != f.sess.Current().Matches {
		t.Fatalf("read back %d matches, %v", count, err)
	}
	header := bytes.IndexByte(data, '\n') + 1
	for i := header; i < len(data); i += 7 {
		bad := bytes.Clone(data)
		bad[i] ^= 0x5a
		if _, err := readSet(bytes.NewReader(bad), func(*frame) {}); err == nil {
			t.Errorf("a flip at %d went unnoticed", i)
		}
	}
	if _, err := readSet(bytes.NewReader(data[:len(data)-1]), func(*frame) {}); !errors.Is(err, ErrSet) {
		t.Errorf("a cut file: %v", err)
	}
	if _, err := readSet(strings.NewReader("{}\n"), func(*frame) {}); !errors.Is(err, ErrSet) {
		t.Errorf("an empty header: %v", err)
	}
}

var update = flag.Bool("update", false, "write testdata's set and state files anew")

// TestFixtures: the set and state files in testdata (the fuzz targets'
// seeds) still read: a session written by this version reads in the next.
// go test -run TestFixtures -update writes them anew.
func TestFixtures(t *testing.T) {
	if *update {
		writeFixtures(t)
	}
	for _, name := range []string{"anyint.set", "group.set", "snapshot.set", "bytes.set"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		n := uint64(0)
		if _, err := readSet(bytes.NewReader(data), func(fr *frame) { n += fr.count }); err != nil || n == 0 {
			t.Errorf("%s: %d matches, %v", name, n, err)
		}
	}
	data, _ := os.ReadFile("testdata/state")
	if st, err := decodeState(bytes.NewReader(data)); err != nil || len(st.Steps) == 0 {
		t.Errorf("testdata/state: %+v, %v", st, err)
	}
}

// writeFixtures scans this process's memory for the fixtures.
func writeFixtures(t *testing.T) {
	copyTo := func(from, name string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join("testdata", name), b, 0o644)
	}
	f := newFixture(t, 4, "anyint")
	binary.LittleEndian.PutUint64(f.buf[8:], 7)
	f.buf[PageSize+3] = 7
	binary.LittleEndian.PutUint16(f.buf[2*PageSize+6:], 7)
	f.scan("7")
	copyTo(f.sess.stepPath(f.sess.Current().ID), "anyint.set")
	f.scan("snapshot before")
	copyTo(f.sess.snapPath("before"), "snapshot.set")
	copyTo(filepath.Join(f.sess.Path, "state"), "state")

	g := newFixture(t, 2, "int32")
	binary.LittleEndian.PutUint32(g.buf[8:], 100)
	binary.LittleEndian.PutUint16(g.buf[16:], 50)
	g.scan("group 100 50:int16")
	copyTo(g.sess.stepPath(g.sess.Current().ID), "group.set")

	b := newFixture(t, 2, "bytes")
	b.put(PageSize-2, []byte{0x48, 0x8b, 0x05, 0x90})
	b.scan("48 8b ?? 9?")
	copyTo(b.sess.stepPath(b.sess.Current().ID), "bytes.set")
}

func FuzzParseCommand(f *testing.F) {
	data, err := os.ReadFile("testdata/commands.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		for _, typ := range []string{"int32", "anynumber", "bytes", "string"} {
			f.Add(s, typ)
		}
	}
	f.Fuzz(func(t *testing.T, line, typ string) {
		spec, err := ParseSpec(typ, "little", false, false)
		if err != nil {
			return
		}
		c, err := ParseCommand(line)
		if err != nil {
			return
		}
		if c.Name != "scan" {
			spec.SetArgs(c)
			spec.encoder(c.Value)
			return
		}
		_ = c.Cond.String()
		for _, first := range []bool{true, false} {
			if spec.Text() && !first {
				spec.Len = 4
			}
			tt, err := spec.compile(c.Cond, first)
			if err != nil {
				continue
			}
			cur, old := make([]byte, 8192), make([]byte, 8192)
			switch {
			case tt.spec.numeric():
				tt.flags(cur[:8], old[:8], 0xffff)
			case tt.spec.Class == Group:
				tt.passGroup(cur[:tt.spec.Window], make([]uint16, len(tt.spec.Parts)-1), old)
			default:
				tt.passText(cur, old)
			}
			if first && c.Cond.Op != OpSnapshot && !c.Cond.NeedsPrevious() {
				var m pageMatches
				newFinder(tt).find(cur, 0, PageSize, &m)
			}
		}
	})
}

// FuzzSetFile: a set file of any content is read without a panic, and a
// frame that reads can be walked.
func FuzzSetFile(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.set")
	if len(files) == 0 {
		f.Fatal("no testdata/*.set")
	}
	for _, name := range files {
		data, _ := os.ReadFile(name)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var frames []*frame
		h, err := readSet(bytes.NewReader(data), func(fr *frame) { frames = append(frames, fr) })
		if err != nil {
			return
		}
		c := newCursor(&h.Spec)
		for _, fr := range frames {
			for i := range fr.pages {
				c.start(fr, &fr.pages[i])
				for m, ok := c.next(); ok; m, ok = c.next() {
					h.Spec.Format(Match{Flags: m.flags, Offsets: m.goffs, Old: m.old}, m.old, true)
				}
			}
		}
	})
}

// FuzzState: a state file of any content is read without a panic, and one
// that reads can be used.
func FuzzState(f *testing.F) {
	data, err := os.ReadFile("testdata/state")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeState(bytes.NewReader(data))
		if err != nil {
			return
		}
		s := &Session{Path: t.TempDir(), st: st, exists: true}
		s.Current()
		s.History()
		s.Size()
		s.Spec()
		s.LastSpec()
	})
}

// TestSpan: the first scan's fast integer tests pass exactly the values
// the lane's own test passes, for every integer type, test and edge value.
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
		spec := Spec{Class: Number, Num: ty}
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
			c, _ := ParseCommand(cmd)
			tt, err := spec.compile(c.Cond, true)
			if err != nil {
				continue // a range the wrong way round, a value out of range
			}
			for _, step := range []int{1, ty.Size} {
				f := newNumFinder(tt, &tt.lanes[0], step)
				if f.span == nil {
					t.Fatalf("%s %q: no span", name, cmd)
				}
				got := f.offsets(b, 8, PageSize, nil)
				var want []uint16
				for off := (8 + step - 1) / step * step; off+ty.Size <= len(b); off += step {
					if tt.lanes[0].pass(tt.op, b[off:], nil) {
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

package memory

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/procfs"
)

// fakeCapture is a capture made in the test: regions, where each one's
// bytes are, and the data file.
type fakeCapture struct {
	regions []procfs.Region
	layouts map[uint64]CaptureLayout
	data    *os.File
}

func (c *fakeCapture) Regions() []procfs.Region             { return c.regions }
func (c *fakeCapture) Layout(r procfs.Region) CaptureLayout { return c.layouts[r.Start] }
func (c *fakeCapture) Data() *os.File                       { return c.data }

// sparseFile makes a memfd (which keeps holes) of size bytes with data at
// the given offsets.
func sparseFile(t *testing.T, size int64, data map[int64][]byte) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate("capture", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "capture")
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range data {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestCapture reads a captured address space as a live one is read: a
// region wholly in the capture with a hole, one whose end comes from its
// file, and one the capture lacks, which is a hole.
func TestCapture(t *testing.T) {
	page := int64(pageSize)
	data := sparseFile(t, 8*page, map[int64][]byte{
		page:     bytes.Repeat([]byte("A"), int(page)), // region a's first page
		3 * page: bytes.Repeat([]byte("B"), int(page)), // region b's first page
	})
	file := sparseFile(t, 4*page, map[int64][]byte{2 * page: bytes.Repeat([]byte("F"), int(page))})
	const base = 0x10000
	a := procfs.Region{Start: base, End: base + 2*uint64(page), Perms: procfs.Perms{Read: true, Write: true}}
	b := procfs.Region{Start: base + 4*uint64(page), End: base + 6*uint64(page), Perms: procfs.Perms{Read: true, Exec: true}, Path: "/lib/x.so", Inode: 7, Dev: "08:01"}
	c := procfs.Region{Start: base + 8*uint64(page), End: base + 9*uint64(page), Perms: procfs.Perms{Read: true}, Path: "/gone", Inode: 8, Dev: "08:01"}
	capture := &fakeCapture{regions: []procfs.Region{a, b, c}, data: data, layouts: map[uint64]CaptureLayout{
		a.Start: {InCore: a.Size(), Offset: page},
		b.Start: {InCore: uint64(page), Offset: 3 * page, File: file, FileOffset: page},
		c.Start: {},
	}}
	rd := OpenCapture(capture)
	defer rd.Close()
	want := func(r procfs.Region, fill ...string) []byte {
		var w []byte
		for _, f := range fill {
			if f == "" {
				w = append(w, make([]byte, page)...)
			} else {
				w = append(w, bytes.Repeat([]byte(f), int(page))...)
			}
		}
		return w
	}
	for _, tc := range []struct {
		r    procfs.Region
		want []byte
	}{{a, want(a, "A", "")}, {b, want(b, "B", "F")}, {c, want(c, "")}} {
		g := rd.Region(tc.r)
		got := make([]byte, tc.r.Size())
		if n, err := g.ReadAt(got, tc.r.Start); err != nil || n != len(got) || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: ReadAt = %d, %v, equal %v", tc.r.Name(), n, err, bytes.Equal(got, tc.want))
		}
		g.Close()
	}
	// Holes are where the capture has no data.
	g := rd.Region(a)
	if at, ok, err := g.Seek(a.Start, true); err != nil || !ok || at != a.Start+uint64(page) {
		t.Errorf("SEEK_HOLE in a: %#x, %v, %v", at, ok, err)
	}
	g.Close()
	g = rd.Region(c)
	if _, ok, err := g.Seek(c.Start, false); err != nil || ok {
		t.Errorf("SEEK_DATA in a region the capture lacks: %v, %v", ok, err)
	}
	g.Close()
	// Streams see the same.
	var got []byte
	var zeros uint64
	g = rd.Region(b)
	if _, err := g.Stream(context.Background(), b.Start, b.End, make([]byte, 1<<16), Sink{
		Data:  func(addr uint64, p []byte) error { got = append(got, p...); return nil },
		Zeros: func(addr, n uint64) error { zeros += n; return nil },
	}); err != nil || !bytes.Equal(got, want(b, "B", "F")) || zeros != 0 {
		t.Errorf("Stream of b: %d bytes, %d zeros, %v", len(got), zeros, err)
	}
	g.Close()
	// The whole space, gaps as zeros.
	span := make([]byte, 9*page)
	if n, err := rd.ReadSpan(capture.regions, span, base); err != nil || n != len(span) || !bytes.Equal(span[page:2*page], make([]byte, page)) || span[4*page] != 'B' || span[5*page] != 'F' {
		t.Errorf("ReadSpan: %d, %v", n, err)
	}
	if regions, err := rd.Regions(0); err != nil || len(regions) != 3 {
		t.Errorf("Regions: %v, %v", regions, err)
	}
	// Nothing writes a capture.
	if _, err := rd.Writer(a.Start, a.End).Write([]byte("x"), a.Start); !errors.Is(err, ErrCaptured) || Classify(err) != ReadOnly {
		t.Errorf("a write to a capture: %v", err)
	}
	if _, err := rd.WriteSpan([]byte("x"), a.Start, true); !errors.Is(err, ErrCaptured) {
		t.Errorf("WriteSpan to a capture: %v", err)
	}
}

// A part of a captured region (a range asked for) reads as that part of
// the whole.
func TestCapturePart(t *testing.T) {
	page := int64(pageSize)
	data := sparseFile(t, 4*page, map[int64][]byte{page: []byte("0123456789abcdef")})
	file := sparseFile(t, 4*page, map[int64][]byte{page + 8: []byte("FILE")})
	r := procfs.Region{Start: 0x10000, End: 0x10000 + 2*uint64(page), Perms: procfs.Perms{Read: true}}
	c := &fakeCapture{regions: []procfs.Region{r}, data: data, layouts: map[uint64]CaptureLayout{
		r.Start: {InCore: uint64(page), Offset: page, File: file, FileOffset: 0},
	}}
	rd := OpenCapture(c)
	for _, tc := range []struct {
		at   uint64
		n    int
		want string
	}{{r.Start + 4, 4, "4567"}, {r.Start + uint64(page) + 8, 4, "FILE"}} {
		part := r
		part.Start, part.End = tc.at, tc.at+uint64(tc.n)
		g := rd.Region(part)
		b := make([]byte, tc.n)
		if n, err := g.ReadAt(b, tc.at); err != nil || n != tc.n || string(b) != tc.want {
			t.Errorf("ReadAt of the part at %#x: %q, %d, %v; want %q", tc.at, b, n, err, tc.want)
		}
		g.Close()
	}
}

package memory

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSpan: the address space read as one range across two regions and the
// gap between them, with a reading of maps taken before a third page was
// unmapped: data, zeros for the gap and for what is no longer mapped,
// data again; SEEK_DATA and SEEK_HOLE across them; writes only where all
// of the range is still mapped.
func TestSpan(t *testing.T) {
	page := int(pageSize)
	b := anonymous(t, 5)
	for i := range b {
		b[i] = byte(i/page + 1) // page i holds i+1
	}
	base := addrOf(b)
	unmap(t, base+uint64(page), page)
	p, rd := openReader(t, syscall.Getpid(), false)
	regions, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	// Unmapped after maps was read: the reading still has it.
	unmap(t, base+3*uint64(page), page)
	got := make([]byte, 5*page)
	n, err := rd.ReadSpan(regions, got, base)
	if err != nil || n != len(got) {
		t.Fatalf("ReadSpan: %d, %v", n, err)
	}
	want := bytes.Join([][]byte{bytes.Repeat([]byte{1}, page), make([]byte, page), bytes.Repeat([]byte{3}, page), make([]byte, page), bytes.Repeat([]byte{5}, page)}, nil)
	if !bytes.Equal(got, want) {
		t.Errorf("ReadSpan across a gap and a page unmapped since maps was read: pages hold %v, want 1 0 3 0 5", pagesOf(got, page))
	}

	for _, c := range []struct {
		from     uint64
		wantHole bool
		want     uint64
	}{
		{base, false, base},
		{base, true, base + uint64(page)},
		{base + uint64(page), false, base + 2*uint64(page)},
		{base + 2*uint64(page), true, base + 3*uint64(page)},
	} {
		at, ok, err := rd.SeekSpan(regions, c.from, base+5*uint64(page), c.wantHole)
		if err != nil || !ok || at != c.want {
			t.Errorf("SeekSpan(%#x, hole %v) = %#x, %v, %v; want %#x", c.from, c.wantHole, at, ok, err, c.want)
		}
	}

	if in, err := rd.Mapped(regions, base+2*uint64(page), uint64(page)); err != nil || len(in) != 1 {
		t.Errorf("Mapped of a mapped page: %v, %v", in, err)
	}
	for _, at := range []uint64{base, base + 2*uint64(page)} { // into the gap, into what was unmapped
		if _, err := rd.Mapped(regions, at, 2*uint64(page)); !errors.Is(err, syscall.EIO) {
			t.Errorf("Mapped of %#x+2 pages: %v, want EIO", at, err)
		}
	}
}

// unmap unmaps n bytes at addr: part of a mapping, which Munmap refuses.
func unmap(t *testing.T, addr uint64, n int) {
	t.Helper()
	if _, _, errno := unix.Syscall(unix.SYS_MUNMAP, uintptr(addr), uintptr(n), 0); errno != 0 {
		t.Fatal(errno)
	}
}

func pagesOf(b []byte, page int) []byte {
	var first []byte
	for i := 0; i < len(b); i += page {
		first = append(first, b[i])
	}
	return first
}

// TestWriteSpan writes across two adjacent mappings, each part through a
// writer of its own region.
func TestWriteSpan(t *testing.T) {
	page := int(pageSize)
	b := anonymous(t, 2)
	base := addrOf(b)
	// Two mappings: the second page made executable too.
	if err := unix.Mprotect(b[page:], unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC); err != nil {
		t.Fatal(err)
	}
	p, rd := openReader(t, syscall.Getpid(), true)
	regions, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	at := base + uint64(page) - 4
	in, err := rd.Mapped(regions, at, 8)
	if err != nil || len(in) != 2 {
		t.Fatalf("Mapped across the two mappings: %v, %v", in, err)
	}
	if n, err := rd.WriteSpan(in, []byte("ABCDEFGH"), at); n != 8 || err != nil {
		t.Fatalf("WriteSpan: %d, %v", n, err)
	}
	if got := string(b[page-4 : page+4]); got != "ABCDEFGH" {
		t.Errorf("memory after WriteSpan: %q", got)
	}
}

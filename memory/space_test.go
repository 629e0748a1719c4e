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

// TestWriteSpan writes across two adjacent mappings, and nothing where a
// byte of the span is not mapped, or not writable unless forced.
func TestWriteSpan(t *testing.T) {
	page := int(pageSize)
	b := anonymous(t, 4)
	base := addrOf(b)
	copy(b, bytes.Repeat([]byte("."), 4*page))
	// Three mappings: the second page executable too, the third read-only;
	// the fourth unmapped.
	if err := unix.Mprotect(b[page:2*page], unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mprotect(b[2*page:3*page], unix.PROT_READ); err != nil {
		t.Fatal(err)
	}
	unmap(t, base+3*uint64(page), page)
	_, rd := openReader(t, syscall.Getpid(), true)
	at := base + uint64(page) - 4
	if n, err := rd.WriteSpan([]byte("ABCDEFGH"), at, false); n != 8 || err != nil {
		t.Fatalf("WriteSpan: %d, %v", n, err)
	}
	if got := string(b[page-4 : page+4]); got != "ABCDEFGH" {
		t.Errorf("memory after WriteSpan: %q", got)
	}
	ro := base + 2*uint64(page)
	if n, err := rd.WriteSpan([]byte("IJKL"), ro-2, false); n != 0 || !errors.Is(err, syscall.EACCES) {
		t.Errorf("WriteSpan into a read-only mapping: %d, %v; want EACCES", n, err)
	}
	if n, err := rd.WriteSpan([]byte("MNOP"), ro+uint64(page)-2, true); n != 0 || !errors.Is(err, syscall.EIO) {
		t.Errorf("WriteSpan into unmapped memory: %d, %v; want EIO", n, err)
	}
	if got := string(b[2*page-2 : 2*page+2]); got != "...." {
		t.Errorf("a refused WriteSpan wrote: %q", got)
	}
	if got := string(b[3*page-2 : 3*page]); got != ".." {
		t.Errorf("a refused WriteSpan wrote: %q", got)
	}
	if n, err := rd.WriteSpan([]byte("QRST"), ro-2, true); n != 4 || err != nil {
		t.Errorf("forced WriteSpan into a read-only mapping: %d, %v", n, err)
	}
	if got := string(b[2*page-2 : 2*page+2]); got != "QRST" {
		t.Errorf("after a forced WriteSpan: %q", got)
	}
}

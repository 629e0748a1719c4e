package memory

import (
	"bytes"
	"errors"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// A writer made while its range was writable refuses to write once the
// mapping is read-only, or is another mapping, and writes nothing.
func TestWriteDecidedAtWrite(t *testing.T) {
	page := int(pageSize)
	b := anonymous(t, 2)
	copy(b, bytes.Repeat([]byte("."), 2*page))
	base := addrOf(b)
	p, rd := openReader(t, os.Getpid(), true)
	r := regionOf(t, p, base)
	w := rd.Writer(base, base+uint64(2*page))
	rw := rd.RegionWriter(r)
	if n, err := w.Write([]byte("AB"), base); n != 2 || err != nil {
		t.Fatalf("a write while writable: %d, %v", n, err)
	}
	if err := unix.Mprotect(b[:page], unix.PROT_READ); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]*Writer{"Writer": w, "RegionWriter": rw} {
		if n, err := w.Write([]byte("CD"), base); n != 0 || !errors.Is(err, syscall.EACCES) {
			t.Errorf("%s into a page made read-only: %d, %v; want EACCES", name, n, err)
		}
		// A write that runs from a writable page into the read-only one
		// is short: what lies in the writable page only.
		if n, err := w.Write([]byte("EF"), base-1+uint64(page)); n != 0 || !errors.Is(err, syscall.EACCES) {
			t.Errorf("%s from the read-only page on: %d, %v; want EACCES", name, n, err)
		}
	}
	if got := string(b[:2]); got != "AB" {
		t.Errorf("a refused write landed: %q", got)
	}
	if n, err := rd.Writer(base, base+1).Forcing().Write([]byte("G"), base); n != 1 || err != nil {
		t.Errorf("a forced write: %d, %v", n, err)
	}

	// The second page replaced by a writable private file mapping: still
	// writable, but no longer the region RegionWriter was made for.
	f, err := os.CreateTemp(t.TempDir(), "over")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(int64(page))
	if _, _, e := unix.Syscall6(unix.SYS_MMAP, uintptr(base)+uintptr(page), uintptr(page), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_FIXED, f.Fd(), 0); e != 0 {
		t.Fatal(e)
	}
	second := base + uint64(page)
	if n, err := rw.Write([]byte("HI"), second); n != 0 || !errors.Is(err, syscall.EACCES) {
		t.Errorf("RegionWriter into another mapping: %d, %v; want EACCES", n, err)
	}
	if n, err := w.Write([]byte("HI"), second); n != 2 || err != nil {
		t.Errorf("Writer into a writable mapping: %d, %v", n, err)
	}
}

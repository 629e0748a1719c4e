package memory

import (
	"bytes"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
)

// TestReadPieces: thousands of scattered pieces (more than one
// process_vm_readv takes) read as ReadAt reads each: data, a hole as zeros
// left untouched, a page unmapped since maps was read as nothing, pieces
// across page boundaries cut where ReadAt cuts them.
func TestReadPieces(t *testing.T) {
	p, rd := openReader(t, os.Getpid(), false)
	const pages = 16
	buf := anonymous(t, pages)
	addr := addrOf(buf)
	for i := range buf {
		if i/int(pageSize) != 8 { // page 8 stays a hole
			buf[i] = byte(i*7 + i>>12 + 1)
		}
	}
	r := regionOf(t, p, addr)
	r.Start, r.End = addr, addr+pages*pageSize
	if _, _, e := syscall.Syscall(syscall.SYS_MUNMAP, uintptr(addr+12*pageSize), uintptr(pageSize), 0); e != 0 {
		t.Fatal(e)
	}
	g := rd.Region(r)
	defer g.Close()

	rnd := rand.New(rand.NewPCG(1, 2))
	var ps []Piece
	for at := addr; ; {
		at += uint64(rnd.IntN(40))
		n := 1 + rnd.IntN(12)
		if at+uint64(n) > r.End {
			break
		}
		ps = append(ps, Piece{Addr: at, B: make([]byte, n)})
		at += uint64(n)
	}
	if len(ps) < 2*iovMax {
		t.Fatalf("only %d pieces", len(ps))
	}
	if err := g.ReadPieces(ps); err != nil {
		t.Fatal(err)
	}
	for _, pc := range ps {
		want := make([]byte, len(pc.B))
		n, _ := g.ReadAt(want, pc.Addr)
		if pc.N != n || !bytes.Equal(pc.B[:pc.N], want[:n]) {
			t.Fatalf("piece 0x%x+%d: %d bytes %x, ReadAt gives %d bytes %x", pc.Addr-addr, len(pc.B), pc.N, pc.B[:pc.N], n, want[:n])
		}
	}
	ranges, err := rd.pm.Scan(addr+8*pageSize, addr+9*pageSize)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range ranges {
		if holdsData(pr.Flags) {
			t.Errorf("the hole has data after the read: %+v", pr)
		}
	}
	// Out of the region: refused.
	if err := g.ReadPieces([]Piece{{Addr: r.End - 2, B: make([]byte, 4)}}); Classify(err) != OutOfRange {
		t.Errorf("a piece past the region: %v", err)
	}
}

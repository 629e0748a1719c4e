package memory

import (
	"bytes"
	"os"
	"syscall"
	"testing"
)

func TestSplit(t *testing.T) {
	p := pageSize
	segs := []segment{{0, 3 * p, resident}, {5 * p, 6 * p, resident}, {8 * p, 20 * p, resident}}
	for n := uint64(0); n <= 20; n++ {
		shares := split(segs, n)
		if uint64(len(shares)) > max(n, 1) {
			t.Errorf("split in %d: %d shares", n, len(shares))
		}
		var joined []segment
		for _, sh := range shares {
			for _, s := range sh {
				if s.start%p != 0 || s.end%p != 0 || s.start >= s.end {
					t.Errorf("split in %d: segment %x-%x", n, s.start, s.end)
				}
				if k := len(joined); k > 0 && joined[k-1].end == s.start {
					joined[k-1].end = s.end
				} else {
					joined = append(joined, s)
				}
			}
		}
		if len(joined) != len(segs) || joined[0] != segs[0] || joined[1] != segs[1] || joined[2] != segs[2] {
			t.Errorf("split in %d covers %v", n, joined)
		}
	}
}

// TestSplitRead: a read split between four threads gives the bytes one
// read gives; when a page of its third share cannot be read (a guard page
// installed after the page tables were looked at), it returns exactly the
// bytes before that page, as an unsplit read does.
func TestSplitRead(t *testing.T) {
	p, rd := openReader(t, os.Getpid(), false)
	const pages = 256 // 1 MiB: four shares of 256 KiB
	buf := anonymous(t, pages)
	for i := range buf {
		buf[i] = byte(i*31 + i>>12)
	}
	addr := addrOf(buf)
	r := regionOf(t, p, addr)
	r.Start, r.End = addr, addr+pages*pageSize
	g := rd.Region(r)
	defer g.Close()
	rd.SetParallel(4)
	got := make([]byte, len(buf))
	if n, err := g.ReadAt(got, addr); n != len(buf) || err != nil || !bytes.Equal(got, buf) {
		t.Fatalf("split read: %d, %v, equal %v", n, err, bytes.Equal(got, buf))
	}
	if shares := split([]segment{{addr, r.End, resident}}, 4); len(shares) != 4 {
		t.Fatalf("%d shares", len(shares))
	}

	const madvGuardInstall = 102
	bad := addr + 160*pageSize // in the third share: pages 128-191
	if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(bad), uintptr(pageSize), madvGuardInstall); e != 0 {
		// No guard pages (before Linux 6.13): a page process_vm_readv
		// cannot read (PROT_NONE) fails its share the same way; mem reads
		// it by force, so the whole read must come, every share's bytes
		// the right ones.
		want := bytes.Clone(buf)
		if err := syscall.Mprotect(buf[160*pageSize:161*pageSize], syscall.PROT_NONE); err != nil {
			t.Fatal(err)
		}
		defer syscall.Mprotect(buf[160*pageSize:161*pageSize], syscall.PROT_READ|syscall.PROT_WRITE)
		clear(got)
		n, err := rd.readSegments(got, addr, []segment{{addr, r.End, resident}}, g.layout)
		if err != nil || n != len(want) || !bytes.Equal(got, want) {
			t.Errorf("a split read with a share that fails: %d bytes, %v, equal %v", n, err, bytes.Equal(got, want))
		}
		return
	}
	// The page tables as they were before the guard page: all resident.
	stale := []segment{{addr, r.End, resident}}
	clear(got)
	n, err := rd.readSegments(got, addr, stale, g.layout)
	if err != nil || n != 160*int(pageSize) || !bytes.Equal(got[:n], buf[:n]) {
		t.Errorf("a split read into a guard page: %d bytes (want %d), %v", n, 160*pageSize, err)
	}
}

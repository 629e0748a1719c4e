package core

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"testing"
	"unsafe"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// image is an io.ReaderAt over a core, for debug/elf.
type image struct {
	im *Image
	rd *memory.Reader
}

func (i image) ReadAt(b []byte, off int64) (int, error) {
	return i.im.ReadAt(i.rd, b, uint64(off))
}

var marker = []byte("procmem core test marker")

// TestOwnCore builds the core of the test process itself and reads it
// back with debug/elf: an x86-64 ET_CORE, a PT_NOTE then page-aligned
// PT_LOADs in address order, a prstatus per thread, and memory that reads
// as the process's own.
func TestOwnCore(t *testing.T) {
	p, err := procfs.Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rd, err := memory.Open(p, memory.Self, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	im, err := Build(p, rd)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(image{im, rd})
	if err != nil {
		t.Fatalf("debug/elf cannot read the core: %v", err)
	}
	if f.Type != elf.ET_CORE || f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		t.Errorf("header: %v %v %v", f.Type, f.Machine, f.Class)
	}
	if len(f.Progs) < 2 || f.Progs[0].Type != elf.PT_NOTE {
		t.Fatalf("program headers: %d, first %v", len(f.Progs), f.Progs[0].Type)
	}
	var last uint64
	for _, ph := range f.Progs[1:] {
		if ph.Type != elf.PT_LOAD || ph.Vaddr < last || ph.Off%pageSize != 0 ||
			ph.Filesz != 0 && ph.Filesz != pageSize && ph.Filesz != ph.Memsz {
			t.Errorf("bad PT_LOAD %+v", ph.ProgHeader)
		}
		last = ph.Vaddr
		if ph.Off+ph.Filesz > im.Size() {
			t.Errorf("PT_LOAD past the end: %+v, size %d", ph.ProgHeader, im.Size())
		}
	}

	notes := make([]byte, f.Progs[0].Filesz)
	if _, err := f.Progs[0].ReadAt(notes, 0); err != nil {
		t.Fatal(err)
	}
	count := map[uint32]int{}
	for b := notes; len(b) >= 12; {
		namesz, descsz, typ := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
		count[typ]++
		b = b[min(uint32(len(b)), 12+(namesz+3)/4*4+(descsz+3)/4*4):]
	}
	tids, _ := p.Threads()
	if count[ntPrstatus] < 1 || count[ntPrstatus] > len(tids) || count[ntPrpsinfo] != 1 || count[ntAuxv] != 1 || count[ntFile] != 1 {
		t.Errorf("notes: %v for %d threads", count, len(tids))
	}

	// The marker, read through the core at its address.
	addr := uint64(uintptr(unsafe.Pointer(&marker[0])))
	found := false
	for _, ph := range f.Progs[1:] {
		if addr >= ph.Vaddr && addr+uint64(len(marker)) <= ph.Vaddr+ph.Filesz {
			got := make([]byte, len(marker))
			if _, err := ph.ReadAt(got, int64(addr-ph.Vaddr)); err != nil || !bytes.Equal(got, marker) {
				t.Errorf("the marker through the core: %q, %v", got, err)
			}
			found = true
		}
	}
	if !found {
		t.Errorf("no PT_LOAD holds the marker at %#x", addr)
	}
	if at, ok, err := im.Seek(rd, 0, false); err != nil || !ok || at != 0 {
		t.Errorf("SEEK_DATA from 0: %d, %v, %v", at, ok, err)
	}
	if at, ok, err := im.Seek(rd, 0, true); err != nil || !ok || at < uint64(len(im.head)) {
		t.Errorf("SEEK_HOLE from 0: %d, %v, %v; the headers are %d bytes of data", at, ok, err, len(im.head))
	}
}

package pointers

import (
	"debug/elf"
	"errors"
	"os"
	"testing"
)

// TestProgramHeaders reads the test binary's writable segments and
// compares them with what debug/elf reads of the whole file.
func TestProgramHeaders(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseELFHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	segs, err := parseProgramHeaders(h, b[h.phoff:])
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []segment
	low := ^uint64(0)
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			want = append(want, segment{p.Vaddr, p.Memsz, p.Flags&elf.PF_W != 0})
			low = min(low, p.Vaddr)
		}
	}
	if len(segs) != len(want) {
		t.Fatalf("segments %+v, want %+v", segs, want)
	}
	for i := range segs {
		if segs[i] != want[i] {
			t.Errorf("segment %d: %+v, want %+v", i, segs[i], want[i])
		}
	}
	static := staticRanges(segs, 4096)
	if len(static) == 0 {
		t.Fatal("no writable segment in the test binary")
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_W != 0 {
			start := p.Vaddr - low&^4095
			if static[0].Start != start || static[0].End != start+p.Memsz {
				t.Errorf("static data %x-%x, want %x-%x (.bss included)", static[0].Start, static[0].End, start, start+p.Memsz)
			}
			break
		}
	}
}

func TestNotELF(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("#!/bin/sh\n"), make([]byte, 64), append([]byte("\x7fELF\x01\x01"), make([]byte, 58)...)} {
		if _, err := parseELFHeader(b); !errors.Is(err, ErrNotELF) {
			t.Errorf("%q: %v, want ErrNotELF", b, err)
		}
	}
}

// FuzzProgramHeaders: the header and program headers of the test binary,
// and of the files in testdata/elf, cut and mangled, never panic.
func FuzzProgramHeaders(f *testing.F) {
	if exe, err := os.Executable(); err == nil {
		if b, err := os.ReadFile(exe); err == nil {
			f.Add(b[:min(len(b), 4096)])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseELFHeader(b)
		if err != nil {
			return
		}
		if h.phoff > uint64(len(b)) {
			return
		}
		segs, err := parseProgramHeaders(h, b[h.phoff:])
		if err == nil {
			staticRanges(segs, 4096)
		}
	})
}

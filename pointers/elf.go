package pointers

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A module's static data is what its ELF program headers say: each
// loadable segment that is writable, from its virtual address for its
// size in memory (memsz, so .bss past the file's bytes is included). This
// file reads the ELF header and the program headers, nothing else: they
// are what the dynamic linker maps, in the module's first page, so they
// can be read from memory as well as from the file.

// ErrNotELF is a module that is no 64-bit little-endian ELF file, such as
// a mapped data file: it has no static data.
var ErrNotELF = errors.New("no 64-bit little-endian ELF file")

const (
	elfHeaderSize = 64
	phdrSize      = 56
	ptLoad        = 1
	pfWrite       = 2
	maxPhdrs      = 1024 // more than any linker writes; a bound on what is read
)

// elfHeader is what the program headers are found by.
type elfHeader struct {
	phoff     uint64
	phentsize uint16
	phnum     uint16
}

// parseELFHeader reads an ELF64 little-endian header.
func parseELFHeader(b []byte) (elfHeader, error) {
	if len(b) < elfHeaderSize || string(b[:4]) != "\x7fELF" {
		return elfHeader{}, ErrNotELF
	}
	if b[4] != 2 || b[5] != 1 { // EI_CLASS ELFCLASS64, EI_DATA ELFDATA2LSB
		return elfHeader{}, ErrNotELF
	}
	h := elfHeader{
		phoff:     binary.LittleEndian.Uint64(b[0x20:]),
		phentsize: binary.LittleEndian.Uint16(b[0x36:]),
		phnum:     binary.LittleEndian.Uint16(b[0x38:]),
	}
	if h.phentsize < phdrSize || h.phnum == 0 || h.phnum > maxPhdrs || h.phoff > 1<<32 {
		return elfHeader{}, fmt.Errorf("%w: %d program headers of %d bytes at %#x", ErrNotELF, h.phnum, h.phentsize, h.phoff)
	}
	return h, nil
}

// size is how many bytes the program headers take.
func (h elfHeader) size() int { return int(h.phentsize) * int(h.phnum) }

// segment is a loadable segment: [vaddr, vaddr+memsz), writable or not.
type segment struct {
	vaddr, memsz uint64
	writable     bool
}

// parseProgramHeaders reads the loadable segments from the program
// headers h describes, b holding them.
func parseProgramHeaders(h elfHeader, b []byte) ([]segment, error) {
	if len(b) < h.size() {
		return nil, fmt.Errorf("%w: program headers cut short", ErrNotELF)
	}
	var segs []segment
	for i := 0; i < int(h.phnum); i++ {
		p := b[i*int(h.phentsize):]
		if binary.LittleEndian.Uint32(p) != ptLoad {
			continue
		}
		flags := binary.LittleEndian.Uint32(p[4:])
		vaddr, memsz := binary.LittleEndian.Uint64(p[16:]), binary.LittleEndian.Uint64(p[40:])
		if vaddr+memsz < vaddr {
			return nil, fmt.Errorf("%w: a segment at %#x of %#x bytes wraps around", ErrNotELF, vaddr, memsz)
		}
		segs = append(segs, segment{vaddr: vaddr, memsz: memsz, writable: flags&pfWrite != 0})
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("%w: no loadable segment", ErrNotELF)
	}
	return segs, nil
}

// staticRanges are the writable segments as offsets from the load base
// (the start of the lowest mapping, which is the lowest segment's page).
func staticRanges(segs []segment, pageSize uint64) []Range {
	low := segs[0].vaddr
	for _, s := range segs {
		low = min(low, s.vaddr)
	}
	low &^= pageSize - 1
	var out []Range
	for _, s := range segs {
		if s.writable && s.memsz > 0 {
			out = append(out, Range{s.vaddr - low, s.vaddr - low + s.memsz})
		}
	}
	return out
}

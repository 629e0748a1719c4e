package core

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// This file reads the structure of an ELF core file: its header, its
// program headers and its notes, from any writer (the kernel, gdb's
// gcore, procmem), of either class and byte order. It trusts nothing it
// reads: every offset and count is checked against the file's size before
// it is used, so a lying header gives an error, never a read past the end
// or an allocation larger than the file.

// ErrNotCore is wrapped by the errors of a file that is no ELF core.
var ErrNotCore = errors.New("not an ELF core file")

// maxNotes bounds the notes read into memory, whatever the file claims:
// the largest real ones, procmem's smaps of a process with 60,000
// mappings, are some 45 MB.
const maxNotes = 256 << 20

// elfCore is the structure of a core file.
type elfCore struct {
	class    elf.Class
	order    binary.ByteOrder
	machine  elf.Machine
	word     uint64    // 4 or 8, the size of the process's longs and pointers
	size     uint64    // the file's size
	end      uint64    // where the file would end if it held all its segments
	loads    []elfLoad // the PT_LOADs, in file order
	notes    []elfNote // every note of every PT_NOTE
	sections bool      // section headers beyond extended numbering: gdb's gcore writes them
	problems []string  // what was wrong but could be passed over
}

// elfLoad is one PT_LOAD.
type elfLoad struct {
	offset, vaddr, filesz, memsz uint64
	flags                        elf.ProgFlag
}

// elfNote is one note: its name without NULs, its type and description.
type elfNote struct {
	name string
	typ  uint32
	desc []byte
}

// readELF reads the structure of the core file f, of size bytes.
func readELF(f io.ReaderAt, size uint64) (*elfCore, error) {
	var ident [elf.EI_NIDENT]byte
	if size < elf.EI_NIDENT || readFull(f, ident[:], 0) != nil || string(ident[:4]) != elf.ELFMAG {
		return nil, fmt.Errorf("%w: no ELF header", ErrNotCore)
	}
	c := &elfCore{class: elf.Class(ident[elf.EI_CLASS]), size: size}
	switch elf.Data(ident[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		c.order = binary.LittleEndian
	case elf.ELFDATA2MSB:
		c.order = binary.BigEndian
	default:
		return nil, fmt.Errorf("%w: ELF byte order %d", ErrNotCore, ident[elf.EI_DATA])
	}
	var h elf.Header64
	switch c.class {
	case elf.ELFCLASS64:
		c.word = 8
		if err := c.read(f, &h, 0); err != nil {
			return nil, fmt.Errorf("%w: the ELF header is cut short", ErrNotCore)
		}
	case elf.ELFCLASS32:
		c.word = 4
		var h32 elf.Header32
		if err := c.read(f, &h32, 0); err != nil {
			return nil, fmt.Errorf("%w: the ELF header is cut short", ErrNotCore)
		}
		h = elf.Header64{Type: h32.Type, Machine: h32.Machine, Phoff: uint64(h32.Phoff), Shoff: uint64(h32.Shoff),
			Phentsize: h32.Phentsize, Phnum: h32.Phnum, Shentsize: h32.Shentsize, Shnum: h32.Shnum}
	default:
		return nil, fmt.Errorf("%w: ELF class %d", ErrNotCore, ident[elf.EI_CLASS])
	}
	if elf.Type(h.Type) != elf.ET_CORE {
		return nil, fmt.Errorf("%w: an ELF file of type %v", ErrNotCore, elf.Type(h.Type))
	}
	c.machine = elf.Machine(h.Machine)
	phnum, err := c.segmentCount(f, h)
	if err != nil {
		return nil, err
	}
	c.sections = h.Shnum > 1
	if err := c.readSegments(f, h.Phoff, uint64(h.Phentsize), phnum); err != nil {
		return nil, err
	}
	return c, nil
}

// segmentCount is the number of program headers: e_phnum, or with
// extended numbering (e_phnum PN_XNUM, which the kernel writes for more
// than 65,534 mappings) the sh_info of section header 0.
func (c *elfCore) segmentCount(f io.ReaderAt, h elf.Header64) (uint64, error) {
	if h.Phnum != 0xffff {
		return uint64(h.Phnum), nil
	}
	var info uint32
	var err error
	if c.class == elf.ELFCLASS64 {
		var sh elf.Section64
		err = c.readAt(f, &sh, h.Shoff, uint64(h.Shentsize))
		info = sh.Info
	} else {
		var sh elf.Section32
		err = c.readAt(f, &sh, h.Shoff, uint64(h.Shentsize))
		info = sh.Info
	}
	if err != nil {
		return 0, fmt.Errorf("%w: extended segment numbering without its section header", ErrNotCore)
	}
	return uint64(info), nil
}

// readSegments reads phnum program headers of phentsize bytes at phoff,
// and the notes of the PT_NOTEs.
func (c *elfCore) readSegments(f io.ReaderAt, phoff, phentsize, phnum uint64) error {
	want := uint64(binary.Size(elf.Prog64{}))
	if c.class == elf.ELFCLASS32 {
		want = uint64(binary.Size(elf.Prog32{}))
	}
	if phnum > 0 && phentsize != want {
		return fmt.Errorf("%w: program headers of %d bytes, not %d", ErrNotCore, phentsize, want)
	}
	if phoff > c.size || phnum > (c.size-phoff)/want {
		return fmt.Errorf("%w: %d program headers at %#x: past the end of the file", ErrNotCore, phnum, phoff)
	}
	table := make([]byte, phnum*want)
	if err := readFull(f, table, int64(phoff)); err != nil {
		return fmt.Errorf("reading the program headers: %w", err)
	}
	c.end = phoff + phnum*want
	var noteBytes uint64
	for i := range phnum {
		p := c.prog(table[i*want:])
		if end, ok := add(p.Off, p.Filesz); !ok {
			return fmt.Errorf("%w: segment %d at %#x of %#x bytes ends past 2^64", ErrNotCore, i, p.Off, p.Filesz)
		} else if p.Type == uint32(elf.PT_LOAD) || p.Type == uint32(elf.PT_NOTE) {
			c.end = max(c.end, end)
		}
		switch elf.ProgType(p.Type) {
		case elf.PT_LOAD:
			c.loads = append(c.loads, elfLoad{offset: p.Off, vaddr: p.Vaddr, filesz: p.Filesz, memsz: p.Memsz, flags: elf.ProgFlag(p.Flags)})
		case elf.PT_NOTE:
			n := min(p.Filesz, c.size-min(p.Off, c.size))
			if n < p.Filesz {
				c.problem("the notes at %#x are cut short: %d of %d bytes are in the file", p.Off, n, p.Filesz)
			}
			if noteBytes += n; noteBytes > maxNotes {
				return fmt.Errorf("%w: more than %d MiB of notes", ErrNotCore, maxNotes>>20)
			}
			b := make([]byte, n)
			if err := readFull(f, b, int64(p.Off)); err != nil {
				return fmt.Errorf("reading the notes: %w", err)
			}
			c.parseNotes(b)
		}
	}
	return nil
}

// prog decodes one program header.
func (c *elfCore) prog(b []byte) elf.Prog64 {
	o := c.order
	if c.class == elf.ELFCLASS64 {
		return elf.Prog64{Type: o.Uint32(b), Flags: o.Uint32(b[4:]), Off: o.Uint64(b[8:]), Vaddr: o.Uint64(b[16:]),
			Filesz: o.Uint64(b[32:]), Memsz: o.Uint64(b[40:])}
	}
	return elf.Prog64{Type: o.Uint32(b), Off: uint64(o.Uint32(b[4:])), Vaddr: uint64(o.Uint32(b[8:])),
		Filesz: uint64(o.Uint32(b[16:])), Memsz: uint64(o.Uint32(b[20:])), Flags: o.Uint32(b[24:])}
}

// parseNotes splits a PT_NOTE's bytes into notes: a header of three
// 32-bit words (name size, description size, type), the name and the
// description, each padded to 4 bytes. A note that runs past the end ends
// the list.
func (c *elfCore) parseNotes(b []byte) {
	for len(b) > 0 {
		if len(b) < 12 {
			c.problem("%d bytes after the last note", len(b))
			return
		}
		namesz, descsz := uint64(c.order.Uint32(b)), uint64(c.order.Uint32(b[4:]))
		typ := c.order.Uint32(b[8:])
		rest := uint64(len(b) - 12)
		nameEnd := align(namesz, 4)
		if nameEnd > rest || descsz > rest-nameEnd {
			c.problem("a note of type %#x runs past the end of its segment", typ)
			return
		}
		name := b[12 : 12+namesz]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		desc := b[12+nameEnd : 12+nameEnd+descsz]
		c.notes = append(c.notes, elfNote{name: string(name), typ: typ, desc: desc})
		b = b[12+nameEnd+min(align(descsz, 4), rest-nameEnd):]
	}
}

// read decodes a fixed-size structure at off.
func (c *elfCore) read(f io.ReaderAt, v any, off uint64) error {
	return c.readAt(f, v, off, uint64(binary.Size(v)))
}

// readAt decodes a fixed-size structure at off, which the file says is
// size bytes long (it must be at least as long as the structure).
func (c *elfCore) readAt(f io.ReaderAt, v any, off, size uint64) error {
	n := uint64(binary.Size(v))
	if size < n || off > c.size || n > c.size-off {
		return io.ErrUnexpectedEOF
	}
	b := make([]byte, n)
	if err := readFull(f, b, int64(off)); err != nil {
		return err
	}
	_, err := binary.Decode(b, c.order, v)
	return err
}

func (c *elfCore) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// readFull fills b from f at off.
func readFull(f io.ReaderAt, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// add returns a+b and whether it did not overflow.
func add(a, b uint64) (uint64, bool) { return a + b, a+b >= a }

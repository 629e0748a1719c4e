// Package core makes an ELF core file of a live process without stopping
// or tracing it, laid out as the kernel's own dumper lays one out
// (fs/binfmt_elf.c): the ELF header, the program headers, one PT_NOTE,
// then one page-aligned PT_LOAD per mapping. The headers and notes are
// made when the image is built; the memory is read through the memory
// layer, live, when the file is read, so a core costs nothing until read
// and pages without data are holes.
//
// Registers: a thread blocked in or out of a system call shows its stack
// pointer and program counter (and the call's number and arguments) in
// /proc/PID/task/TID/syscall; those go into its NT_PRSTATUS, every other
// register is zero, and so are all registers of a running thread. That is
// enough for a debugger to unwind the stack of a blocked thread.
package core

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"sort"
	"strings"
	"unsafe"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// ErrArch is returned on machines other than x86-64, whose notes procmem
// does not lay out.
var ErrArch = errors.New("core files are made for x86-64 processes only")

const (
	pageSize = 4096
	ehdrSize = 64
	phdrSize = 56
)

// Image is a core file of one process: its headers and notes, fixed, and
// its memory, read when asked for.
type Image struct {
	head    []byte          // ELF header, program headers, the notes up to smaps' text
	smaps   []byte          // the text of procmem's smaps note, the notes' last
	dataOff uint64          // where the data starts: the notes padded to a page
	loads   []load          // in address order
	regions []procfs.Region // the mappings the loads hold data of, whole, for the memory layer
	size    uint64
	image   procfs.Image // of the address space it was built from
}

// load is one PT_LOAD: a mapping, and how much of it the file holds.
type load struct {
	region procfs.Region
	offset uint64 // where its data starts in the file
	filesz uint64 // 0, one page (an ELF header) or the whole mapping
}

// Size is the core file's size.
func (im *Image) Size() uint64 { return im.size }

// Build makes the core image of process p, whose memory rd reads (and
// proves the right to read). If p execs meanwhile it fails with
// memory.ErrGone.
func Build(p *procfs.Process, rd *memory.Reader) (*Image, error) {
	if runtime.GOARCH != "amd64" {
		return nil, ErrArch
	}
	smaps, err := p.ReadFile("smaps")
	if err != nil {
		return nil, err
	}
	mappings, err := procfs.ParseSmaps(smaps)
	if err != nil {
		return nil, err
	}
	filter, err := p.DumpFilter()
	if err != nil {
		return nil, err
	}
	var loads []load
	for _, m := range mappings {
		if m.Unreadable() { // [vvar], [vsyscall]: the kernel leaves them out too
			continue
		}
		loads = append(loads, load{region: m.Region, filesz: dumpSize(m, filter, rd)})
	}
	// The head is written once, into one buffer that buildNotes sizes,
	// and smaps' text is served from where it was read: the notes of a
	// process with 60,000 mappings are some 45 MB, 27 of them its smaps,
	// and growing a buffer to that size, then copying it, cost more than
	// reading smaps did.
	notesOff := ehdrSize + (1+len(loads))*phdrSize
	head := bytes.NewBuffer(make([]byte, notesOff))
	if err := buildNotes(head, p, loads); err != nil {
		return nil, err
	}
	noteHeader(head, procmemName, ntProcmemSmaps, len(smaps))
	// All of it read with the rights of whoever holds p: it must be of the
	// address space rd was opened on (an exec in between makes another).
	if err := rd.SameImage(); err != nil {
		return nil, err
	}
	im := layout(loads, head.Bytes(), smaps, notesOff)
	im.image = rd.Image()
	return im, nil
}

// dumpSize is how much of mapping m a core holds, as the kernel's
// vma_dump_size decides it under coredump_filter f.
func dumpSize(m procfs.Mapping, f procfs.DumpFilter, rd *memory.Reader) uint64 {
	has := func(flag string) bool { return slices.Contains(m.VmFlags, flag) }
	whole := m.Size()
	switch {
	case has("dd"), has("io"): // VM_DONTDUMP, VM_IO
		return 0
	case m.Path == "[vdso]": // always dumped: debuggers unwind through it
		return whole
	case has("ht"):
		if m.Perms.Shared {
			return pick(f&procfs.DumpHugeShared != 0, whole)
		}
		return pick(f&procfs.DumpHugePrivate != 0, whole)
	case m.Perms.Shared:
		if anonShared(m) {
			return pick(f&procfs.DumpAnonShared != 0, whole)
		}
		return pick(f&procfs.DumpFileShared != 0, whole)
	}
	if anon, _ := m.Field("Anonymous"); anon > 0 || !fileBacked(m) {
		// Written pages (the kernel: an anon_vma), or no file at all.
		if f&procfs.DumpAnonPrivate != 0 {
			return whole
		}
		if !fileBacked(m) {
			return 0
		}
	}
	if f&procfs.DumpFilePrivate != 0 {
		return whole
	}
	if f&procfs.DumpELFHeaders != 0 && m.Offset == 0 && m.Perms.Read && elfHeader(m.Region, rd) {
		return pageSize
	}
	return 0
}

func pick(dump bool, size uint64) uint64 {
	if dump {
		return size
	}
	return 0
}

// fileBacked reports whether a mapping maps a file (not [heap], [stack],
// [anon:…] or nothing).
func fileBacked(m procfs.Mapping) bool { return m.Inode != 0 && !m.Pseudo() }

// anonShared reports whether a shared mapping is anonymous memory as the
// kernel counts it (its file has no links: shared anonymous memory,
// memfd, SysV shm, deleted files).
func anonShared(m procfs.Mapping) bool {
	return !fileBacked(m) || m.Deleted() || strings.HasPrefix(m.Path, "/memfd:") ||
		strings.HasPrefix(m.Path, "/SYSV") || strings.HasPrefix(m.Path, "/dev/zero")
}

// elfHeader reports whether a mapping starts with an ELF header, read
// without side effects.
func elfHeader(r procfs.Region, rd *memory.Reader) bool {
	var magic [4]byte
	g := rd.Region(r)
	defer g.Close()
	n, _ := g.ReadAt(magic[:], r.Start)
	return n == 4 && string(magic[:]) == "\x7fELF"
}

// layout places the headers, the notes and the data, each load's data at a
// page boundary after the last's. head holds the notes from notesOff on,
// but for the text of the last, smaps, and room for the headers before
// them, which layout fills in.
func layout(loads []load, head, smaps []byte, notesOff int) *Image {
	notesLen := uint64(len(head)-notesOff) + uint64(align4(len(smaps)))
	dataOff := align(uint64(notesOff)+notesLen, pageSize)
	off := dataOff
	for i := range loads {
		loads[i].offset = off
		off += loads[i].filesz
	}
	le := binary.LittleEndian
	// The ELF header: 64-bit, little-endian, ET_CORE, EM_X86_64.
	h := head[:ehdrSize]
	copy(h, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	clear(h[7:16])
	le.PutUint16(h[16:], 4)  // e_type
	le.PutUint16(h[18:], 62) // e_machine
	le.PutUint32(h[20:], 1)  // e_version
	le.PutUint64(h[24:], 0)  // e_entry
	le.PutUint64(h[32:], ehdrSize)
	le.PutUint64(h[40:], 0) // e_shoff
	le.PutUint32(h[48:], 0) // e_flags
	le.PutUint16(h[52:], ehdrSize)
	le.PutUint16(h[54:], phdrSize)
	le.PutUint16(h[56:], uint16(min(len(loads)+1, 0xffff)))
	clear(h[58:64]) // e_shentsize, e_shnum, e_shstrndx
	ph := head[ehdrSize:notesOff]
	phdr := func(typ, flags uint32, off, vaddr, filesz, memsz, align uint64) {
		le.PutUint32(ph[0:], typ)
		le.PutUint32(ph[4:], flags)
		le.PutUint64(ph[8:], off)
		le.PutUint64(ph[16:], vaddr)
		le.PutUint64(ph[24:], 0) // p_paddr
		le.PutUint64(ph[32:], filesz)
		le.PutUint64(ph[40:], memsz)
		le.PutUint64(ph[48:], align)
		ph = ph[phdrSize:]
	}
	phdr(4, 0, uint64(notesOff), 0, notesLen, 0, 0) // PT_NOTE
	for _, l := range loads {
		phdr(1, segmentFlags(l.region.Perms), l.offset, l.region.Start, l.filesz, l.region.Size(), pageSize) // PT_LOAD
	}
	// The regions stay whole: a read is clipped to what a load holds, but
	// the memory layer must see the mapping as maps shows it, or it finds
	// no map_files entry for it and reads the file through the target.
	var regions []procfs.Region
	for _, l := range loads {
		if l.filesz > 0 {
			regions = append(regions, l.region)
		}
	}
	return &Image{head: head, smaps: smaps, dataOff: dataOff, loads: loads, regions: regions, size: off}
}

// readHead fills b with the headers and notes at off, below dataOff: the
// head, then smaps' text, then zeros.
func (im *Image) readHead(b []byte, off uint64) int {
	b = b[:min(uint64(len(b)), im.dataOff-off)]
	n := 0
	for _, piece := range [][]byte{im.head, im.smaps} {
		if off < uint64(len(piece)) {
			n += copy(b[n:], piece[off:])
			off = 0
		} else {
			off -= uint64(len(piece))
		}
	}
	clear(b[n:])
	return len(b)
}

func align(n, to uint64) uint64 { return (n + to - 1) / to * to }

// segmentFlags are PF_R, PF_W, PF_X of a mapping's permissions.
func segmentFlags(p procfs.Perms) uint32 {
	var f uint32
	if p.Read {
		f |= 4
	}
	if p.Write {
		f |= 2
	}
	if p.Exec {
		f |= 1
	}
	return f
}

// ReadAt fills b with the core file at off: the headers and notes as
// built, the memory as it is now, through rd. A page that cannot be read
// (a guard page, a shared mapping past the end of its file) is zeros, as
// the kernel's dumper writes it; a read fails only when nothing of it
// could be read for another reason (the process is gone).
func (im *Image) ReadAt(rd *memory.Reader, b []byte, off uint64) (int, error) {
	if off >= im.size {
		return 0, nil
	}
	b = b[:min(uint64(len(b)), im.size-off)]
	done := 0
	if off < im.dataOff {
		done = im.readHead(b, off)
	}
	for done < len(b) {
		at := off + uint64(done)
		l := im.loadAt(at)
		addr := l.region.Start + (at - l.offset)
		part := b[done:min(uint64(len(b)), uint64(done)+l.offset+l.filesz-at)]
		n, err := rd.ReadSpan(im.regions, part, addr)
		if n == 0 && memory.Classify(err) == memory.Unreadable {
			n = int(min(uint64(len(part)), pageSize-addr%pageSize))
			clear(part[:n])
		} else if n == 0 {
			if done > 0 {
				return done, nil
			}
			return 0, cmp.Or(err, io.ErrNoProgress)
		}
		done += n
	}
	return done, nil
}

// loadAt returns the load whose data holds file offset at (past the head).
func (im *Image) loadAt(at uint64) load {
	i := sort.Search(len(im.loads), func(i int) bool { return im.loads[i].offset+im.loads[i].filesz > at })
	return im.loads[i]
}

// Seek returns the first offset at or after off that starts data, or with
// hole set a hole, as a region file's Seek does; the headers are data.
func (im *Image) Seek(rd *memory.Reader, off uint64, hole bool) (uint64, bool, error) {
	if off < im.dataOff {
		if !hole {
			return off, true, nil
		}
		off = im.dataOff
	}
	for off < im.size {
		l := im.loadAt(off)
		addr := l.region.Start + (off - l.offset)
		end := l.region.Start + l.filesz
		at, ok, err := rd.SeekSpan(im.regions, addr, end, hole)
		if err != nil {
			return 0, false, err
		}
		if ok && (!hole || at < end) {
			return l.offset + (at - l.region.Start), true, nil
		}
		off = l.offset + l.filesz
	}
	if hole {
		return im.size, true, nil
	}
	return 0, false, nil
}

// Of reports whether the image was built from the address space rd reads.
func (im *Image) Of(rd *memory.Reader) bool {
	return im.image == rd.Image() && rd.SameImage() == nil
}

// Footprint is about how many bytes the image holds in memory: its
// headers and notes, and what it keeps of each mapping.
func (im *Image) Footprint() int64 {
	return int64(len(im.head)+len(im.smaps)) + int64(len(im.loads)+len(im.regions))*int64(unsafe.Sizeof(load{}))
}

package core

import (
	"bytes"
	"debug/elf"
	"sort"
	"strings"

	"github.com/procmem/procmem/procfs"
)

// This file decodes what a core's notes tell: the process (NT_PRPSINFO),
// its threads (NT_PRSTATUS), the signal it died of (NT_SIGINFO), its
// auxiliary vector (NT_AUXV), its mapped files (NT_FILE) and, in cores
// procmem wrote, its smaps. Layouts are those of Linux's elf_prpsinfo,
// elf_prstatus and siginfo_t for the core's word size; a note whose size
// fits no layout is passed over and said so.

// Process is what NT_PRPSINFO tells of the process.
type Process struct {
	PID, PPID, PGRP, SID int
	UID, GID             uint32
	State                byte   // as ps shows it: R, S, D, T, Z, W
	Name                 string // the command name (comm), at most 15 bytes
	Args                 string // the command line, its arguments joined by spaces, at most 79 bytes
}

// Thread is what one NT_PRSTATUS tells of a thread.
type Thread struct {
	TID       int
	Signal    int      // the signal pending for it when the core was written (pr_cursig)
	Registers []uint64 // the general registers, in the order of Capture.RegisterNames
}

// Signal is what NT_SIGINFO tells of the signal the process died of.
type Signal struct {
	Number, Code, Errno int
	Addr                uint64 // the faulting address, for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP
	SenderPID           int    // who sent it, for a signal sent with kill, tkill or sigqueue
	SenderUID           uint32
}

// HasAddr reports whether the signal carries a faulting address.
func (s Signal) HasAddr() bool {
	switch s.Number {
	case 4, 5, 7, 8, 11: // SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV
		return s.Code > 0
	}
	return false
}

// Sent reports whether a process sent the signal (kill, tkill, sigqueue).
func (s Signal) Sent() bool { return s.Code == 0 || s.Code == -1 || s.Code == -6 }

// AuxEntry is one entry of the auxiliary vector.
type AuxEntry struct{ Type, Value uint64 }

// MappedFile is one entry of NT_FILE: a mapping of a file.
type MappedFile struct {
	Start, End uint64
	Offset     uint64 // in the file, in bytes
	Path       string
}

// facts is what the notes told.
type facts struct {
	process    Process
	hasProcess bool
	threads    []Thread
	signal     Signal
	hasSignal  bool
	auxv       []AuxEntry
	files      []MappedFile // in address order
	smaps      []byte       // procmem's own note
	procmem    bool
}

// readFacts decodes the notes of c.
func readFacts(c *elfCore) facts {
	var f facts
	for _, n := range c.notes {
		if n.name == procmemName && n.typ == ntProcmemSmaps {
			f.smaps, f.procmem = n.desc, true
			continue
		}
		if n.name != "CORE" {
			continue
		}
		switch n.typ {
		case ntPrstatus:
			if t, ok := c.prstatus(n.desc); ok {
				f.threads = append(f.threads, t)
			}
		case ntPrpsinfo:
			f.process, f.hasProcess = c.prpsinfo(n.desc)
		case ntAuxv:
			f.auxv = c.auxv(n.desc)
		case ntFile:
			f.files = c.fileNote(n.desc)
		case ntSiginfo:
			f.signal, f.hasSignal = c.siginfo(n.desc)
		}
	}
	return f
}

// word reads the process's word (long, pointer) at off.
func (c *elfCore) wordAt(b []byte, off uint64) uint64 {
	if c.word == 4 {
		return uint64(c.order.Uint32(b[off:]))
	}
	return c.order.Uint64(b[off:])
}

func (c *elfCore) int32At(b []byte, off uint64) int { return int(int32(c.order.Uint32(b[off:]))) }

// prstatus decodes an elf_prstatus: elf_siginfo (three ints), pr_cursig
// (a short), pr_sigpend and pr_sighold (longs), four pids, four timevals
// (two longs each), the registers, and pr_fpvalid (an int, padded to a
// long).
func (c *elfCore) prstatus(b []byte) (Thread, bool) {
	w := c.word
	regsAt := 32 + 10*w
	if uint64(len(b)) < regsAt+w {
		c.problem("an NT_PRSTATUS of %d bytes: too short for its registers", len(b))
		return Thread{}, false
	}
	t := Thread{TID: c.int32At(b, 16+2*w), Signal: int(int16(c.order.Uint16(b[12:])))}
	regs := (uint64(len(b)) - regsAt - w) / w
	for i := range regs {
		t.Registers = append(t.Registers, c.wordAt(b, regsAt+i*w))
	}
	return t, true
}

// prpsinfo decodes an elf_prpsinfo. Its size tells the layout: 136 bytes
// for 64-bit processes, 124 for 32-bit ones with 16-bit user ids (x86,
// ARM), 128 for 32-bit ones with 32-bit ids.
func (c *elfCore) prpsinfo(b []byte) (Process, bool) {
	var p Process
	var idsAt, fnameAt uint64
	switch len(b) {
	case 136:
		p.UID, p.GID = c.order.Uint32(b[16:]), c.order.Uint32(b[20:])
		idsAt, fnameAt = 24, 40
	case 124:
		p.UID, p.GID = uint32(c.order.Uint16(b[8:])), uint32(c.order.Uint16(b[10:]))
		idsAt, fnameAt = 12, 28
	case 128:
		p.UID, p.GID = c.order.Uint32(b[8:]), c.order.Uint32(b[12:])
		idsAt, fnameAt = 16, 32
	default:
		c.problem("an NT_PRPSINFO of %d bytes: a layout procmem does not know", len(b))
		return Process{}, false
	}
	p.State = b[1]
	p.PID, p.PPID = c.int32At(b, idsAt), c.int32At(b, idsAt+4)
	p.PGRP, p.SID = c.int32At(b, idsAt+8), c.int32At(b, idsAt+12)
	p.Name = cString(b[fnameAt : fnameAt+16])
	p.Args = strings.TrimRight(cString(b[fnameAt+16:fnameAt+96]), " ")
	return p, true
}

// siginfo decodes the first fields of a siginfo_t: si_signo, si_errno,
// si_code, then (aligned to a pointer) the fault address, or the
// sender's pid and uid.
func (c *elfCore) siginfo(b []byte) (Signal, bool) {
	at := align(12, c.word)
	if uint64(len(b)) < at+c.word {
		c.problem("an NT_SIGINFO of %d bytes: too short", len(b))
		return Signal{}, false
	}
	s := Signal{Number: c.int32At(b, 0), Errno: c.int32At(b, 4), Code: c.int32At(b, 8)}
	switch {
	case s.HasAddr():
		s.Addr = c.wordAt(b, at)
	case s.Sent():
		s.SenderPID, s.SenderUID = c.int32At(b, at), c.order.Uint32(b[at+4:])
	}
	return s, true
}

// auxv decodes the auxiliary vector up to AT_NULL.
func (c *elfCore) auxv(b []byte) []AuxEntry {
	var entries []AuxEntry
	for at := uint64(0); at+2*c.word <= uint64(len(b)); at += 2 * c.word {
		e := AuxEntry{c.wordAt(b, at), c.wordAt(b, at+c.word)}
		if e.Type == 0 { // AT_NULL
			break
		}
		entries = append(entries, e)
	}
	return entries
}

// fileNote decodes NT_FILE: a count and a page size, count entries of
// three words (start, end, offset in pages), then count NUL-terminated
// paths. A note that does not hold what it counts is passed over whole.
func (c *elfCore) fileNote(b []byte) []MappedFile {
	w := c.word
	size := uint64(len(b))
	if size < 2*w {
		c.problem("an NT_FILE of %d bytes: too short", size)
		return nil
	}
	count, page := c.wordAt(b, 0), c.wordAt(b, w)
	if count > (size-2*w)/(3*w) {
		c.problem("an NT_FILE of %d bytes counts %d files", size, count)
		return nil
	}
	if page == 0 || page&(page-1) != 0 {
		c.problem("an NT_FILE with pages of %d bytes", page)
		return nil
	}
	names := b[2*w+count*3*w:]
	files := make([]MappedFile, 0, count)
	for i := range count {
		e := 2*w + i*3*w
		nul := bytes.IndexByte(names, 0)
		if nul < 0 {
			c.problem("an NT_FILE with %d paths for %d files", i, count)
			return nil
		}
		f := MappedFile{Start: c.wordAt(b, e), End: c.wordAt(b, e+w), Path: string(names[:nul])}
		names = names[nul+1:]
		pgoff := c.wordAt(b, e+2*w)
		if f.Start >= f.End || pgoff > ^uint64(0)/page {
			c.problem("an NT_FILE entry %#x-%#x at page %#x of %s", f.Start, f.End, pgoff, f.Path)
			continue
		}
		f.Offset = pgoff * page
		files = append(files, f)
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].Start < files[j].Start })
	return files
}

// cString is b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// registerNames are the names of the general registers of NT_PRSTATUS
// for the machines procmem knows: user_regs_struct of x86-64 and i386.
func registerNames(m elf.Machine) []string {
	switch m {
	case elf.EM_X86_64:
		return []string{"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
			"rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs"}
	case elf.EM_386:
		return []string{"ebx", "ecx", "edx", "esi", "edi", "ebp", "eax", "ds", "es", "fs", "gs", "orig_eax",
			"eip", "cs", "eflags", "esp", "ss"}
	}
	return nil
}

// smapsMappings parses procmem's smaps note; a note that does not parse
// is passed over, and the regions are named as in any core.
func (c *elfCore) smapsMappings(text []byte) []procfs.Mapping {
	mappings, err := procfs.ParseSmaps(text)
	if err != nil {
		c.problem("procmem's smaps note: %v", err)
		return nil
	}
	return mappings
}

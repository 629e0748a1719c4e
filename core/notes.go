package core

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/procmem/procmem/procfs"
)

// The notes, in the kernel's order: for the first thread NT_PRSTATUS,
// NT_PRPSINFO, NT_SIGINFO, NT_AUXV, NT_FILE and NT_FPREGSET; for each
// other thread NT_PRSTATUS and NT_FPREGSET. Structures as x86-64 Linux lays
// them out (elf_prstatus, elf_prpsinfo, user_regs_struct, user_i387_struct).
// Last, a note of procmem's own, which debuggers pass over (see
// ntProcmemSmaps).

const (
	ntPrstatus = 1
	ntFpregset = 2
	ntPrpsinfo = 3
	ntAuxv     = 6
	ntSiginfo  = 0x53494749
	ntFile     = 0x46494c45

	// ntProcmemSmaps, in a note named PROCMEM, is /proc/PID/smaps as the
	// process had it when its core was built, which tells what a kernel
	// core does not: [heap] and [stack], shared or private, the file's
	// offset, device and inode, and every smaps field. Its number spells
	// "SMAP" as NT_FILE spells "FILE": a type no reader of notes named
	// CORE or LINUX knows, since BFD (gdb, readelf) hands notes of unknown
	// names to its CORE parser, which would take a type 1 for NT_PRSTATUS.
	ntProcmemSmaps = 0x534d4150
	procmemName    = "PROCMEM"

	fpregsetSize = 512 // user_i387_struct
	siginfoSize  = 128 // siginfo_t

	// sigtrap is the signal the core says stopped its first thread. None
	// did: the process was never stopped. But lldb wants a thread stopped
	// by a signal: with none in the notes it makes up SIGSTOP, which says
	// the process was stopped, and with one it does not stop for (SIGCONT)
	// it waits for ever. SIGTRAP is the debugger's own, a breakpoint's; it
	// goes in NT_SIGINFO only, and pr_cursig stays 0, so gdb says nothing
	// of a signal.
	sigtrap = 5
)

// The x86-64 user_regs_struct, in order.
const (
	regR15 = iota
	regR14
	regR13
	regR12
	regRBP
	regRBX
	regR11
	regR10
	regR9
	regR8
	regRAX
	regRCX
	regRDX
	regRSI
	regRDI
	regOrigRAX
	regRIP
	regCS
	regEFLAGS
	regRSP
	regSS
	regFSBase
	regGSBase
	regDS
	regES
	regFS
	regGS
	regCount
)

// buildNotes appends to b what the notes tell of process p: its threads'
// states, its identity, its auxiliary vector and its mapped files.
func buildNotes(b *bytes.Buffer, p *procfs.Process, loads []load) error {
	st, err := p.Stat()
	if err != nil {
		return err
	}
	status, err := p.Status()
	if err != nil {
		return err
	}
	args, err := p.Cmdline()
	if err != nil {
		return err
	}
	auxv, err := p.Auxv()
	if err != nil {
		return err
	}
	tids, err := p.Threads()
	if err != nil {
		return err
	}
	files := fileNote(loads)
	// Room for all of it at once: a thread's notes (prstatus, fpregset)
	// take under 1 KiB, the first's others (prpsinfo, siginfo, the header
	// of the smaps note that follows) 4 KiB.
	b.Grow(len(tids)<<10 + 4<<10 + len(auxv) + len(files))
	for i, tid := range tids {
		ts, err := p.ThreadState(tid)
		if err != nil {
			if i == 0 {
				return err
			}
			continue // a thread that ended meanwhile
		}
		note(b, ntPrstatus, prstatus(tid, st, ts))
		if i == 0 {
			note(b, ntPrpsinfo, prpsinfo(st, status, args))
			note(b, ntSiginfo, siginfo(sigtrap))
			note(b, ntAuxv, auxv)
			note(b, ntFile, files)
		}
		note(b, ntFpregset, make([]byte, fpregsetSize))
	}
	return nil
}

// note appends one note named CORE.
func note(b *bytes.Buffer, typ uint32, desc []byte) { namedNote(b, "CORE", typ, desc) }

// namedNote appends one note: its name NUL-terminated, name and
// description each padded to 4 bytes.
func namedNote(b *bytes.Buffer, name string, typ uint32, desc []byte) {
	noteHeader(b, name, typ, len(desc))
	b.Write(desc)
	b.Write(make([]byte, align4(len(desc))-len(desc)))
}

// noteHeader appends a note's header and name, for a description of size
// bytes to follow.
func noteHeader(b *bytes.Buffer, name string, typ uint32, size int) {
	le := binary.LittleEndian
	binary.Write(b, le, [3]uint32{uint32(len(name) + 1), uint32(size), typ})
	b.WriteString(name)
	b.Write(make([]byte, align4(len(name)+1)-len(name)))
}

func align4(n int) int { return (n + 3) &^ 3 }

// prstatus is an elf_prstatus of thread tid: its ids, and the registers
// its syscall file shows (zeros for a running thread).
func prstatus(tid int, st procfs.Stat, ts procfs.ThreadState) []byte {
	var regs [regCount]uint64
	if !ts.Running {
		regs[regRSP], regs[regRIP] = ts.SP, ts.PC
		regs[regCS], regs[regSS] = 0x33, 0x2b // the user code and stack segments
		if ts.InCall {
			regs[regOrigRAX] = uint64(ts.Nr)
			regs[regRDI], regs[regRSI], regs[regRDX] = ts.Args[0], ts.Args[1], ts.Args[2]
			regs[regR10], regs[regR8], regs[regR9] = ts.Args[3], ts.Args[4], ts.Args[5]
		} else {
			regs[regOrigRAX] = ^uint64(0) // -1: not in a system call
		}
	}
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write(make([]byte, 32)) // pr_info, pr_cursig, pr_sigpend, pr_sighold
	binary.Write(&b, le, [4]int32{int32(tid), int32(st.PPID), int32(st.PGRP), int32(st.SID)})
	b.Write(make([]byte, 64)) // pr_utime, pr_stime, pr_cutime, pr_cstime
	binary.Write(&b, le, regs)
	b.Write(make([]byte, 8)) // pr_fpvalid and padding
	return b.Bytes()
}

// siginfo is a siginfo_t of signal signo with nothing else in it (si_code
// SI_USER, from pid 0).
func siginfo(signo int32) []byte {
	b := make([]byte, siginfoSize)
	binary.LittleEndian.PutUint32(b, uint32(signo))
	return b
}

// prpsinfo is the process's elf_prpsinfo.
func prpsinfo(st procfs.Stat, status procfs.Status, args []string) []byte {
	const states = "RSDTZW"
	state := strings.IndexByte(states, st.State)
	sname := st.State
	if state < 0 {
		state, sname = 6, '.'
	}
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{byte(state), sname, 0, 0, 0, 0, 0, 0}) // pr_state, pr_sname, pr_zomb, pr_nice, padding
	binary.Write(&b, le, uint64(0))                       // pr_flag
	binary.Write(&b, le, [2]uint32{status.Uid[0], status.Gid[0]})
	binary.Write(&b, le, [4]int32{int32(st.PID), int32(st.PPID), int32(st.PGRP), int32(st.SID)})
	var fname [16]byte
	copy(fname[:15], st.Comm)
	b.Write(fname[:])
	var psargs [80]byte
	copy(psargs[:79], strings.Join(args, " "))
	b.Write(psargs[:])
	return b.Bytes()
}

// fileNote is NT_FILE: each mapping of a file, with its offset in pages,
// then the files' names, so a debugger finds the shared libraries and
// checks their build ids.
func fileNote(loads []load) []byte {
	var entries, names bytes.Buffer
	le := binary.LittleEndian
	count := 0
	for _, l := range loads {
		r := l.region
		if r.Inode == 0 || r.Pseudo() || !strings.HasPrefix(r.Path, "/") {
			continue
		}
		binary.Write(&entries, le, [3]uint64{r.Start, r.End, r.Offset / pageSize})
		names.WriteString(r.Path)
		names.WriteByte(0)
		count++
	}
	var b bytes.Buffer
	binary.Write(&b, le, [2]uint64{uint64(count), pageSize})
	b.Write(entries.Bytes())
	b.Write(names.Bytes())
	return b.Bytes()
}

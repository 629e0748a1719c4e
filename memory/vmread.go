package memory

// This file reads resident memory with process_vm_readv(2) where that is
// safe, and /proc/PID/mem where it is not.
//
// A read of /proc/PID/mem copies every page twice: from the target into a
// kernel bounce page, then out to the reader. process_vm_readv copies once,
// straight from the target's pages, and reads large ranges in 10-20% less
// time (BenchmarkRead: the kernel still pins and walks page by page).
// It is weaker in three ways, which decide how procmem uses it:
//
//   - it addresses a PID, not the address space mem was opened on: after
//     an exec it reads the new image, and once the PID is reused, another
//     process;
//   - it does not force access: pages the process itself may not read fail
//     with EFAULT;
//   - it faults absent pages in, and waits on userfaultfd, where mem fails:
//     a page of a userfaultfd region that is dropped between the scan and
//     the read would hold the reading thread for as long as nobody answers
//     the fault, so such regions are never read with it.
//
// So it reads only pages the page tables show resident (resident
// segments of a layout: only a page discarded in the microseconds between
// the scan and the read is faulted in), and only in large reads, where it
// pays for the check; and it is checked after
// every read: the process must still be the one mem was opened on (its
// stat file, opened through the Reader's pin of the process directory,
// fails once it is gone) and must still run the image it ran then (the Image of its stat,
// which every exec sets anew). If anything differs or fails, the bytes
// are thrown away and the read goes to /proc/PID/mem, which knows.
//
// An exec alone needs none of this: the old address space dies with it,
// and the layout's page-table scan, bound to that address space, fails
// before anything is read. The check is for an exec racing with a read,
// and for one while a process created with CLONE_VM (a vfork child) keeps
// the old address space alive. What it cannot tell apart: with address
// space randomization off (setarch -R, gdb), the same program exec'd again
// with the same arguments and environment gets the same addresses; if a
// CLONE_VM process also holds the old address space, large reads then show
// the new image of that same program.

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/procfs"
)

// iovMax is how many pieces one process_vm_readv takes (UIO_MAXIOV).
const iovMax = 1024

// vmReadMin is the smallest read worth process_vm_readv and its check.
const vmReadMin = 128 << 10

// vmReader reads one process's resident memory with process_vm_readv.
type vmReader struct {
	pid      int
	parallel int             // threads a large read is split between (SetParallel); 1 or less: none
	proc     *procfs.Process // the Reader's pin: its stat fails once the process is gone
	image    procfs.Image    // the image mem was opened on

	once sync.Once
	stat *procfs.StatFile // held open from the first fast read on; nil if it could not be
}

// newVMReader prepares a vmReader for the process, before its mem is
// opened (see Open); nil if the image cannot be told.
func newVMReader(p *procfs.Process) *vmReader {
	st, err := p.Stat()
	if err != nil || !st.Image.Known() {
		return nil
	}
	return &vmReader{pid: p.PID, proc: p, image: st.Image}
}

func (v *vmReader) close() {
	if v != nil && v.stat != nil {
		v.stat.Close()
	}
}

// current reads the image the process runs now. Small reads, the most
// frequent, never need it, so the stat file is opened at the first large
// one and then kept.
func (v *vmReader) current() (procfs.Image, error) {
	v.once.Do(func() { v.stat, _ = v.proc.OpenStat() })
	if v.stat == nil {
		return procfs.Image{}, ErrGone
	}
	s, err := v.stat.Read()
	return s.Image, err
}

// same reports whether the process still runs the image v was made for.
func (v *vmReader) same() bool {
	im, err := v.current()
	return err == nil && im == v.image
}

// read fills the parts of b at the segments' addresses (b holds memory from
// addr on) with process_vm_readv, and reports whether all of it came from
// the image mem was opened on. If not, b holds nothing to trust. A large
// read is split into shares copied at once on several threads (split).
func (v *vmReader) read(b []byte, addr uint64, segs []segment) bool {
	if len(segs) > iovMax {
		return false
	}
	total := uint64(0)
	for _, s := range segs {
		total += s.end - s.start
	}
	n := min(uint64(v.parallel), total/vmSplitMin)
	if n <= 1 { // the daemon's default: one copy, nothing more on the read path
		return v.readSegs(b, addr, segs) && v.same()
	}
	shares := split(segs, n)
	ok := make([]bool, len(shares))
	var wg sync.WaitGroup
	for i := 1; i < len(shares); i++ {
		wg.Go(func() { ok[i] = v.readSegs(b, addr, shares[i]) })
	}
	ok[0] = v.readSegs(b, addr, shares[0])
	wg.Wait()
	for _, o := range ok {
		if !o {
			return false
		}
	}
	return v.same()
}

// vmSplitMin is the least a share of a split copy is given: below it,
// handing work to another thread costs more than the copy it saves.
const vmSplitMin = 256 << 10

// split cuts segs into at most n shares of about the same size, at page
// boundaries, in address order.
func split(segs []segment, n uint64) [][]segment {
	if n <= 1 {
		return [][]segment{segs}
	}
	total := uint64(0)
	for _, s := range segs {
		total += s.end - s.start
	}
	share := (total/n + pageSize - 1) &^ (pageSize - 1)
	var out [][]segment
	var cur []segment
	left := share
	for _, s := range segs {
		for s.start < s.end {
			take := min(s.end-s.start, left)
			cur = append(cur, segment{s.start, s.start + take, s.kind})
			s.start += take
			if left -= take; left == 0 && uint64(len(out)) < n-1 {
				out, cur, left = append(out, cur), nil, share
			}
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// readSegs reads the segments into b (which holds memory from addr on) in
// one process_vm_readv, and reports whether all came.
func (v *vmReader) readSegs(b []byte, addr uint64, segs []segment) bool {
	local := make([]unix.Iovec, len(segs))
	remote := make([]unix.RemoteIovec, len(segs))
	total := 0
	for i, s := range segs {
		part := b[s.start-addr : s.end-addr]
		local[i] = unix.Iovec{Base: unsafe.SliceData(part), Len: uint64(len(part))}
		remote[i] = unix.RemoteIovec{Base: uintptr(s.start), Len: len(part)}
		total += len(part)
	}
	return v.readv(local, remote, total)
}

// readv is one process_vm_readv of total bytes; it reports whether all
// came. Whether they came from the right image is for the caller to check
// (same).
func (v *vmReader) readv(local []unix.Iovec, remote []unix.RemoteIovec, total int) bool {
	n, err := unix.ProcessVMReadv(v.pid, local, remote, 0)
	return err == nil && n == total
}

// readResident reads the resident segments of segs into b (which holds
// memory from addr on) with process_vm_readv, if there is enough of them
// to be worth it, and reports whether it did.
// safe tells whether the pages may be read so: a fault there must not wait.
func (v *vmReader) readResident(b []byte, addr uint64, segs []segment, safe func() bool) bool {
	if v == nil {
		return false
	}
	total, n := uint64(0), 0
	for _, s := range segs {
		if s.kind == resident {
			total += s.end - s.start
			n++
		}
	}
	if total < vmReadMin || !safe() {
		return false // small reads, the most frequent, allocate nothing here
	}
	pieces := make([]segment, 0, n)
	for _, s := range segs {
		if s.kind == resident {
			pieces = append(pieces, s)
		}
	}
	return v.read(b, addr, pieces)
}

package memory

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Piece is one stretch of memory to read with ReadPieces: B is filled from
// Addr on, and N tells how much of it could be read.
type Piece struct {
	Addr uint64
	B    []byte
	N    int // the bytes before the first page that could not be read
}

// ReadPieces reads many small stretches of the region, as ReadAt reads
// each (holes as zeros, the process left alone), in few system calls: one
// look at the page tables for them all, and one process_vm_readv for the
// resident parts of up to 1024 of them. It is how a value scan reads its
// matches again: values scattered across a region.
//
// The pieces must lie inside the region, in address order, without
// overlapping. A piece that cannot be read, or only in part, gets an N
// below len(B); only an address space that is gone fails the whole, with
// ErrGone.
func (g *Region) ReadPieces(ps []Piece) error {
	if len(ps) == 0 {
		return nil
	}
	r := g.layout.region
	lo, hi := ps[0].Addr, ps[len(ps)-1].Addr+uint64(len(ps[len(ps)-1].B))
	if lo < r.Start || hi > r.End || hi < lo {
		return fmt.Errorf("0x%x-0x%x: %w", lo, hi, ErrOutOfRange)
	}
	segs, err := g.layout.segments(lo, hi)
	if err != nil {
		if Classify(err) == Gone {
			return ErrGone
		}
		segs = []segment{{lo, hi, data}} // the layout is a refinement
	}
	if !fromProcess(segs) {
		if err := g.layout.alive(); err != nil {
			return err
		}
	}

	// Each piece's own segments, one after the other in all; first[i] is
	// where piece i's begin.
	all := make([]segment, 0, len(ps)+len(segs))
	first := make([]int, len(ps)+1)
	j := 0
	for i, p := range ps {
		first[i] = len(all)
		end := p.Addr + uint64(len(p.B))
		for j < len(segs) && segs[j].end <= p.Addr {
			j++
		}
		mine := len(all)
		for k := j; k < len(segs) && segs[k].start < end; k++ {
			s := segs[k]
			all = append(all, segment{max(s.start, p.Addr), min(s.end, end), s.kind})
		}
		// A hole unmapped since maps was read reads as nothing, not zeros.
		cut, err := g.rd.mappedPart(all[mine:], p.Addr)
		if err != nil {
			cut = nil
		}
		all = all[:mine+len(cut)]
	}
	first[len(ps)] = len(all)

	fast := g.readResidentPieces(ps, all, first)
	for i := range ps {
		p := &ps[i]
		segs := all[first[i]:first[i+1]]
		if len(segs) == 0 {
			p.N = 0
			continue
		}
		n, err := g.rd.fillSegments(p.B[:segs[len(segs)-1].end-p.Addr], p.Addr, segs, g.layout, fast[i])
		if Classify(err) == Gone {
			return ErrGone
		}
		p.N = n
	}
	return nil
}

// readResidentPieces reads the resident segments of the pieces with
// process_vm_readv, 1024 at a time, where that is safe, and reports for
// each piece whether its resident segments were read so.
func (g *Region) readResidentPieces(ps []Piece, all []segment, first []int) []bool {
	fast := make([]bool, len(ps))
	v := g.rd.vm
	if v == nil || g.rd.faultsWait(g.layout.region) {
		return fast
	}
	local := make([]unix.Iovec, 0, iovMax)
	remote := make([]unix.RemoteIovec, 0, iovMax)
	read := false
	from, total := 0, 0 // the pieces of the batch being gathered
	flush := func(to int) {
		ok := len(local) == 0 || v.readv(local, remote, total)
		for i := from; i < to; i++ {
			fast[i] = ok
		}
		read = read || ok && len(local) > 0
		local, remote, from, total = local[:0], remote[:0], to, 0
	}
	for i, p := range ps {
		segs := all[first[i]:first[i+1]]
		n := 0
		for _, s := range segs {
			if s.kind == resident {
				n++
			}
		}
		if len(local)+n > iovMax {
			flush(i)
		}
		if n > iovMax {
			from = i + 1 // too scattered for one call: read with mem
			continue
		}
		for _, s := range segs {
			if s.kind != resident {
				continue
			}
			part := p.B[s.start-p.Addr : s.end-p.Addr]
			local = append(local, unix.Iovec{Base: unsafe.SliceData(part), Len: uint64(len(part))})
			remote = append(remote, unix.RemoteIovec{Base: uintptr(s.start), Len: len(part)})
			total += len(part)
		}
	}
	flush(len(ps))
	// Whatever came must come from the image mem was opened on.
	if read && !v.same() {
		clear(fast)
	}
	return fast
}

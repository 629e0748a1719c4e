package memory

import (
	"sort"

	"github.com/procmem/procmem/procfs"
)

// The whole address space read as one range, offset = address: what the
// filesystem's "mem" serves. The regions come from a reading of maps (in
// address order); the gaps between them are holes, read as zeros. Each
// region is read as a region file reads it, so holes, the fast path and
// unreadable pages are decided where they always are.

// ReadSpan fills b with the memory at addr across regions: the regions'
// memory as Region.ReadAt reads it, zeros for the gaps. The regions are a
// reading of maps, which may be a little old: what the kernel no longer
// maps reads as a gap too. Like a region file, it returns the bytes before
// the first page that cannot be read, and that error if it is the first.
func (rd *Reader) ReadSpan(regions []procfs.Region, b []byte, addr uint64) (int, error) {
	end := addr + uint64(len(b))
	for at := addr; at < end; {
		r, mapped := regionAt(regions, at)
		stop := end
		switch {
		case mapped:
			stop = min(end, r.End)
			stop, mapped = rd.stillMapped(at, stop)
		case r.End != 0: // a gap up to the next region
			stop = min(end, r.Start)
		}
		part := b[at-addr : stop-addr]
		if !mapped {
			clear(part)
			at = stop
			continue
		}
		g := rd.Region(r)
		n, err := g.ReadAt(part, at)
		g.Close()
		at += uint64(n)
		if err != nil || n < len(part) {
			if at > addr {
				return int(at - addr), nil
			}
			return 0, err
		}
	}
	return len(b), nil
}

// stillMapped tells how much of [at, stop), which a reading of maps had
// mapped, the kernel maps now: up to the returned address, it is (mapped)
// or is not. When it cannot be told, all of it is.
func (rd *Reader) stillMapped(at, stop uint64) (uint64, bool) {
	q, err := rd.mapsQuery()
	if err != nil {
		return stop, true
	}
	vs, ve, ok, err := q.Next(at)
	switch {
	case err != nil:
		return stop, true
	case !ok || vs >= stop:
		return stop, false
	case vs > at:
		return vs, false
	}
	return min(stop, ve), true
}

// regionAt returns the region that holds addr (ok), or else the first one
// after it (Start > addr; a zero Region if none).
func regionAt(regions []procfs.Region, addr uint64) (procfs.Region, bool) {
	i := sort.Search(len(regions), func(i int) bool { return regions[i].End > addr })
	if i == len(regions) {
		return procfs.Region{}, false
	}
	return regions[i], regions[i].Start <= addr
}

// SeekSpan returns the first address at or after addr that starts data,
// or with hole set a hole, across regions; the end, end, counts as a hole.
// ok is false when there is no data left.
func (rd *Reader) SeekSpan(regions []procfs.Region, addr, end uint64, wantHole bool) (at uint64, ok bool, err error) {
	for addr < end {
		r, inside := regionAt(regions, addr)
		if !inside {
			if wantHole {
				return addr, true, nil
			}
			if r.End == 0 || r.Start >= end {
				return 0, false, nil
			}
			addr = r.Start
			continue
		}
		g := rd.Region(r)
		at, ok, err := g.Seek(addr, wantHole)
		g.Close()
		switch {
		case err != nil:
			return 0, false, err
		case ok && (!wantHole || at < r.End):
			return min(at, end), true, nil
		}
		addr = r.End // data to the region's end, or no data in it
	}
	if wantHole {
		return end, true, nil
	}
	return 0, false, nil
}

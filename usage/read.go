package usage

import (
	"slices"

	"github.com/procmem/procmem/procfs"
)

// regionReader reads the regions of processes and their figures, keeping
// its buffers from one process or sample to the next.
type regionReader struct {
	scan procfs.SmapsScanner
}

// smaps appends to into every region of p with every figure, from smaps.
func (rr *regionReader) smaps(p *procfs.Process, into []Region) ([]Region, error) {
	err := rr.scan.Scan(p, func(m *procfs.MappingFigures) {
		into = append(grow(into), Region{Region: m.Region, io: m.IO, Figures: Figures{
			Size: m.Size(), Rss: m.Rss, Pss: m.Pss, Swap: m.Swap, PrivateDirty: m.PrivateDirty, Regions: 1,
		}})
	})
	return into, err
}

// pages appends to into every region of p, from maps, with its size and
// its resident and swapped bytes from the page tables: every figure but
// Pss and PrivateDirty, for a third of what smaps costs.
func (rr *regionReader) pages(p *procfs.Process, into []Region) ([]Region, error) {
	first := len(into)
	into, err := rr.maps(p, into)
	if err != nil {
		return into, err
	}
	return into, addPages(p, into[first:])
}

// maps appends to into every region of p, from maps, with its size.
func (rr *regionReader) maps(p *procfs.Process, into []Region) ([]Region, error) {
	err := rr.scan.ScanMaps(p, func(m *procfs.MappingFigures) {
		into = append(grow(into), Region{Region: m.Region, Figures: Figures{Size: m.Size(), Regions: 1}})
	})
	return into, err
}

// grow makes room for one more region: for 256 at first, and past that
// for as many as the kernel allows a process by default (vm.max_map_count,
// 65,530) rather than doubling 8 times: the pages of a new slice cost
// nothing until written, where each doubling writes them all again (a page
// fault each, 2-20 us in a virtual machine).
func grow(regions []Region) []Region {
	switch {
	case len(regions) < cap(regions) || cap(regions) >= manyRegions:
		return regions
	case cap(regions) < fewRegions:
		return slices.Grow(regions, fewRegions-len(regions))
	}
	return slices.Grow(regions, manyRegions-len(regions))
}

const (
	fewRegions  = 256
	manyRegions = 1 << 16
)

// addPages adds to each region (in address order) its resident and
// swapped bytes, as the page tables say: a PAGEMAP_SCAN of each stretch of
// adjoining regions in user space (most processes have a few dozen, the
// kernel skips the pages never touched). It counts as smaps does: not the
// shared zero page, nor guard markers, nor the pages of raw page frame
// mappings (which the kernel does not walk). Scanning stretch by stretch
// rather than the whole address space at once keeps a kernel without
// PAGEMAP_SCAN (before 6.7), where pagemap gives eight bytes for every
// page asked about, to the pages mapped.
func addPages(p *procfs.Process, regions []Region) error {
	if len(regions) == 0 || regions[0].Start >= userTop {
		return nil
	}
	pm, err := p.OpenPagemap()
	if err != nil {
		return err
	}
	defer pm.Close()
	for first := 0; first < len(regions) && regions[first].Start < userTop; {
		last := first
		for last+1 < len(regions) && regions[last+1].Start == regions[last].End && regions[last+1].Start < userTop {
			last++
		}
		runs, err := pm.Scan(regions[first].Start, regions[last].End)
		if err != nil {
			return err
		}
		addRuns(regions[first:last+1], runs)
		first = last + 1
	}
	return nil
}

// addRuns adds the runs of pages (in address order) to the regions they
// fall in.
func addRuns(regions []Region, runs []procfs.PageRange) {
	i, end := 0, len(regions)
	for _, run := range runs {
		for i < end && regions[i].End <= run.Start {
			i++
		}
		for j := i; j < end && regions[j].Start < run.End; j++ {
			r := &regions[j]
			n := min(run.End, r.End) - max(run.Start, r.Start)
			switch {
			case run.Flags&procfs.PagePresent != 0 && run.Flags&procfs.PageZero == 0:
				r.Rss += n
			case run.Flags&procfs.PageSwapped != 0 && run.Flags&procfs.PageGuard == 0:
				r.Swap += n
			}
		}
	}
}

// userTop bounds user space: the kernel's half of the address space
// ([vsyscall]) is shown in maps but not walked by PAGEMAP_SCAN.
const userTop = 1 << 63

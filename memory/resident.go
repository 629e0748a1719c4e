package memory

import "github.com/procmem/procmem/procfs"

// Resident tells how much of each region is resident, by region start, as
// smaps counts Rss: present pages other than the zero page. One scan of
// the page tables answers for every region, so "ls -l" of a process with
// many regions costs one scan, not one per file. Regions it cannot tell
// are missing from the map. pm must have been opened with the rights of
// whoever may read the maps the regions come from.
func Resident(pm *procfs.Pagemap, regions []procfs.Region) map[uint64]uint64 {
	resident := map[uint64]uint64{}
	var lo, hi uint64
	for _, r := range regions {
		if r.End > MaxAddress/2 { // [vsyscall]: not in the page tables
			continue
		}
		if hi == 0 {
			lo = r.Start
		}
		hi = r.End
	}
	ranges, err := pm.Scan(lo, hi)
	if err != nil {
		return resident
	}
	i := 0
	for _, r := range regions {
		resident[r.Start] = 0
		for ; i < len(ranges) && ranges[i].Start < r.End; i++ {
			pr := ranges[i]
			if pr.Flags&procfs.PagePresent != 0 && pr.Flags&procfs.PageZero == 0 {
				resident[r.Start] += min(pr.End, r.End) - max(pr.Start, r.Start)
			}
			if pr.End > r.End {
				break // the run continues into the next region
			}
		}
	}
	return resident
}

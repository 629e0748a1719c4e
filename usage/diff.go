package usage

import (
	"github.com/procmem/procmem/addrexpr"
	"github.com/procmem/procmem/procfs"
	"sort"
)

// Addr writes an address of the sample's address space in the notation
// procmem's other verbs take (package addrexpr): MODULE+OFFSET from a
// mapped file's load base, [heap]+OFFSET and the like for the kernel's
// named regions, plain hex otherwise.
func (s *Sample) Addr(addr uint64) string {
	regions := make([]procfs.Region, len(s.Regions))
	for i := range s.Regions {
		regions[i] = s.Regions[i].Region
	}
	return addrexpr.Format(regions, addr)
}

// Change is how one region changed between two samples.
type Change struct {
	Region          // as it is now; as it was, for one that is gone
	What     string // "new", "gone", "grew" or "shrank"
	Addr     string // its start, in the notation the other verbs take
	SizeDiff int64  // change of its size
	RssDiff  int64  // change of its resident bytes
}

// Diff returns the regions that appeared, disappeared, grew or shrank
// (in size or resident bytes) from before to after, the largest change of
// resident bytes first, then of size. Regions are matched by their start.
func Diff(before, after *Sample) []Change {
	old := make(map[uint64]*Region, len(before.Regions))
	for i := range before.Regions {
		old[before.Regions[i].Start] = &before.Regions[i]
	}
	var changes []Change
	for i := range after.Regions {
		r := &after.Regions[i]
		b, ok := old[r.Start]
		delete(old, r.Start)
		c := Change{Region: *r, What: "new", SizeDiff: int64(r.Figures.Size), RssDiff: int64(r.Figures.Rss)}
		if ok {
			c.SizeDiff, c.RssDiff = int64(r.Figures.Size)-int64(b.Figures.Size), int64(r.Figures.Rss)-int64(b.Rss)
			switch {
			case c.SizeDiff == 0 && c.RssDiff == 0:
				continue
			case c.RssDiff > 0 || c.RssDiff == 0 && c.SizeDiff > 0:
				c.What = "grew"
			default:
				c.What = "shrank"
			}
		}
		c.Addr = after.Addr(r.Start)
		changes = append(changes, c)
	}
	for _, b := range old {
		changes = append(changes, Change{Region: *b, What: "gone", Addr: before.Addr(b.Start),
			SizeDiff: -int64(b.Figures.Size), RssDiff: -int64(b.Rss)})
	}
	sort.Slice(changes, func(i, j int) bool {
		a, b := changes[i], changes[j]
		if abs(a.RssDiff) != abs(b.RssDiff) {
			return abs(a.RssDiff) > abs(b.RssDiff)
		}
		if abs(a.SizeDiff) != abs(b.SizeDiff) {
			return abs(a.SizeDiff) > abs(b.SizeDiff)
		}
		return a.Start < b.Start
	})
	return changes
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

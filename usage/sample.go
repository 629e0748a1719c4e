package usage

import (
	"slices"
	"time"

	"github.com/procmem/procmem/procfs"
)

// Figures are the byte counts of a set of mappings.
type Figures struct {
	Size         uint64 `json:"size"`          // virtual size
	Rss          uint64 `json:"rss"`           // resident
	Pss          uint64 `json:"pss"`           // resident, shared pages divided among their users
	Swap         uint64 `json:"swap"`          // swapped out
	PrivateDirty uint64 `json:"private_dirty"` // resident, written, this process's alone
	Regions      int    `json:"regions"`       // how many mappings
}

func (f *Figures) add(g Figures) {
	f.Size += g.Size
	f.Rss += g.Rss
	f.Pss += g.Pss
	f.Swap += g.Swap
	f.PrivateDirty += g.PrivateDirty
	f.Regions += g.Regions
}

// Field names a figure, for conditions, sorting and columns.
type Field int

const (
	Rss Field = iota
	Pss
	Size
	Swap
	Dirty
	numFields
)

var fieldNames = [numFields]string{"rss", "pss", "size", "swap", "dirty"}

func (f Field) String() string { return fieldNames[f] }

// ParseField returns the field of the given name.
func ParseField(name string) (Field, bool) {
	for i, n := range fieldNames {
		if n == name {
			return Field(i), true
		}
	}
	return 0, false
}

// Of returns the figure f of g.
func (g Figures) Of(f Field) uint64 {
	switch f {
	case Pss:
		return g.Pss
	case Size:
		return g.Size
	case Swap:
		return g.Swap
	case Dirty:
		return g.PrivateDirty
	}
	return g.Rss
}

// Region is one mapping of a sample: where it is, its kind and figures.
type Region struct {
	procfs.Region
	Kind Kind
	Figures
	io bool // VmFlags io or pf, as smaps last said
}

// Sample is the memory of a process at one moment.
type Sample struct {
	Time    time.Time
	PID     int
	Comm    string
	CPU     time.Duration // CPU time used so far, all threads
	Regions []Region      // in address order
	Kinds   [numKinds]Figures
	Total   Figures
	// SmapsTime is when the smaps the regions' Pss and PrivateDirty come
	// from was read: Time, or for a sample that read maps and pagemap
	// instead, an earlier sample's. Those figures (and their sums, the
	// kinds' and the total's) are then as they were at SmapsTime, for the
	// regions that still start where they did, and zero for the others.
	// Everything else is of Time.
	SmapsTime time.Time
}

// Kind returns the figures of kind k.
func (s *Sample) Kind(k Kind) Figures { return s.Kinds[k] }

// FromSmaps reports whether the sample read smaps: whether the kinds' Pss
// and PrivateDirty are of its time.
func (s *Sample) FromSmaps() bool { return s.SmapsTime.Equal(s.Time) }

// PssAge is how much older than the sample its regions' Pss and
// PrivateDirty are.
func (s *Sample) PssAge() time.Duration { return s.Time.Sub(s.SmapsTime) }

// Sampler samples one process again and again.
//
// smaps, the one file with each mapping's proportional and dirty bytes,
// costs the kernel a microsecond per mapping to write: 75 ms for a process
// with 60,000, and a third as long again to take in. Its maps (a tenth of
// that) and the page tables' account of which pages are resident or
// swapped (PAGEMAP_SCAN, 14 ms for the whole address space) give every
// figure but those two. So a Sampler reads smaps while doing so costs at
// most 2% of the time since it last did, which for a process of a few
// hundred mappings is every sample, and maps and pagemap between.
type Sampler struct {
	proc *procfs.Process
	read regionReader
	// NoThreads leaves out reading each thread's stack pointer: thread
	// stacks are then told by their shape alone (see markStacks).
	NoThreads bool
	// Smaps makes every sample read smaps, as a condition on a kind's Pss
	// or private dirty bytes needs.
	Smaps bool

	smapsTime time.Time     // of the last sample that read smaps
	smapsCost time.Duration // how long that read took
	smapsRead []smapsOnly   // what it gave that the others do not read
	size      int           // regions in the last sample
	spare     []Region      // the regions of a sample given back, to reuse
}

// smapsOnly is what a sample that does not read smaps takes over from the
// last that did, for the region starting at the same address.
type smapsOnly struct {
	start, pss, privateDirty uint64
	io                       bool
}

// smapsShare is the share of the time a Sampler may spend reading smaps.
const smapsShare = 50 // 1/50: 2%

// NewSampler samples the pinned process p.
func NewSampler(p *procfs.Process) *Sampler { return &Sampler{proc: p} }

// Sample reads the process's memory and classifies its mappings.
func (s *Sampler) Sample() (*Sample, error) {
	st, err := s.proc.Stat()
	if err != nil {
		return nil, err
	}
	var sps []uint64
	if !s.NoThreads {
		sps = stackPointers(s.proc)
	}
	sample := &Sample{Time: time.Now()}
	smaps := s.Smaps || s.smapsTime.IsZero() || time.Duration(smapsShare)*s.smapsCost <= sample.Time.Sub(s.smapsTime)
	if smaps {
		sample.Regions, err = s.read.smaps(s.proc, s.regions())
		sample.SmapsTime = sample.Time
	} else {
		sample.Regions, err = s.read.pages(s.proc, s.regions())
		s.carry(sample.Regions)
		sample.SmapsTime = s.smapsTime
	}
	if err != nil {
		return nil, err
	}
	if smaps {
		s.smapsTime, s.smapsCost = sample.Time, time.Since(sample.Time)
		s.keep(sample.Regions)
	}
	sample.Regions = clip(sample.Regions)
	sample.sum(sps)
	if sample.CPU, err = s.proc.CPUTime(); err != nil {
		return nil, err
	}
	sample.PID, sample.Comm = s.proc.PID, st.Comm
	s.size = len(sample.Regions)
	return sample, nil
}

// Recycle gives back a sample its caller is done with (one Sample
// returned and no longer used), so that the next sample is read into its
// regions: a process of 60,000 regions is then sampled without new memory,
// where each new slice (8 MB) costs the garbage collector and, once it has
// been returned to the system, a page fault per page.
func (s *Sampler) Recycle(sample *Sample) {
	if sample == nil {
		return
	}
	if cap(sample.Regions) > cap(s.spare) {
		s.spare = sample.Regions[:0]
	}
	sample.Regions = nil
}

// regions returns the slice to read the next sample's regions into, made
// once: the spare one if large enough, or one with room for those of the
// last sample and some (grow makes room for a first sample of many).
func (s *Sampler) regions() []Region {
	want := fewRegions
	if s.size > 0 {
		want = s.size + s.size/8 + 16
	}
	if cap(s.spare) >= want {
		into := s.spare
		s.spare = nil
		return into
	}
	return make([]Region, 0, want)
}

// clip returns the regions in a slice of their size when the one they
// were read into is much larger.
func clip(regions []Region) []Region {
	if cap(regions) > 2*len(regions)+64 {
		return slices.Clone(regions)
	}
	return regions
}

// keep notes what a sample that read smaps gave that the others do not
// read.
func (s *Sampler) keep(regions []Region) {
	s.smapsRead = s.smapsRead[:0]
	for i := range regions {
		r := &regions[i]
		s.smapsRead = append(s.smapsRead, smapsOnly{r.Start, r.Pss, r.PrivateDirty, r.io})
	}
}

// carry gives each region the Pss, PrivateDirty and device flag of the
// region that started at the same address when smaps was last read (both
// in address order), nothing if none did.
func (s *Sampler) carry(regions []Region) {
	j := 0
	for i := range regions {
		r := &regions[i]
		for j < len(s.smapsRead) && s.smapsRead[j].start < r.Start {
			j++
		}
		if j < len(s.smapsRead) && s.smapsRead[j].start == r.Start {
			old := &s.smapsRead[j]
			r.Pss, r.PrivateDirty, r.io = old.pss, old.privateDirty, old.io
		}
	}
}

// sum classifies the regions and sums their figures by kind.
func (s *Sample) sum(sps []uint64) {
	classify(s.Regions, sps)
	for i := range s.Regions {
		r := &s.Regions[i]
		s.Kinds[r.Kind].add(r.Figures)
		s.Total.add(r.Figures)
	}
}

// stackPointers returns the stack pointers of the process's threads that
// are blocked (a running thread's is not shown); none if the threads'
// syscall files may not be read (they need the right to trace).
func stackPointers(p *procfs.Process) []uint64 {
	tids, err := p.Threads()
	if err != nil {
		return nil
	}
	var sps []uint64
	for _, tid := range tids {
		if ts, err := p.ThreadState(tid); err == nil && !ts.Running && ts.SP != 0 {
			sps = append(sps, ts.SP)
		}
	}
	return sps
}

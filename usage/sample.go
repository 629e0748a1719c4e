package usage

import (
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
}

// Kind returns the figures of kind k.
func (s *Sample) Kind(k Kind) Figures { return s.Kinds[k] }

// Sampler samples one process again and again.
type Sampler struct {
	proc *procfs.Process
	scan procfs.SmapsScanner
	// NoThreads leaves out reading each thread's stack pointer: thread
	// stacks are then told by their shape alone (see markStacks).
	NoThreads bool
}

// NewSampler samples the pinned process p.
func NewSampler(p *procfs.Process) *Sampler { return &Sampler{proc: p} }

// Sample reads the process's smaps and classifies its mappings.
func (s *Sampler) Sample() (*Sample, error) {
	st, err := s.proc.Stat()
	if err != nil {
		return nil, err
	}
	var sps []uint64
	if !s.NoThreads {
		sps = stackPointers(s.proc)
	}
	mappings, err := s.scan.Scan(s.proc)
	if err != nil {
		return nil, err
	}
	cpu, err := s.proc.CPUTime()
	if err != nil {
		return nil, err
	}
	return newSample(time.Now(), s.proc.PID, st.Comm, cpu, mappings, sps), nil
}

// newSample sums the mappings by kind.
func newSample(at time.Time, pid int, comm string, cpu time.Duration, mappings []procfs.Mapping, sps []uint64) *Sample {
	kinds := classify(mappings, sps)
	s := &Sample{Time: at, PID: pid, Comm: comm, CPU: cpu, Regions: make([]Region, len(mappings))}
	for i := range mappings {
		r := Region{Region: mappings[i].Region, Kind: kinds[i], Figures: figures(&mappings[i])}
		s.Regions[i] = r
		s.Kinds[r.Kind].add(r.Figures)
		s.Total.add(r.Figures)
	}
	return s
}

// figures reads the figures of one mapping from its smaps fields.
func figures(m *procfs.Mapping) Figures {
	f := Figures{Size: m.Size(), Regions: 1}
	for _, field := range m.Fields {
		switch field.Name {
		case "Rss":
			f.Rss = field.Value
		case "Pss":
			f.Pss = field.Value
		case "Swap":
			f.Swap = field.Value
		case "Private_Dirty":
			f.PrivateDirty = field.Value
		}
	}
	return f
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

package core

import (
	"fmt"
	"io"
	"slices"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

// Info writes the info table of the captured regions, then what the
// capture is and where the bytes are of the regions it does not hold
// whole: what the command line's info and a mount's info file say of a
// core.
func (c *Capture) Info(w io.Writer, regions []procfs.Region) error {
	if err := report.Info(w, regions); err != nil {
		return err
	}
	var sources []report.Source
	for _, r := range regions {
		if s := c.Source(r); s.InCore < s.Size {
			sources = append(sources, report.Source{Region: r, Where: s.String()})
		}
	}
	return report.CaptureSources(w, c.Describe(), sources)
}

// Describe says what the capture is: its file, who wrote it, how it is
// compressed, whether it is whole.
func (c *Capture) Describe() string {
	what := fmt.Sprintf("%s, a core written by %s", c.path, c.Origin())
	if p, ok := c.Process(); ok {
		what += fmt.Sprintf(" of process %d (%s)", p.PID, p.Name)
	}
	if z := c.Compression(); z != "" {
		what += ", compressed with " + z
	}
	if c.Truncated() {
		what += ", cut short"
	}
	return what
}

// StackPointer is thread t's stack pointer, as its registers in the core
// say; false if they say nothing (a thread that was running when procmem
// wrote the core has zeros).
func (c *Capture) StackPointer(t Thread) (uint64, bool) {
	names := c.RegisterNames()
	i := slices.IndexFunc(names, func(n string) bool { return n == "rsp" || n == "esp" })
	if i < 0 || i >= len(t.Registers) || t.Registers[i] == 0 {
		return 0, false
	}
	return t.Registers[i], true
}

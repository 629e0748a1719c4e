package usage

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/procmem/procmem/report"
)

// Top returns the n regions of kind k with the most resident bytes (then
// the largest, then the lowest), in that order. It keeps the n best as it
// goes: a kind may have 60,000 regions, and n is a handful.
func (s *Sample) Top(k Kind, n int) []Region {
	if n <= 0 {
		return nil
	}
	top := make([]*Region, 0, n+1)
	for i := range s.Regions {
		r := &s.Regions[i]
		if r.Kind != k || len(top) == n && !above(r, top[n-1]) {
			continue
		}
		at := len(top)
		for at > 0 && above(r, top[at-1]) {
			at--
		}
		top = slices.Insert(top, at, r)[:min(n, len(top)+1)]
	}
	regions := make([]Region, len(top))
	for i, r := range top {
		regions[i] = *r
	}
	return regions
}

// above reports whether r comes before q among the top regions: more
// resident, then larger; regions are visited in address order, so the
// lower of two equal ones stays first.
func above(r, q *Region) bool {
	if r.Rss != q.Rss {
		return r.Rss > q.Rss
	}
	return r.Figures.Size > q.Figures.Size
}

// WriteTable writes the sample as a table of kinds and, for each kind, its
// top regions by resident bytes.
func WriteTable(w io.Writer, s *Sample, top int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "process %d (%s): %d regions at %s\n", s.PID, s.Comm, len(s.Regions), s.Time.Format("15:04:05"))
	fmt.Fprintf(&b, "%-6s %11s %11s %11s %11s %11s %8s\n", "kind", "size", "rss", "pss", "swap", "priv-dirty", "regions")
	row := func(name string, f Figures) {
		fmt.Fprintf(&b, "%-6s %11s %11s %11s %11s %11s %8d\n", name, report.Size(f.Size), report.Size(f.Rss),
			report.Size(f.Pss), report.Size(f.Swap), report.Size(f.PrivateDirty), f.Regions)
	}
	for _, k := range Kinds {
		row(k.String(), s.Kinds[k])
	}
	row("total", s.Total)
	writeAge(&b, s)
	if top > 0 {
		fmt.Fprintf(&b, "\nlargest regions of each kind, by rss:\n")
		for _, k := range Kinds {
			for _, r := range s.Top(k, top) {
				fmt.Fprintf(&b, "%-6s %-36s %11s of %10s  %s  %s\n", k, s.Addr(r.Start), report.Size(r.Rss),
					report.Size(r.Figures.Size), r.Perms, r.Path)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Signed formats a change of a byte count with its sign: "+1.00MiB",
// "-4.00KiB", "0".
func Signed(d int64) string {
	switch {
	case d > 0:
		return "+" + report.Size(uint64(d))
	case d < 0:
		return "-" + report.Size(uint64(-d))
	}
	return "0"
}

// CPUPercent is the share of one CPU the process used between two
// samples, in percent: 200 is two CPUs busy all along.
func CPUPercent(before, after *Sample) float64 {
	wall := after.Time.Sub(before.Time)
	if wall <= 0 {
		return 0
	}
	return 100 * float64(after.CPU-before.CPU) / float64(wall)
}

// WriteLive writes the table of a sample taken every interval: resident
// bytes by kind with their change since the first sample and since the
// last, and the regions that changed most since the last.
func WriteLive(w io.Writer, first, last, now *Sample, changes int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "process %d (%s) at %s, %s since the first sample, cpu %.1f%%\n", now.PID, now.Comm,
		now.Time.Format("15:04:05"), now.Time.Sub(first.Time).Round(time.Second), CPUPercent(last, now))
	fmt.Fprintf(&b, "%-6s %11s %12s %12s %11s %11s %11s %11s\n", "kind", "rss", "since start", "since last", "pss", "swap", "priv-dirty", "size")
	row := func(name string, f, f0, f1 Figures) {
		fmt.Fprintf(&b, "%-6s %11s %12s %12s %11s %11s %11s %11s\n", name, report.Size(f.Rss),
			Signed(int64(f.Rss)-int64(f0.Rss)), Signed(int64(f.Rss)-int64(f1.Rss)),
			report.Size(f.Pss), report.Size(f.Swap), report.Size(f.PrivateDirty), report.Size(f.Size))
	}
	for _, k := range Kinds {
		row(k.String(), now.Kinds[k], first.Kinds[k], last.Kinds[k])
	}
	row("total", now.Total, first.Total, last.Total)
	writeAge(&b, now)
	if changes > 0 {
		writeChanges(&b, "since the last sample", Diff(last, now), changes)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeAge says, of a sample that did not read smaps, how old its pss and
// private dirty bytes are.
func writeAge(b *strings.Builder, s *Sample) {
	if s.FromSmaps() {
		return
	}
	fmt.Fprintf(b, "pss and priv-dirty are from smaps read %s ago, at %s (read when it costs at most 2%%\n"+
		"of the time; --exact reads it every time); the rest is of now, from maps and pagemap\n",
		s.PssAge().Round(time.Second), s.SmapsTime.Format("15:04:05"))
}

// WriteChanges writes the n largest changes from before to after.
func WriteChanges(w io.Writer, what string, before, after *Sample, n int) error {
	var b strings.Builder
	writeChanges(&b, what, Diff(before, after), n)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeChanges(b *strings.Builder, what string, changes []Change, n int) {
	if len(changes) == 0 {
		fmt.Fprintf(b, "\nno region changed %s\n", what)
		return
	}
	fmt.Fprintf(b, "\nregions that changed %s, largest first:\n", what)
	for _, c := range changes[:min(n, len(changes))] {
		fmt.Fprintf(b, "%-6s %-6s %-36s rss %11s  size %11s  %s  %s\n", c.What, c.Kind, c.Addr, Signed(c.RssDiff),
			Signed(c.SizeDiff), c.Perms, c.Path)
	}
}

// CSVHeader is the first line of WriteCSV's output. The columns are
// stable: time (RFC 3339, milliseconds), seconds since the first sample,
// pid, kind (or "total"), bytes, the count of regions, and the age in
// seconds of the row's pss and private_dirty (0 where smaps was read for
// the sample; see Sample.SmapsTime).
const CSVHeader = "time,elapsed,pid,kind,size,rss,pss,swap,private_dirty,regions,pss_age\n"

// WriteCSV writes one line per kind and one for the total.
func WriteCSV(w io.Writer, first, s *Sample) error {
	var b strings.Builder
	row := func(name string, f Figures, age time.Duration) {
		fmt.Fprintf(&b, "%s,%.3f,%d,%s,%d,%d,%d,%d,%d,%d,%.3f\n", s.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
			s.Time.Sub(first.Time).Seconds(), s.PID, name, f.Size, f.Rss, f.Pss, f.Swap, f.PrivateDirty, f.Regions, age.Seconds())
	}
	for _, k := range Kinds {
		row(k.String(), s.Kinds[k], s.PssAge())
	}
	row("total", s.Total, s.PssAge())
	_, err := io.WriteString(w, b.String())
	return err
}

// jsonRegion is a region as WriteJSON writes it.
type jsonRegion struct {
	Addr  string `json:"addr"`
	Start string `json:"start"`
	End   string `json:"end"`
	Perms string `json:"perms"`
	Path  string `json:"path"`
	Kind  string `json:"kind"`
	Figures
}

type jsonChange struct {
	jsonRegion
	What     string `json:"what"`
	SizeDiff int64  `json:"size_change"`
	RssDiff  int64  `json:"rss_change"`
}

type jsonSample struct {
	Time    time.Time          `json:"time"`
	Elapsed float64            `json:"elapsed"`
	PID     int                `json:"pid"`
	Comm    string             `json:"comm"`
	CPU     float64            `json:"cpu_seconds"`
	Kinds   map[string]Figures `json:"kinds"`
	PssAge  float64            `json:"pss_age"` // of every pss and private_dirty, in seconds
	Total   Figures            `json:"total"`
	Top     []jsonRegion       `json:"top"`
	Changes []jsonChange       `json:"changes,omitempty"`
}

func newJSONRegion(s *Sample, r Region) jsonRegion {
	return jsonRegion{Addr: s.Addr(r.Start), Start: fmt.Sprintf("0x%x", r.Start), End: fmt.Sprintf("0x%x", r.End),
		Perms: r.Perms.String(), Path: r.Path, Kind: r.Kind.String(), Figures: r.Figures}
}

// WriteJSON writes the sample as one line of JSON: the figures of each
// kind and the total, the top regions of each kind, and with last the
// regions that changed most since that sample.
func WriteJSON(w io.Writer, first, last, s *Sample, top int) error {
	js := jsonSample{Time: s.Time, Elapsed: s.Time.Sub(first.Time).Seconds(), PID: s.PID, Comm: s.Comm,
		CPU: s.CPU.Seconds(), Kinds: map[string]Figures{}, PssAge: s.PssAge().Seconds(), Total: s.Total, Top: []jsonRegion{}}
	for _, k := range Kinds {
		js.Kinds[k.String()] = s.Kinds[k]
		for _, r := range s.Top(k, top) {
			js.Top = append(js.Top, newJSONRegion(s, r))
		}
	}
	if last != nil {
		changes := Diff(last, s)
		for _, c := range changes[:min(top*len(Kinds), len(changes))] {
			at := s
			if c.What == "gone" {
				at = last
			}
			js.Changes = append(js.Changes, jsonChange{newJSONRegion(at, c.Region), c.What, c.SizeDiff, c.RssDiff})
		}
	}
	b, err := json.Marshal(js)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Package report formats what procmem prints: the region table of info,
// the statm summary and the hexdump. The formats follow the original
// procmem's and are shared by the command line and the filesystem's info
// and statm files, so both always say the same.
package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/procmem/procmem/procfs"
)

var units = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// Size formats a byte count in binary units with two decimals, switching
// to the next unit at 1000 so the number never needs more than three
// digits before the point: 4096 is "4.00KiB", 1000 KiB is "0.98MiB".
func Size(n uint64) string {
	if n < 1000 {
		return fmt.Sprintf("%dB", n)
	}
	v := float64(n)
	i := 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.2f%s", v, units[i])
}

// RegionLine is one row of the info table:
// "START-END  SIZE  PERMS  PATH", the size right-aligned in 10 columns.
// The pathname is kept exactly, trailing spaces included.
func RegionLine(r procfs.Region) string {
	var b strings.Builder
	writeRegionLine(&b, r)
	return b.String()
}

// writeRegionLine writes RegionLine(r) to b, without the garbage of a
// string per line: a listing gives info's size, 60,000 lines for some.
func writeRegionLine(b *strings.Builder, r procfs.Region) {
	b.WriteString(r.Name())
	b.WriteString("  ")
	size := Size(r.Size())
	for i := len(size); i < 10; i++ {
		b.WriteByte(' ')
	}
	b.WriteString(size)
	b.WriteString("  ")
	b.WriteString(r.Perms.String())
	if r.Path != "" {
		b.WriteString("  ")
		b.WriteString(r.Path)
	}
}

// Info writes the info table of the given regions and its total line.
func Info(w io.Writer, regions []procfs.Region) error {
	var b strings.Builder
	b.Grow(len(regions)*64 + 128)
	var total uint64
	for _, r := range regions {
		total += r.Size()
		writeRegionLine(&b, r)
		b.WriteByte('\n')
	}
	writeTotal(&b, total)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeTotal(b *strings.Builder, total uint64) {
	b.WriteString(strings.Repeat("-", 72))
	fmt.Fprintf(b, "\nTotal: %s - %d bytes\n", Size(total), total)
}

// Source says where the bytes of a captured region are, when its capture
// does not hold them all.
type Source struct {
	Region procfs.Region
	Where  string
}

// CaptureSources writes, after the info table of captured memory, what
// the capture is and where the bytes are of the regions it does not hold
// whole (from the mapped file, or missing and why).
func CaptureSources(w io.Writer, capture string, sources []Source) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Captured: %s\n", capture)
	if len(sources) > 0 {
		b.WriteString("Regions not wholly in the capture:\n")
	}
	for _, s := range sources {
		fmt.Fprintf(&b, "  %s  %s\n", s.Region.Name(), s.Where)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// InfoVerbose writes the info table with every smaps field of each mapping
// and its VmFlags spelled out.
func InfoVerbose(w io.Writer, mappings []procfs.Mapping) error {
	var b strings.Builder
	var total uint64
	for _, m := range mappings {
		total += m.Size()
		b.WriteString(RegionLine(m.Region))
		b.WriteByte('\n')
		for _, f := range m.Fields {
			v := fmt.Sprint(f.Value)
			if f.Bytes {
				v = Size(f.Value)
			}
			fmt.Fprintf(&b, "    %-18s: %10s\n", f.Name, v)
		}
		b.WriteString("    VmFlags:\n")
		for _, flag := range m.VmFlags {
			meaning := vmFlagMeaning[flag]
			if meaning == "" {
				meaning = "unknown flag"
			}
			fmt.Fprintf(&b, "        %s - %s\n", flag, meaning)
		}
		b.WriteByte('\n')
	}
	writeTotal(&b, total)
	_, err := io.WriteString(w, b.String())
	return err
}

// Statm writes the five lines of the statm summary.
func Statm(w io.Writer, s procfs.Statm) error {
	_, err := fmt.Fprintf(w, "%9s  total program size\n%9s  resident set size\n%9s  shared size\n%9s  text\n%9s  data + stack\n",
		Size(s.Size), Size(s.Resident), Size(s.Shared), Size(s.Text), Size(s.Data))
	return err
}

// vmFlagMeaning explains the two-letter VmFlags codes, from proc_pid_smaps(5)
// and fs/proc/task_mmu.c.
var vmFlagMeaning = map[string]string{
	"rd": "readable",
	"wr": "writable",
	"ex": "executable",
	"sh": "shared",
	"mr": "may read",
	"mw": "may write",
	"me": "may execute",
	"ms": "may share",
	"gd": "stack segment grows down",
	"pf": "pure PFN range",
	"dw": "disabled write to the mapped file",
	"lo": "pages are locked in memory",
	"io": "memory mapped I/O area",
	"sr": "sequential read advise provided",
	"rr": "random read advise provided",
	"dc": "do not copy area on fork",
	"de": "do not expand area on remapping",
	"ac": "area is accountable",
	"nr": "swap space is not reserved for the area",
	"ht": "area uses huge tlb pages",
	"sf": "synchronous page faults",
	"nl": "non-linear mapping",
	"ar": "architecture specific flag",
	"wf": "wipe on fork",
	"dd": "do not include area into core dump",
	"sd": "soft-dirty flag",
	"mm": "mixed map area",
	"hg": "huge page advise flag",
	"nh": "no-huge page advise flag",
	"mg": "mergeable advise flag",
	"bt": "arm64 BTI guarded page",
	"mt": "arm64 MTE allocation tags are enabled",
	"um": "userfaultfd missing tracking",
	"uw": "userfaultfd wr-protect tracking",
	"ui": "userfaultfd minor fault tracking",
	"ss": "shadow stack page",
	"sl": "sealed",
	"lf": "lock on fault pages",
	"dp": "always lazily freeable mapping",
	"gu": "maybe contains guard regions",
}

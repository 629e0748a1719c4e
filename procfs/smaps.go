package procfs

// This file reads /proc/PID/smaps, described in proc_pid_smaps(5).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// SmapsField is one "Name: value" line of a smaps entry. Values given in kB
// are converted to bytes and have Bytes set; others (THPeligible,
// ProtectionKey) are kept as the plain number.
type SmapsField struct {
	Name  string
	Value uint64
	Bytes bool
}

// Mapping is one entry of /proc/PID/smaps: the maps line and every field
// that follows it, in the kernel's order. Fields the kernel adds in later
// versions are kept, not dropped.
type Mapping struct {
	Region
	Fields  []SmapsField
	VmFlags []string
}

// Field returns the value of the named field.
func (m Mapping) Field(name string) (uint64, bool) {
	for _, f := range m.Fields {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// Smaps reads /proc/PID/smaps.
func Smaps(pid int) ([]Mapping, error) {
	b, err := readFile(pidPath(pid, "smaps"))
	if err != nil {
		return nil, err
	}
	return parseSmaps(bytes.NewReader(b))
}

func parseSmaps(r io.Reader) ([]Mapping, error) {
	var mappings []Mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		name, value, isField := smapsFieldLine(line)
		if !isField {
			region, err := parseMapsLine(line)
			if err != nil {
				return nil, fmt.Errorf("%w: smaps line %d: %v", ErrParse, n, err)
			}
			mappings = append(mappings, Mapping{Region: region})
			continue
		}
		if len(mappings) == 0 {
			return nil, fmt.Errorf("%w: smaps line %d: field before any mapping: %q", ErrParse, n, line)
		}
		m := &mappings[len(mappings)-1]
		if name == "VmFlags" {
			m.VmFlags = strings.Fields(value)
			continue
		}
		f, err := parseSmapsValue(name, value)
		if err != nil {
			return nil, fmt.Errorf("%w: smaps line %d: %q: %v", ErrParse, n, line, err)
		}
		m.Fields = append(m.Fields, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: smaps: %v", ErrParse, err)
	}
	return mappings, nil
}

// smapsFieldLine tells a "Name: value" line from a maps line. A field name
// is a single word ending in a colon; a maps line starts with a hex range.
func smapsFieldLine(line string) (name, value string, ok bool) {
	name, value, found := strings.Cut(line, ":")
	if !found || name == "" || strings.ContainsAny(name, " -") {
		return "", "", false
	}
	return name, strings.TrimSpace(value), true
}

func parseSmapsValue(name, value string) (SmapsField, error) {
	num, unit, _ := strings.Cut(value, " ")
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return SmapsField{}, err
	}
	switch strings.TrimSpace(unit) {
	case "":
		return SmapsField{Name: name, Value: v}, nil
	case "kB":
		if v > (1<<64-1)/1024 {
			return SmapsField{}, fmt.Errorf("value overflows")
		}
		return SmapsField{Name: name, Value: v * 1024, Bytes: true}, nil
	default:
		return SmapsField{}, fmt.Errorf("unknown unit %q", unit)
	}
}

// VmFlagMeaning explains the two-letter VmFlags codes, from proc_pid_smaps(5)
// and fs/proc/task_mmu.c.
var VmFlagMeaning = map[string]string{
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

// ParseSmaps parses the text of an smaps file.
func ParseSmaps(r io.Reader) ([]Mapping, error) { return parseSmaps(r) }

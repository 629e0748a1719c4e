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

// ParseSmaps parses the text of /proc/PID/smaps read before (or kept, as
// procmem's cores keep it), as Smaps parses what it reads.
func ParseSmaps(text []byte) ([]Mapping, error) {
	return parseSmaps(bytes.NewReader(text))
}

// SmapsBlocks parses smaps text as ReadSmaps does, and returns with each
// mapping its text as the kernel wrote it: the maps line and its fields.
func SmapsBlocks(text []byte) ([]Mapping, []string, error) {
	mappings, err := parseSmaps(strings.NewReader(string(text)))
	if err != nil {
		return nil, nil, err
	}
	var blocks []string
	rest := string(text)
	for rest != "" {
		line, after, _ := strings.Cut(rest, "\n")
		if _, _, isField := smapsFieldLine(line); !isField || len(blocks) == 0 {
			blocks = append(blocks, "")
		}
		blocks[len(blocks)-1] += rest[:len(rest)-len(after)]
		rest = after
	}
	if len(blocks) != len(mappings) {
		return nil, nil, fmt.Errorf("%w: smaps: %d mappings in %d blocks", ErrParse, len(mappings), len(blocks))
	}
	return mappings, blocks, nil
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

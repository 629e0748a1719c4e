package procfs

// This file reads /proc/PID/smaps, described in proc_pid_smaps(5).

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unsafe"
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

// maxSmapsLine is the longest line accepted, as a guard against a file
// that is not smaps at all.
const maxSmapsLine = 1 << 20

func parseSmaps(r io.Reader) ([]Mapping, error) {
	var b []byte
	var err error
	if sized, ok := r.(interface{ Len() int }); ok {
		// A strings.Reader or bytes.Reader: read once into a buffer of the
		// right size, not through ReadAll's growing copies.
		b = make([]byte, sized.Len())
		_, err = io.ReadFull(r, b)
	} else {
		b, err = io.ReadAll(r)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: smaps: %v", ErrParse, err)
	}
	return parseSmapsText(b)
}

// ParseSmaps parses the text of /proc/PID/smaps read before (or kept, as
// procmem's cores keep it), as Smaps parses what it reads. The text must
// not be written afterwards: what is returned may share it.
func ParseSmaps(text []byte) ([]Mapping, error) { return parseSmapsText(text) }

// parseSmapsText parses smaps from its whole text, which it takes over: the
// text is never written again. Everything it returns is copied out of the
// text or shared between mappings, so a process with 60,000 mappings (43
// MB of text) is parsed with a few allocations per distinct field name,
// path and set of flags, not one per line, and keeps no reference to it.
func parseSmapsText(b []byte) ([]Mapping, error) {
	var p smapsParser
	return p.parse(b)
}

// parse parses the text b, reusing the parser's slices: what it returns
// before is overwritten, except the strings.
func (p *smapsParser) parse(b []byte) ([]Mapping, error) {
	p.reset(len(b))
	if len(b) == 0 {
		return p.end(), nil
	}
	// Read as a string without copying 43 MB: b is not written while this
	// runs, and every string kept is a copy, so b may be reused after.
	text := unsafe.String(&b[0], len(b))
	for text != "" {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		p.n++
		if len(line) > maxSmapsLine {
			return nil, fmt.Errorf("%w: smaps line %d: longer than %d bytes", ErrParse, p.n, maxSmapsLine)
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if err := p.line(line, len(b)-len(text)); err != nil {
			return nil, fmt.Errorf("%w: smaps line %d: %v", ErrParse, p.n, err)
		}
	}
	return p.end(), nil
}

// end returns the mappings parsed.
func (p *smapsParser) end() []Mapping {
	p.finish()
	return p.mappings
}

// smapsParser holds the state of one parse: the mappings so far and the
// arena the fields of all of them are cut from.
type smapsParser struct {
	mappings []Mapping
	fields   []SmapsField // the current mapping's are fields[first:]
	first    int
	names    []string // field names seen, by position in an entry
	flagLine string   // the last VmFlags line, and its parse
	flagSet  []string
	total    int // length of the text
	n        int // lines parsed
}

func (p *smapsParser) reset(total int) {
	p.mappings, p.fields, p.first, p.total = p.mappings[:0], p.fields[:0], 0, total
	p.flagLine, p.flagSet, p.n = "", nil, 0
}

// line takes one line; read is how much of the text has been read, to size
// the mappings slice once the first entry shows how long entries are.
func (p *smapsParser) line(line string, read int) error {
	name, value, isField := smapsFieldLine(line)
	if !isField {
		region, err := parseMapsLine(line)
		if err != nil {
			return err
		}
		p.newMapping(region, read)
		return nil
	}
	if len(p.mappings) == 0 {
		return fmt.Errorf("field before any mapping: %q", line)
	}
	if name == "VmFlags" {
		p.mappings[len(p.mappings)-1].VmFlags = p.vmFlags(strings.TrimSpace(value))
		return nil
	}
	f, err := smapsValue(line, name, value)
	if err != nil {
		return err
	}
	f.Name = p.name(name, len(p.fields)-p.first)
	if len(p.fields) == cap(p.fields) {
		// A new arena; the current mapping's fields move along, the
		// earlier mappings keep theirs in the old one.
		grown := make([]SmapsField, 0, max(1024, 2*cap(p.fields)))
		p.fields = append(grown, p.fields[p.first:]...)
		p.first = 0
	}
	p.fields = append(p.fields, f)
	return nil
}

func (p *smapsParser) newMapping(region Region, read int) {
	p.finish()
	if len(p.mappings) == 1 && p.total > 0 {
		// The first entry has been read whole (and this line): entries
		// are about that long, so the text holds about total/read.
		want := 2 + p.total/read + p.total/read/8
		if cap(p.mappings) < want {
			p.mappings = append(make([]Mapping, 0, want), p.mappings...)
		}
		if fields := want * len(p.mappings[0].Fields); cap(p.fields)-len(p.fields) < fields-len(p.fields) {
			p.fields, p.first = make([]SmapsField, 0, fields), 0
		}
	}
	if n := len(p.mappings); n > 0 {
		prev := p.mappings[n-1].Region
		// Consecutive mappings of one file share its path and device.
		region.Dev = reuse(region.Dev, prev.Dev)
		region.Path = reuse(region.Path, prev.Path)
	} else {
		region.Dev, region.Path = strings.Clone(region.Dev), strings.Clone(region.Path)
	}
	p.mappings = append(p.mappings, Mapping{Region: region})
}

// finish gives the current mapping its fields.
func (p *smapsParser) finish() {
	if len(p.mappings) == 0 {
		return
	}
	p.mappings[len(p.mappings)-1].Fields = p.fields[p.first:len(p.fields):len(p.fields)]
	p.first = len(p.fields)
}

// reuse returns prev if s equals it, else a copy of s that does not hold
// on to the text.
func reuse(s, prev string) string {
	if s == prev {
		return prev
	}
	return strings.Clone(s)
}

// name returns the field name, the same string as the last entry's field
// at this position when it is the same name.
func (p *smapsParser) name(name string, pos int) string {
	if pos < len(p.names) {
		if p.names[pos] != name {
			p.names[pos] = strings.Clone(name)
		}
		return p.names[pos]
	}
	name = strings.Clone(name)
	p.names = append(p.names, name)
	return name
}

// vmFlags splits the VmFlags value into words, sharing the words of the
// last mapping whose flags were the same.
func (p *smapsParser) vmFlags(value string) []string {
	if value == p.flagLine && p.flagSet != nil {
		return p.flagSet
	}
	value = strings.Clone(value)
	words := strings.Fields(value)
	p.flagLine, p.flagSet = value, words[:len(words):len(words)]
	return p.flagSet
}

// SmapsBlocks parses smaps text as ReadSmaps does, and returns with each
// mapping its text as the kernel wrote it: the maps line and its fields.
func SmapsBlocks(text []byte) ([]Mapping, []string, error) {
	mappings, err := parseSmaps(bytes.NewReader(text))
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
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", false
	}
	name = line[:colon]
	for i := 0; i < len(name); i++ {
		if name[i] == ' ' || name[i] == '-' {
			return "", "", false
		}
	}
	return name, line[colon+1:], true
}

// smapsValue parses the value of the field name on line: the quick way,
// or if the kernel did not write it so, the slow way.
func smapsValue(line, name, value string) (SmapsField, error) {
	if f, ok := quickSmapsValue(value); ok {
		return f, nil
	}
	f, err := parseSmapsValue(name, strings.TrimSpace(value))
	if err != nil {
		return f, fmt.Errorf("%q: %v", line, err)
	}
	return f, nil
}

// quickSmapsValue parses the value as the kernel writes nearly all of them,
// spaces, digits and " kB" or nothing, in one pass; anything else is left
// to parseSmapsValue.
func quickSmapsValue(value string) (SmapsField, bool) {
	i := 0
	for i < len(value) && value[i] == ' ' {
		i++
	}
	start := i
	var v uint64
	for i < len(value) && value[i] >= '0' && value[i] <= '9' {
		v = v*10 + uint64(value[i]-'0')
		i++
	}
	if i == start || i-start > 15 { // more digits might overflow: the slow way checks
		return SmapsField{}, false
	}
	switch value[i:] {
	case "":
		return SmapsField{Value: v}, true
	case " kB":
		return SmapsField{Value: v * 1024, Bytes: true}, true
	}
	return SmapsField{}, false
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

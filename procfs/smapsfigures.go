package procfs

// This file parses the few figures of /proc/PID/smaps (proc_pid_smaps(5))
// that say how much of each mapping is in memory, for a sampler that reads
// the smaps of a process with 60,000 mappings every second.

import (
	"fmt"
	"strings"
	"unsafe"
)

// MappingFigures is what a sampler of memory use keeps of one smaps entry:
// the maps line, four of its figures in bytes, and whether the kernel
// marks the mapping as device memory. A field the text lacks is zero, as
// all four are when the text is maps.
type MappingFigures struct {
	Region
	Rss, Pss, Swap, PrivateDirty uint64
	IO                           bool // VmFlags has io or pf: mapped I/O or raw page frames, no ordinary pages
}

// figuresParser parses smaps into MappingFigures, one at a time, handing
// each to add once its entry has ended: it keeps no slice of fields per
// mapping, nor any mapping but the current one, and it skips the 20-odd
// fields it does not need without parsing their values. It accepts all
// that the full parser accepts, and gives the same figures (the last of a
// field given twice); it may accept text the full parser refuses for a
// malformed field it skips.
type figuresParser struct {
	add     func(*MappingFigures)
	cur     MappingFigures
	started bool // cur holds a mapping
	n       int  // lines parsed
}

func (p *figuresParser) reset(add func(*MappingFigures)) {
	*p = figuresParser{add: add}
}

// end hands over the last mapping, once the text has been fed whole.
func (p *figuresParser) end() {
	if p.started {
		p.add(&p.cur)
		p.started = false
	}
}

// feed parses the whole lines at the start of b, and with last the rest
// too, and returns how many bytes it took. b may be reused once it
// returns: nothing kept points into it.
func (p *figuresParser) feed(b []byte, last bool) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	text := unsafe.String(&b[0], len(b))
	done := 0
	for done < len(text) {
		rest := text[done:]
		line, next := rest, len(text)
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, next = rest[:i], done+i+1
		} else if !last && len(rest) <= maxSmapsLine {
			return done, nil
		}
		p.n++
		if len(line) > maxSmapsLine {
			return 0, fmt.Errorf("%w: smaps line %d: longer than %d bytes", ErrParse, p.n, maxSmapsLine)
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if err := p.line(line); err != nil {
			return 0, fmt.Errorf("%w: smaps line %d: %v", ErrParse, p.n, err)
		}
		done = next
	}
	return done, nil
}

func (p *figuresParser) line(line string) error {
	if len(line) == 0 || hexDigit(line[0]) || !asciiLetter(line[0]) {
		// A maps line, or a field whose name starts like a hex number
		// (Anonymous, FilePmdMapped), or a line starting with neither a
		// letter nor a digit (a maps line after a space, which the full
		// parser takes): told apart as the full parser does.
		if region, ok := kernelMapsLine(line); ok {
			p.newMapping(region)
			return nil
		}
		name, value, isField := smapsFieldLine(line)
		if !isField {
			region, err := parseMapsLine(line)
			if err != nil {
				return err
			}
			p.newMapping(region)
			return nil
		}
		return p.field(line, name, value)
	}
	// No maps line starts with a letter past f: a field, if the text is
	// smaps at all. Only the names wanted are told, by their prefix, which
	// says the same as smapsFieldLine would of a line starting so.
	for _, name := range wantedFields[line[0]&31] {
		if len(line) > len(name) && line[len(name)] == ':' && line[:len(name)] == name {
			return p.field(line, name, line[len(name)+1:])
		}
	}
	return nil
}

// wantedFields are the fields figuresParser keeps, by their first letter
// (its low five bits: the same for upper and lower case, and no wanted
// name starts with a hex digit).
var wantedFields = [32][]string{
	'P' & 31: {"Pss", "Private_Dirty"},
	'R' & 31: {"Rss"},
	'S' & 31: {"Swap"},
	'V' & 31: {"VmFlags"},
}

// kernelMapsLine parses a maps line as the kernel writes it, fields one
// space apart, in one pass: a third of the time parseMapsLine takes, which
// a sampler spends 60,000 times. A line written otherwise is not taken
// (ok is false), and parseMapsLine, which takes more, parses it; what
// this takes, parseMapsLine parses the same.
func kernelMapsLine(line string) (r Region, ok bool) {
	i := 0
	if r.Start, i, ok = hexUntil(line, i, '-'); !ok {
		return r, false
	}
	if r.End, i, ok = hexUntil(line, i, ' '); !ok || r.Start >= r.End || i+5 > len(line) || line[i+4] != ' ' {
		return r, false
	}
	if r.Perms, ok = parsePerms(line[i : i+4]); !ok {
		return r, false
	}
	if r.Offset, i, ok = hexUntil(line, i+5, ' '); !ok {
		return r, false
	}
	dev := i
	for i < len(line) && (hexDigit(line[i]) || line[i] == ':') {
		i++
	}
	if i == len(line) || line[i] != ' ' || strings.Count(line[dev:i], ":") != 1 {
		return r, false
	}
	r.Dev = line[dev:i]
	i++
	inode := i
	for i < len(line) && '0' <= line[i] && line[i] <= '9' && i-inode < 19 {
		r.Inode = r.Inode*10 + uint64(line[i]-'0')
		i++
	}
	if i == inode || i < len(line) && line[i] != ' ' {
		return r, false
	}
	r.Path = strings.TrimLeft(line[i:], " ")
	return r, true
}

// hexUntil parses the hex number of at most 16 digits at line[i:] that
// ends with stop, and returns it and where it ends, past stop.
func hexUntil(line string, i int, stop byte) (v uint64, next int, ok bool) {
	start := i
	for ; i < len(line) && line[i] != stop; i++ {
		c := line[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, i, false
		}
		v = v<<4 | uint64(c)
	}
	if i == start || i-start > 16 || i == len(line) {
		return 0, i, false
	}
	return v, i + 1, true
}

func asciiLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func hexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// field takes the field name: value of the line.
func (p *figuresParser) field(line, name, value string) error {
	if !p.started {
		return fmt.Errorf("field before any mapping: %q", line)
	}
	m := &p.cur
	var figure *uint64
	switch name {
	case "Rss":
		figure = &m.Rss
	case "Pss":
		figure = &m.Pss
	case "Swap":
		figure = &m.Swap
	case "Private_Dirty":
		figure = &m.PrivateDirty
	case "VmFlags":
		m.IO = hasIOFlag(value)
		return nil
	default:
		return nil
	}
	f, err := smapsValue(line, name, value)
	*figure = f.Value
	return err
}

// newMapping hands over the mapping before and starts one. Neighbours
// mapping one file share its path and device.
func (p *figuresParser) newMapping(region Region) {
	if p.started {
		p.add(&p.cur)
		region.Dev = reuse(region.Dev, p.cur.Dev)
		region.Path = reuse(region.Path, p.cur.Path)
	} else {
		region.Dev, region.Path = strings.Clone(region.Dev), strings.Clone(region.Path)
	}
	p.cur, p.started = MappingFigures{Region: region}, true
}

// hasIOFlag reports whether the VmFlags value has the word io or pf.
func hasIOFlag(flags string) bool {
	for flags != "" {
		var word string
		word, flags, _ = strings.Cut(strings.TrimLeft(flags, " "), " ")
		if word == "io" || word == "pf" {
			return true
		}
	}
	return false
}

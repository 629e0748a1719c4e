package main

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

var searchVerb = verb{
	name:     "search",
	args:     "(-s STRING | -b HEX | -t TYPE VALUE [-e little|big]) [-r RANGE] [region filters]",
	short:    "find bytes, strings or numbers in memory",
	long:     "Pages that hold no data are not searched: they hold only zeros.\n" + rangeHelp,
	setup:    setupSearch,
	captures: true,
}

func setupSearch(flags *pflag.FlagSet) func(*env, []string) error {
	var filter regionFilter
	filter.declare(flags)
	str := flags.StringP("string", "s", "", "find `STRING`")
	hexBytes := flags.StringP("bytes", "b", "", "find the bytes given in `HEX`")
	typ := flags.StringP("type", "t", "", "find the number given as argument, stored as `TYPE`: int8, int16, int32, int64, uint8 ... uint64, float, double")
	endian := flags.StringP("endian", "e", "little", "byte order of -t: little or big")
	rangeFlag := flags.StringP("range", "r", "", "search only `RANGE` (see below)")
	return func(e *env, args []string) error {
		if countChanged(flags, "string", "bytes", "type") != 1 {
			return usagef("search: give exactly one of -s, -b and -t")
		}
		needle, err := searchNeedle(flags, args, *str, *hexBytes, *typ, *endian)
		if err != nil {
			return err
		}
		all, err := e.maps()
		if err != nil {
			return err
		}
		if err := filter.parse(e); err != nil {
			return err
		}
		regions, err := filter.choose(e.pid(), all)
		if err != nil {
			return err
		}
		if *rangeFlag != "" {
			rng, err := resolveRange(e, *rangeFlag)
			if err != nil {
				return err
			}
			if regions = clip(regions, rng); len(regions) == 0 {
				return fmt.Errorf("0x%x-0x%x is not mapped%s in process %d", rng.start, rng.end, filter.among(), e.pid())
			}
		}
		return search(e, regions, placer(all), needle)
	}
}

// searchNeedle makes the bytes to find from whichever of -s, -b and -t was
// given.
func searchNeedle(flags *pflag.FlagSet, args []string, str, hexBytes, typ, endian string) ([]byte, error) {
	var needle []byte
	switch {
	case flags.Changed("string"):
		if err := noArgs(args); err != nil {
			return nil, err
		}
		needle = []byte(str)
	case flags.Changed("bytes"):
		if err := noArgs(args); err != nil {
			return nil, err
		}
		var err error
		if needle, err = parseHexBytes(hexBytes); err != nil {
			return nil, err
		}
	default:
		if len(args) != 1 {
			return nil, usagef("search: -t %s takes the value to find as its one argument", typ)
		}
		var order binary.AppendByteOrder
		switch endian {
		case "little":
			order = binary.LittleEndian
		case "big":
			order = binary.BigEndian
		default:
			return nil, usagef("search: -e takes little or big, not %q", endian)
		}
		var err error
		if needle, err = encodeValue(typ, args[0], order); err != nil {
			return nil, err
		}
	}
	if len(needle) == 0 {
		return nil, usagef("search: nothing to search for")
	}
	return needle, nil
}

// search prints every occurrence of needle in the regions: its address,
// the region's permissions, where it is (as place writes it: what an ADDR
// argument takes) and the hexdump rows that hold it.
func search(e *env, regions []procfs.Region, where func(uint64) string, needle []byte) error {
	mem, err := openMemory(e, false)
	if err != nil {
		return err
	}
	defer mem.Close()
	s := &searcher{env: e, needle: needle, where: where, window: make([]byte, 0, chunkSize+len(needle))}
	var total uint64
	for _, r := range regions {
		total += r.Size()
	}
	s.progress = newProgress(e, total, "searching")
	defer s.progress.finish()
	buf := make([]byte, chunkSize)
	for _, r := range regions {
		g := mem.Region(r)
		s.region, s.r = g, r
		s.window = s.window[:0]
		unread, err := g.Stream(e.ctx, r.Start, r.End, buf, memory.Sink{Data: s.data, Zeros: s.zeros})
		g.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", r.Label(), err)
		}
		reportUnread(e, r, unread)
	}
	if s.matches == 0 {
		return fmt.Errorf("no match in %d regions of process %d", len(regions), e.pid())
	}
	return nil
}

// searcher finds a needle in the stream of one region after another. The
// window keeps the last len(needle)-1 bytes of a chunk, so matches across
// chunk boundaries are found.
type searcher struct {
	*env
	needle     []byte
	region     *memory.Region
	r          procfs.Region // the part of a region searched: -r clips it
	where      func(addr uint64) string
	window     []byte
	windowAddr uint64
	matches    int
	line       []byte
	progress   *progress
}

// zeros ends the window: pages without data are not searched, only zero
// bytes could match there.
func (s *searcher) zeros(addr, n uint64) error {
	s.progress.add(n)
	s.window = s.window[:0]
	return nil
}

func (s *searcher) data(addr uint64, data []byte) error {
	s.progress.add(uint64(len(data)))
	if len(s.window) > 0 && s.windowAddr+uint64(len(s.window)) != addr {
		s.window = s.window[:0] // a gap: nothing spans it
	}
	if len(s.window) == 0 {
		s.windowAddr = addr
	}
	s.window = append(s.window, data...)
	for off := 0; ; off++ {
		i := bytes.Index(s.window[off:], s.needle)
		if i < 0 {
			break
		}
		off += i
		s.match(s.windowAddr + uint64(off))
	}
	keep := min(len(s.needle)-1, len(s.window))
	copy(s.window, s.window[len(s.window)-keep:])
	s.windowAddr += uint64(len(s.window) - keep)
	s.window = s.window[:keep]
	return nil
}

// match prints one match and the hexdump rows around it, read as the
// filesystem reads: a neighbouring page without data stays untouched.
func (s *searcher) match(at uint64) {
	const width = 16
	s.matches++
	s.progress.clear() // the match's lines, then the progress line again
	r := s.r
	fmt.Fprintf(s.stdout, "%016x  %s  %s\n", at, r.Perms, s.where(at))
	rowStart := at - at%width
	rowEnd := at + uint64(len(s.needle))
	context := make([]byte, min(rowEnd-rowStart+width, r.End-rowStart))
	n, _ := s.region.ReadAt(context, rowStart)
	for row := 0; row < n && rowStart+uint64(row) < rowEnd; row += width {
		s.line = report.FormatRow(s.line[:0], rowStart+uint64(row), context[row:min(row+width, n)], width)
		s.stdout.Write(append([]byte("  "), s.line...))
	}
}

package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

func setupSearch(fs *pflag.FlagSet) func(*env, []string) error {
	var filter regionFilter
	filter.declare(fs)
	str := fs.StringP("string", "s", "", "find `STRING`")
	hexBytes := fs.StringP("bytes", "b", "", "find the bytes given in `HEX`")
	typ := fs.StringP("type", "t", "", "find the number given as argument, stored as `TYPE`: int8, int16, int32, int64, uint8 ... uint64, float, double")
	endian := fs.StringP("endian", "e", "little", "byte order of -t: little or big")
	return func(e *env, args []string) error {
		if countChanged(fs, "string", "bytes", "type") != 1 {
			return usagef("search: give exactly one of -s, -b and -t")
		}
		var needle []byte
		switch {
		case fs.Changed("string"):
			if err := noArgs(args); err != nil {
				return err
			}
			needle = []byte(*str)
		case fs.Changed("bytes"):
			if err := noArgs(args); err != nil {
				return err
			}
			var err error
			if needle, err = parseHexBytes(*hexBytes); err != nil {
				return err
			}
		default:
			if len(args) != 1 {
				return usagef("search: -t %s takes the value to find as its one argument", *typ)
			}
			var order binary.AppendByteOrder
			switch *endian {
			case "little":
				order = binary.LittleEndian
			case "big":
				order = binary.BigEndian
			default:
				return usagef("search: -e takes little or big, not %q", *endian)
			}
			var err error
			if needle, err = encodeValue(*typ, args[0], order); err != nil {
				return err
			}
		}
		if len(needle) == 0 {
			return usagef("search: nothing to search for")
		}
		regions, err := filter.regions(e.pid)
		if err != nil {
			return err
		}
		return search(e, regions, needle)
	}
}

// encodeValue turns VALUE into the bytes of TYPE in the given byte order.
func encodeValue(typ, value string, order binary.AppendByteOrder) ([]byte, error) {
	bad := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("bad %s value %q: %v", typ, value, err)
	}
	var bits int
	switch typ {
	case "int8", "uint8":
		bits = 8
	case "int16", "uint16":
		bits = 16
	case "int32", "uint32":
		bits = 32
	case "int64", "uint64":
		bits = 64
	case "float", "double":
		bitsF := 32
		if typ == "double" {
			bitsF = 64
		}
		f, err := strconv.ParseFloat(value, bitsF)
		if err != nil {
			return bad(err)
		}
		if typ == "float" {
			return order.AppendUint32(nil, math.Float32bits(float32(f))), nil
		}
		return order.AppendUint64(nil, math.Float64bits(f)), nil
	default:
		return nil, usagef("search: unknown type %q: want int8, int16, int32, int64, uint8, uint16, uint32, uint64, float or double", typ)
	}
	var u uint64
	if typ[0] == 'u' {
		v, err := strconv.ParseUint(value, 0, bits)
		if err != nil {
			return bad(err)
		}
		u = v
	} else {
		v, err := strconv.ParseInt(value, 0, bits)
		if err != nil {
			return bad(err)
		}
		u = uint64(v)
	}
	b := order.AppendUint64(nil, u)
	if order == binary.BigEndian {
		return b[8-bits/8:], nil
	}
	return b[:bits/8], nil
}

// search prints every occurrence of needle in the regions: its address,
// the region and offset, and the hexdump rows that hold it. Chunks overlap
// by len(needle)-1 bytes so matches across chunk boundaries are found.
func search(e *env, regions []procfs.Region, needle []byte) error {
	p, m, release, err := openMemory(e.pid, false)
	if err != nil {
		return err
	}
	defer release()

	const width = 16
	buf := make([]byte, chunkSize)
	window := make([]byte, 0, chunkSize+len(needle))
	var line []byte
	matches := 0
	for _, r := range regions {
		var windowAddr uint64
		window = window[:0]
		layout, err := p.OpenLayout(r)
		if err != nil {
			return err
		}
		unread, err := scanMemory(e.ctx, m, layout, r.Start, r.End, buf, sink{zeros: func(addr, n uint64) error {
			// Pages without data are not searched: only zero bytes could
			// match there.
			window = window[:0]
			return nil
		}, data: func(addr uint64, data []byte) error {
			if len(window) > 0 && windowAddr+uint64(len(window)) != addr {
				window = window[:0] // a gap: nothing spans it
			}
			if len(window) == 0 {
				windowAddr = addr
			}
			window = append(window, data...)
			for off := 0; ; off++ {
				i := bytes.Index(window[off:], needle)
				if i < 0 {
					break
				}
				off += i
				at := windowAddr + uint64(off)
				matches++
				fmt.Fprintf(e.stdout, "%016x  %s  %s+0x%x\n", at, r.Perms, label(r), at-r.Start)
				rowStart := at - at%width
				rowEnd := at + uint64(len(needle))
				// The rows around the match, read as the filesystem reads:
				// a neighbouring page without data stays untouched.
				context := make([]byte, min(rowEnd-rowStart+width, r.End-rowStart))
				n := 0
				if segs, err := layout.Segments(rowStart, rowStart+uint64(len(context))); err == nil {
					n, _ = procfs.ReadSegments(m, context, rowStart, segs)
				}
				for row := 0; row < n && rowStart+uint64(row) < rowEnd; row += width {
					line = report.FormatRow(line[:0], rowStart+uint64(row), context[row:min(row+width, n)], width)
					e.stdout.Write(append([]byte("  "), line...))
				}
			}
			keep := min(len(needle)-1, len(window))
			copy(window, window[len(window)-keep:])
			windowAddr += uint64(len(window) - keep)
			window = window[:keep]
			return nil
		}})
		layout.Close()
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.Name(), r.Path, err)
		}
		reportUnread(e, r, unread)
	}
	if matches == 0 {
		return fmt.Errorf("no match in %d regions of process %d", len(regions), e.pid)
	}
	return nil
}

// label names a region in search results: its pathname, or its range.
func label(r procfs.Region) string {
	if r.Path != "" {
		return r.Path
	}
	return r.Name()
}

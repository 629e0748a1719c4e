package main

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/procmem/procmem/procfs"
	"github.com/spf13/pflag"
)

// This file parses the arguments the verbs share: region filters,
// addresses, ranges, bytes and typed values.

// regionFilter is the set of flags that select regions: info, read, search.
type regionFilter struct {
	path     string
	writable bool
	all      bool
	at       string // -a: the region holding this address
	addr     uint64 // at, parsed (by parse)
	hasAddr  bool
}

func (f *regionFilter) declare(flags *pflag.FlagSet) {
	flags.StringVarP(&f.path, "pathname", "P", "", "only regions with this `PATHNAME`, e.g. '[heap]', or a mapped file's base name, e.g. libc.so.6")
	flags.BoolVarP(&f.writable, "writable", "w", false, "only writable regions")
	flags.StringVarP(&f.at, "address", "a", "", "only the region holding `ADDR` (hex, or an address expression)")
	flags.BoolVar(&f.all, "no-default-filter", false, "include [vvar], [vvar_vclock] and [vsyscall], which cannot be read")
}

// parse checks the filter's arguments, and computes -a's address in the
// target.
func (f *regionFilter) parse(e *env) error {
	if f.at == "" || f.hasAddr {
		return nil
	}
	x, err := parseExpr(f.at)
	if err != nil {
		return err
	}
	r, err := targetResolver(e)
	if err != nil {
		return err
	}
	defer r.close()
	f.addr, err = r.eval(x)
	f.hasAddr = err == nil
	return err
}

func (f *regionFilter) apply(regions []procfs.Region) []procfs.Region {
	var out []procfs.Region
	for _, r := range regions {
		if (!f.all && r.Unreadable()) || (f.writable && !r.Perms.Write) || (f.path != "" && !r.Named(f.path)) || (f.hasAddr && !r.Contains(f.addr)) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// among is what a message about addresses adds when regions were filtered.
func (f *regionFilter) among() string {
	if f.path != "" || f.writable || f.hasAddr {
		return " (in the selected regions)"
	}
	return ""
}

func (f *regionFilter) regions(e *env) ([]procfs.Region, error) {
	if err := f.parse(e); err != nil {
		return nil, err
	}
	all, err := e.maps()
	if err != nil {
		return nil, err
	}
	return f.choose(e.pid(), all)
}

// choose applies the filter to all of a process's regions, and says why
// when it selects none that were asked for by pathname or address.
func (f *regionFilter) choose(pid int, all []procfs.Region) ([]procfs.Region, error) {
	regions := f.apply(all)
	if len(regions) == 0 && f.hasAddr {
		if r, ok := procfs.RegionAt(all, f.addr); ok {
			return nil, fmt.Errorf("0x%x is in %s, which the other filters leave out", f.addr, r.Label())
		}
		return nil, fmt.Errorf("0x%x is not mapped in process %d", f.addr, pid)
	}
	if len(regions) == 0 && f.path != "" {
		if !f.all && slices.ContainsFunc(all, func(r procfs.Region) bool { return r.Named(f.path) && r.Unreadable() }) {
			return nil, fmt.Errorf("%s of process %d is left out by default, as it cannot be read: --no-default-filter includes it", f.path, pid)
		}
		return nil, fmt.Errorf("no region with pathname %q in process %d%s", f.path, pid, pathHint(all))
	}
	return regions, nil
}

// pathHint suggests the pathnames the process has when -P matched none:
// its bracketed names, then the base names of its mapped files, in
// address order.
func pathHint(regions []procfs.Region) string {
	seen := map[string]bool{}
	var pseudo, files []string
	for _, r := range regions {
		name := r.Path
		if !r.Pseudo() {
			if r.Inode == 0 || name == "" {
				continue
			}
			name = filepath.Base(name)
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		if r.Pseudo() {
			pseudo = append(pseudo, name)
		} else {
			files = append(files, name)
		}
	}
	sort.Strings(pseudo)
	names := append(pseudo, files...)
	if len(names) == 0 {
		return ""
	}
	const most = 16 // a JVM maps hundreds of files: the line stays a line
	if len(names) > most {
		names = append(names[:most], "...")
	}
	return " (it has " + strings.Join(names, ", ") + ")"
}

func countChanged(flags *pflag.FlagSet, names ...string) int {
	n := 0
	for _, name := range names {
		if flags.Changed(name) {
			n++
		}
	}
	return n
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	return nil
}

// Every parser of an argument fails with a usage error (exit status 2)
// that says what it wants, never a Go parser's own words.

// parseAddr parses a hex address with an optional 0x.
func parseAddr(s string) (uint64, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	v, err := strconv.ParseUint(t, 16, 64)
	if err != nil || t == "" || strings.HasPrefix(t, "+") {
		return 0, usagef("bad hex address %q: want hex digits such as 7f2a4c001000 (0x optional)", s)
	}
	return v, nil
}

// parseHexBytes parses hex digits, allowing spaces, colons and a 0x prefix
// per byte group: "deadbeef", "de ad be ef", "0xde,0xad".
func parseHexBytes(s string) ([]byte, error) {
	var digits strings.Builder
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ':' || r == ',' || r == '\t' }) {
		digits.WriteString(strings.TrimPrefix(strings.TrimPrefix(f, "0x"), "0X"))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil || len(b) == 0 {
		return nil, usagef("bad hex bytes %q: want pairs of hex digits such as 'de ad be ef'", s)
	}
	return b, nil
}

// bytesAt is the range of the n bytes at addr, or an error that says they
// run past the last address (end wraps around 2^64).
func bytesAt(addr uint64, n int) (addrRange, error) {
	end := addr + uint64(n)
	if end < addr {
		return addrRange{}, fmt.Errorf("%d bytes at 0x%x run past the last address, 0xffffffffffffffff", n, addr)
	}
	return addrRange{addr, end}, nil
}

// encodeValue turns VALUE into the bytes of TYPE in the given byte order.
func encodeValue(typ, value string, order binary.AppendByteOrder) ([]byte, error) {
	bad := func(err error) ([]byte, error) {
		why := "not a number"
		if errors.Is(err, strconv.ErrRange) {
			why = "out of range for " + typ
		}
		return nil, usagef("bad %s value %q: %s", typ, value, why)
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

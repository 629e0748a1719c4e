package main

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

func setupInfo(fs *pflag.FlagSet) func(*env, []string) error {
	var filter regionFilter
	filter.declare(fs)
	verbose := fs.BoolP("verbose", "v", false, "add every smaps field of each region and its VmFlags")
	raw := fs.BoolP("raw", "R", false, "print /proc/PID/smaps as the kernel writes it")
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		p, err := procfs.Open(e.pid)
		if err != nil {
			return err
		}
		defer p.Close()
		switch {
		case *raw:
			b, err := p.ReadFile("smaps")
			if err != nil {
				return err
			}
			_, err = e.stdout.Write(b)
			return err
		case *verbose:
			mappings, err := p.Smaps()
			if err != nil {
				return err
			}
			var kept []procfs.Mapping
			for _, m := range mappings {
				if len(filter.apply([]procfs.Region{m.Region})) == 1 {
					kept = append(kept, m)
				}
			}
			return report.InfoVerbose(e.stdout, kept)
		}
		regions, err := filter.regions(e.pid)
		if err != nil {
			return err
		}
		return report.Info(e.stdout, regions)
	}
}

func setupStatm(fs *pflag.FlagSet) func(*env, []string) error {
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		s, err := procfs.ReadStatm(e.pid)
		if err != nil {
			return err
		}
		return report.Statm(e.stdout, s)
	}
}

func setupList(fs *pflag.FlagSet) func(*env, []string) error {
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		list, err := procfs.Processes()
		if err != nil {
			return err
		}
		var b strings.Builder
		for _, p := range list {
			fmt.Fprintf(&b, "%5d  %s\n", p.PID, p.Comm)
		}
		_, err = fmt.Fprint(e.stdout, b.String())
		return err
	}
}

func setupWrite(fs *pflag.FlagSet) func(*env, []string) error {
	addrFlag := fs.StringP("address", "a", "", "hex `ADDR` to write at (0x optional)")
	str := fs.StringP("string", "s", "", "write `STRING`")
	str0 := fs.StringP("string0", "S", "", "write `STRING` and a terminating NUL")
	hexBytes := fs.StringP("bytes", "b", "", "write the bytes given in `HEX`, e.g. 'deadbeef' or 'de ad be ef'")
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if !fs.Changed("address") {
			return usagef("write: -a ADDR is required")
		}
		var data []byte
		switch given := countChanged(fs, "string", "string0", "bytes"); {
		case given != 1:
			return usagef("write: give exactly one of -s, -S and -b")
		case fs.Changed("string"):
			data = []byte(*str)
		case fs.Changed("string0"):
			data = append([]byte(*str0), 0)
		default:
			var err error
			if data, err = parseHexBytes(*hexBytes); err != nil {
				return err
			}
		}
		addr, err := parseAddr(*addrFlag)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			return fmt.Errorf("nothing to write")
		}
		return writeMemory(e.pid, addr, data)
	}
}

// writeMemory writes data at addr after checking that every byte lies in
// mapped memory, so a write that cannot complete changes nothing.
func writeMemory(pid int, addr uint64, data []byte) error {
	p, m, release, err := openMemory(pid, true)
	if err != nil {
		return err
	}
	defer release()
	regions, err := p.Maps()
	if err != nil {
		return err
	}
	end := addr + uint64(len(data))
	if end < addr || !covered(regions, addr, end) {
		return fmt.Errorf("0x%x-0x%x is not mapped in process %d: nothing written", addr, addr+uint64(len(data)), pid)
	}
	n, err := m.WriteFull(data, addr)
	if err != nil {
		return fmt.Errorf("wrote only %d of %d bytes: %w", n, len(data), err)
	}
	return nil
}

// covered reports whether the mapped regions cover [start, end) without a gap.
func covered(regions []procfs.Region, start, end uint64) bool {
	at := start
	for _, r := range regions {
		if r.Contains(at) {
			at = r.End
		}
		if at >= end {
			return true
		}
	}
	return false
}

func countChanged(fs *pflag.FlagSet, names ...string) int {
	n := 0
	for _, name := range names {
		if fs.Changed(name) {
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

// parseAddr parses a hex address with an optional 0x.
func parseAddr(s string) (uint64, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	v, err := strconv.ParseUint(t, 16, 64)
	if err != nil || t == "" || strings.HasPrefix(t, "+") {
		return 0, fmt.Errorf("bad hex address %q", s)
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
		return nil, fmt.Errorf("bad hex bytes %q: want pairs of hex digits such as 'de ad be ef'", s)
	}
	return b, nil
}

// addrRange is a half-open address range [start, end).
type addrRange struct{ start, end uint64 }

// parseRange parses ADDR (one byte), ADDR:END, ADDR:+LEN or ADDR:-LEN, all hex.
func parseRange(s string) (addrRange, error) {
	bad := func() (addrRange, error) {
		return addrRange{}, fmt.Errorf("bad range %q: want hex ADDR, ADDR:END, ADDR:+LEN or ADDR:-LEN", s)
	}
	lhs, rhs, hasRHS := strings.Cut(s, ":")
	start, err := parseAddr(lhs)
	if err != nil {
		return bad()
	}
	if !hasRHS {
		if start == 1<<64-1 {
			return bad()
		}
		return addrRange{start, start + 1}, nil
	}
	switch {
	case strings.HasPrefix(rhs, "+"):
		n, err := parseAddr(rhs[1:])
		if err != nil || n == 0 || start+n < start {
			return bad()
		}
		return addrRange{start, start + n}, nil
	case strings.HasPrefix(rhs, "-"):
		n, err := parseAddr(rhs[1:])
		if err != nil || n == 0 || n > start {
			return bad()
		}
		return addrRange{start - n, start}, nil
	}
	end, err := parseAddr(rhs)
	if err != nil || end <= start {
		return bad()
	}
	return addrRange{start, end}, nil
}

// stderrf prints a one-line "procmem: " message.
func stderrf(e *env, format string, a ...any) {
	fmt.Fprintf(e.stderr, "procmem: "+format+"\n", a...)
}

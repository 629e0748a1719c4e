package main

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/procfs"
)

var writeVerb = verb{
	name:        "write",
	args:        "-a ADDR (-s STRING | -S STRING | -b HEX)",
	short:       "write bytes to memory",
	long:        "The bytes must all lie in mapped memory; if they do not, nothing is written.\n" + exprHelp,
	setup:       setupWrite,
	needsTarget: true,
}

func setupWrite(flags *pflag.FlagSet) func(*env, []string) error {
	addrFlag := flags.StringP("address", "a", "", "`ADDR` to write at: hex (0x optional) or an address expression")
	str := flags.StringP("string", "s", "", "write `STRING`")
	str0 := flags.StringP("string0", "S", "", "write `STRING` and a terminating NUL")
	hexBytes := flags.StringP("bytes", "b", "", "write the bytes given in `HEX`, e.g. 'deadbeef' or 'de ad be ef'")
	force := flags.Bool("force", false, "write memory that is not writable (code, read-only data), as /proc/PID/mem does, copy-on-write; a shared file mapping changes the file")
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if !flags.Changed("address") {
			return usagef("write: -a ADDR is required")
		}
		var data []byte
		switch given := countChanged(flags, "string", "string0", "bytes"); {
		case given != 1:
			return usagef("write: give exactly one of -s, -S and -b")
		case flags.Changed("string"):
			data = []byte(*str)
		case flags.Changed("string0"):
			data = append([]byte(*str0), 0)
		default:
			var err error
			if data, err = parseHexBytes(*hexBytes); err != nil {
				return err
			}
		}
		addr, err := resolveAddr(e, *addrFlag)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			return fmt.Errorf("nothing to write")
		}
		return writeMemory(e, addr, data, *force)
	}
}

// writeMemory writes data at addr after checking that every byte lies in
// mapped memory, so a write that cannot complete changes nothing, and
// says what it wrote where; memory that is not writable is written only if
// force is set.
func writeMemory(e *env, addr uint64, data []byte, force bool) error {
	span, err := bytesAt(addr, len(data))
	if err != nil {
		return usagef("write: %v", err)
	}
	rd, err := openMemory(e, true)
	if err != nil {
		return err
	}
	defer rd.Close()
	regions, err := e.proc.Maps()
	if err != nil {
		return err
	}
	if !covered(regions, span.start, span.end) {
		return fmt.Errorf("0x%x-0x%x is not mapped in process %d: nothing written", span.start, span.end, e.pid())
	}
	w := rd.Writer(span.start, span.end)
	if force {
		w.Forcing()
	}
	n, err := w.WriteFull(data, addr)
	if errors.Is(err, syscall.EACCES) && n == 0 {
		return fmt.Errorf("0x%x-0x%x is not writable memory (code or read-only data): nothing written; --force writes it as /proc/PID/mem does", span.start, span.end)
	}
	if err != nil {
		return fmt.Errorf("wrote only %d of %d bytes: %w", n, len(data), err)
	}
	unit := "bytes"
	if len(data) == 1 {
		unit = "byte"
	}
	_, err = fmt.Fprintf(e.stdout, "wrote %d %s at 0x%x (%s)\n", len(data), unit, addr, place(regions, addr))
	return err
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

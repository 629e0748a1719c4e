package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/core"
	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/report"
)

var coreVerb = verb{
	name:  "core",
	args:  "[-o FILE]",
	short: "write a core file of the live process, for gdb and lldb, without stopping it",
	long: "The file is sparse: pages without data are holes. Registers are those /proc/PID/task/TID/syscall shows:\n" +
		"the stack pointer and program counter of each blocked thread, zeros for a running one; -S stops the process\n" +
		"while the core is written, for memory that does not change under it.",
	setup:       setupCore,
	needsTarget: true,
}

func setupCore(flags *pflag.FlagSet) func(*env, []string) error {
	out := flags.StringP("outfile", "o", "", "write the core to `FILE` (default core.PID)")
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		name := *out
		if name == "" {
			name = "core." + strconv.Itoa(e.pid())
		}
		return writeCore(e, name)
	}
}

// writeCore writes the core of the target to name, copying only the
// stretches with data; a core that cannot be written whole is removed.
func writeCore(e *env, name string) (err error) {
	mem, err := openMemory(e, false)
	if err != nil {
		return err
	}
	defer mem.Close()
	im, err := core.Build(e.proc, mem)
	if err != nil {
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(name)
		}
	}()
	prog := newProgress(e, im.Size(), "writing core")
	defer prog.finish()
	buf := make([]byte, chunkSize)
	var written uint64
	for off := uint64(0); off < im.Size(); {
		data, ok, err := im.Seek(mem, off, false)
		if err != nil {
			return seekErr(err)
		}
		if !ok {
			prog.add(im.Size() - off)
			break
		}
		hole, _, err := im.Seek(mem, data, true)
		if err != nil {
			return seekErr(err)
		}
		prog.add(data - off)
		for at := data; at < hole; {
			n, err := im.ReadAt(mem, buf[:min(uint64(len(buf)), hole-at)], at)
			if err != nil && n == 0 {
				// A page that cannot be read stays a hole, as the kernel
				// leaves it.
				n = int(min(pageSize, hole-at))
			} else if _, err := f.WriteAt(buf[:n], int64(at)); err != nil {
				return err
			} else {
				written += uint64(n)
			}
			at += uint64(n)
			prog.add(uint64(n))
		}
		off = hole
	}
	if err := f.Truncate(int64(im.Size())); err != nil {
		return err
	}
	stderrf(e, "wrote a core of %s (%s of data) to %s", report.Size(im.Size()), report.Size(written), name)
	return nil
}

const pageSize = 4096

func seekErr(err error) error {
	if memory.Classify(err) == memory.Gone {
		return fmt.Errorf("the process exited while its core was written")
	}
	return err
}

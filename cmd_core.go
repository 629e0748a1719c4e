package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/core"
	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/report"
)

var coreVerb = verb{
	name:  "core",
	args:  "[-o FILE] | --when COND [--count N] [--spacing D] [-i INTERVAL] [-o PREFIX]",
	short: "write a core file of the live process, for gdb and lldb, without stopping it",
	long: "The file is sparse: pages without data are holes. Registers are those /proc/PID/task/TID/syscall shows:\n" +
		"the stack pointer and program counter of each blocked thread, zeros for a running one; -S stops the process\n" +
		"while the core is written, for memory that does not change under it. A core that would not fit on the disk\n" +
		"(its data against the free space statfs reports) is not written.\n\n" +
		"--when watches the process every INTERVAL and writes a core when COND holds, up to N, at least D apart,\n" +
		"never stopping the process, each named PREFIX.DATE-TIME.WHY (PREFIX is core.PID by default):\n" +
		"  rss > 2G                  the process's resident bytes (also pss, swap, size, dirty)\n" +
		"  heap > 500M, anon.pss > 1G a kind's rss or KIND.FIELD (kinds as in procmem help usage)\n" +
		"  heap grows 100M in 60s    growth from the lowest value within the window\n" +
		"  cpu > 90% over 10s        CPU time over the last 10 s (the default window), 100% is one CPU\n" +
		"  cgroup > 90%              memory.current against the tightest memory.max of its cgroup (v1: usage and limit);\n" +
		"                            cgroup > 1.5G compares memory.current alone\n" +
		"  signal USR2               procmem itself got SIGUSR2 (or USR1): kill -USR2 <procmem's pid>\n" +
		"joined by and, or and parentheses. Sizes take K, M, G, T (powers of 1024), durations ms, s, m, h.",
	setup:       setupCore,
	needsTarget: true,
	ownSuspend:  true,
}

func setupCore(flags *pflag.FlagSet) func(*env, []string) error {
	out := flags.StringP("outfile", "o", "", "write the core to `FILE` (default core.PID); with --when, the file names' prefix")
	var t coreTrigger
	t.declare(flags)
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		name := *out
		if name == "" {
			name = "core." + strconv.Itoa(e.pid())
		}
		if t.when != "" || flags.Changed("count") || flags.Changed("spacing") || flags.Changed("interval") {
			return t.run(e, flags, name)
		}
		if e.suspend {
			resume, err := stopProcess(e.proc)
			if err != nil {
				return err
			}
			defer resume()
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
	if err := checkRoom(im, mem, name); err != nil {
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

// errNoRoom is a core that would not fit on its disk.
type errNoRoom struct{ msg string }

func (e errNoRoom) Error() string { return e.msg }

// checkRoom refuses a core whose data (all but its holes) is more than
// the free space of the filesystem it would be written to.
func checkRoom(im *core.Image, mem *memory.Reader, name string) error {
	need, err := coreData(im, mem)
	if err != nil {
		return seekErr(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(name), &st); err != nil {
		return &os.PathError{Op: "statfs", Path: filepath.Dir(name), Err: err}
	}
	if free := st.Bavail * uint64(st.Bsize); need > free {
		return errNoRoom{fmt.Sprintf("a core of %s (%s of data) would not fit in %s, which has %s free: not written",
			report.Size(im.Size()), report.Size(need), filepath.Dir(name), report.Size(free))}
	}
	return nil
}

// coreData is how many bytes of the core hold data, as the file will have
// them: everything but its holes.
func coreData(im *core.Image, mem *memory.Reader) (uint64, error) {
	var n uint64
	for off := uint64(0); off < im.Size(); {
		data, ok, err := im.Seek(mem, off, false)
		if err != nil || !ok {
			return n, err
		}
		hole, _, err := im.Seek(mem, data, true)
		if err != nil {
			return n, err
		}
		n += hole - data
		off = hole
	}
	return n, nil
}

func seekErr(err error) error {
	if memory.Classify(err) == memory.Gone {
		return fmt.Errorf("the process exited while its core was written")
	}
	return err
}

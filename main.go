// Command procmem reads and writes the memory of live Linux processes, and
// mounts it as a filesystem of one file per memory region.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/procfs"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// env is what a verb works with: the target process and the outputs.
type env struct {
	ctx    context.Context
	pid    int // the target selected with -p/-P, procmem itself by default
	stdout io.Writer
	stderr io.Writer
}

// verb is one subcommand. setup declares its flags on fs and returns the
// function that runs it with the parsed flags and remaining arguments.
type verb struct {
	name  string
	args  string // synopsis after the verb's name
	short string
	setup func(fs *pflag.FlagSet) func(e *env, args []string) error
	// noTarget verbs ignore -p/-P/-S.
	noTarget bool
}

func verbs() []verb {
	return []verb{
		{name: "info", args: "[-v | -R] [-P PATHNAME] [-w] [--no-default-filter]", short: "print the memory regions", setup: setupInfo},
		{name: "read", args: "[-r RANGE] [-W N] [-o FILE [--split | --sparse]] [--png FILE] [region filters]", short: "hexdump or save memory", setup: setupRead},
		{name: "write", args: "-a ADDR (-s STRING | -S STRING | -b HEX)", short: "write bytes to memory", setup: setupWrite},
		{name: "statm", short: "print memory usage", setup: setupStatm},
		{name: "list", short: "list processes with their PIDs", setup: setupList, noTarget: true},
		{name: "search", args: "(-s STRING | -b HEX | -t TYPE VALUE [-e little|big]) [region filters]", short: "find bytes, strings or numbers in memory", setup: setupSearch},
		{name: "watch", args: "-r RANGE [--interval 100ms]", short: "print a range whenever it changes", setup: setupWatch},
		{name: "mount", args: "[--read-only] [--allow-other] [--force-write] [--no-xattrs] [--debug] MOUNTPOINT", short: "serve process memory as a filesystem", setup: setupMount, noTarget: true},
	}
}

func findVerb(name string) (verb, bool) {
	for _, v := range verbs() {
		if v.name == name {
			return v, true
		}
	}
	return verb{}, false
}

// usageError is a mistake in how procmem was called: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// errSilent reports failure after the verb already said why.
var errSilent = errors.New("")

func globalFlags(pid, name *string, suspend *bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("procmem", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.StringVarP(pid, "pid", "p", "", "target process `PID`, or self")
	fs.StringVarP(name, "process", "P", "", "target process by exact command `NAME`")
	fs.BoolVarP(suspend, "suspend", "S", false, "stop the target (SIGSTOP) while working, resume it after")
	return fs
}

func mainUsage(w io.Writer) {
	var pid, name string
	var suspend bool
	fmt.Fprintf(w, "usage: procmem [-p PID|self | -P NAME] [-S] VERB [verb flags]\n\nVerbs:\n")
	for _, v := range verbs() {
		fmt.Fprintf(w, "  %-8s %s\n", v.name, v.short)
	}
	fmt.Fprintf(w, "\nGlobal flags:\n%s\n'procmem help VERB' or 'procmem VERB --help' describes a verb.\n",
		globalFlags(&pid, &name, &suspend).FlagUsages())
}

func verbUsage(w io.Writer, v verb) {
	fs := pflag.NewFlagSet(v.name, pflag.ContinueOnError)
	v.setup(fs)
	fmt.Fprintf(w, "usage: procmem [global flags] %s %s\n\n%s.\n", v.name, v.args, v.short)
	if usage := fs.FlagUsages(); usage != "" {
		fmt.Fprintf(w, "\nFlags:\n%s", usage)
	}
	if v.name == "read" || v.name == "watch" {
		fmt.Fprint(w, "\nRANGE is hex: ADDR (one byte), ADDR:END, ADDR:+LEN or ADDR:-LEN (the LEN bytes before ADDR).\n")
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	err := runErr(args, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "procmem: %s\n", ue.msg)
		fmt.Fprintln(stderr, "Run 'procmem help' for usage.")
		return 2
	case errors.Is(err, errSilent):
		return 1
	default:
		fmt.Fprintf(stderr, "procmem: %s\n", oneLine(err.Error()))
		return 1
	}
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }

func runErr(args []string, stdout, stderr io.Writer) error {
	var pidSpec, name string
	var suspend bool
	gfs := globalFlags(&pidSpec, &name, &suspend)
	gfs.SetOutput(io.Discard)
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			mainUsage(stdout)
			return err
		}
		return usagef("%v", err)
	}
	rest := gfs.Args()
	if len(rest) == 0 {
		names := make([]string, 0, len(verbs()))
		for _, v := range verbs() {
			names = append(names, v.name)
		}
		return usagef("no verb given: want one of %s", strings.Join(names, ", "))
	}
	if rest[0] == "help" {
		return help(rest[1:], stdout)
	}
	v, ok := findVerb(rest[0])
	if !ok {
		return usagef("unknown verb %q", rest[0])
	}
	fs := pflag.NewFlagSet(v.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	runVerb := v.setup(fs)
	if err := fs.Parse(rest[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			verbUsage(stdout, v)
			return err
		}
		return usagef("%s: %v", v.name, err)
	}
	if pidSpec != "" && name != "" {
		return usagef("-p and -P exclude each other")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	e := &env{ctx: ctx, pid: os.Getpid(), stdout: stdout, stderr: stderr}
	if v.noTarget {
		return runVerb(e, fs.Args())
	}
	var err error
	switch {
	case pidSpec != "":
		e.pid, err = procfs.ResolvePID(pidSpec)
	case name != "":
		e.pid, err = procfs.ResolveName(name)
	}
	if err != nil {
		return err
	}
	if suspend {
		resume, err := stopProcess(e.pid)
		if err != nil {
			return err
		}
		defer resume()
	}
	return runVerb(e, fs.Args())
}

func help(args []string, w io.Writer) error {
	if len(args) == 0 {
		mainUsage(w)
		return nil
	}
	v, ok := findVerb(args[0])
	if !ok {
		return usagef("unknown verb %q", args[0])
	}
	verbUsage(w, v)
	return nil
}

// stopProcess stops pid with SIGSTOP and waits until it is stopped. The
// returned function resumes it, unless it was already stopped before. The
// caller defers it; signals that would end procmem are caught (see runErr),
// so the target is resumed on Ctrl-C too.
func stopProcess(pid int) (resume func(), err error) {
	if pid == os.Getpid() {
		return nil, fmt.Errorf("-S cannot suspend procmem itself: select a target with -p or -P")
	}
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return nil, err
	}
	if st.State == 'T' || st.State == 't' {
		return func() {}, nil
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("suspend process %d: %w", pid, err)
	}
	resume = func() { syscall.Kill(pid, syscall.SIGCONT) }
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		st, err := procfs.ReadStat(pid)
		if err != nil || st.State == 'T' {
			return resume, nil
		}
	}
	resume()
	return nil, fmt.Errorf("process %d did not stop after SIGSTOP", pid)
}

// openMemory pins the target process and opens its memory; release closes
// both.
func openMemory(pid int, write bool) (p *procfs.Process, m *procfs.Mem, release func(), err error) {
	if p, err = procfs.Open(pid); err != nil {
		return nil, nil, nil, err
	}
	if m, err = p.OpenMem(write); err != nil {
		p.Close()
		return nil, nil, nil, err
	}
	return p, m, func() { m.Close(); p.Close() }, nil
}

// regionFilter is the set of flags that select regions: info, read, search.
type regionFilter struct {
	path     string
	writable bool
	all      bool
}

func (f *regionFilter) declare(fs *pflag.FlagSet) {
	fs.StringVarP(&f.path, "pathname", "P", "", "only regions with this `PATHNAME`, e.g. '[heap]'")
	fs.BoolVarP(&f.writable, "writable", "w", false, "only writable regions")
	fs.BoolVar(&f.all, "no-default-filter", false, "include [vvar], [vvar_vclock] and [vsyscall], which cannot be read")
}

// unreadable are the regions left out by default: /proc/PID/mem cannot
// read them (EIO, or above the reach of a signed offset).
var unreadable = map[string]bool{"[vvar]": true, "[vvar_vclock]": true, "[vsyscall]": true}

func (f *regionFilter) apply(regions []procfs.Region) []procfs.Region {
	var out []procfs.Region
	for _, r := range regions {
		if (!f.all && unreadable[r.Path]) || (f.writable && !r.Perms.Write) || (f.path != "" && r.Path != f.path) {
			continue
		}
		out = append(out, r)
	}
	return out
}

func (f *regionFilter) regions(pid int) ([]procfs.Region, error) {
	regions, err := procfs.Maps(pid)
	if err != nil {
		return nil, err
	}
	regions = f.apply(regions)
	if len(regions) == 0 && f.path != "" {
		return nil, fmt.Errorf("no region with pathname %q in process %d%s", f.path, pid, pathHint(pid, f.path))
	}
	return regions, nil
}

// pathHint suggests the pathnames the process has when -P matched none.
func pathHint(pid int, path string) string {
	regions, err := procfs.Maps(pid)
	if err != nil {
		return ""
	}
	seen := map[string]bool{}
	var names []string
	for _, r := range regions {
		if r.Pseudo() && !seen[r.Path] {
			seen[r.Path] = true
			names = append(names, r.Path)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return " (it has " + strings.Join(names, ", ") + ")"
}

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
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/core"
	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// env is what a verb works with: the target (a pinned process, or a
// captured one) and the outputs.
type env struct {
	ctx     context.Context
	proc    *procfs.Process // the target selected with -p/-P, procmem itself by default; nil for a capture
	capture *core.Capture   // the captured target, --core FILE; nil for a live one
	stdout  io.Writer
	stderr  io.Writer
	stdin   io.Reader
	suspend bool   // -S, for verbs that stop the target themselves (ownSuspend)
	signals func() // stops ctx from ending on SIGINT, SIGTERM and SIGHUP, for a verb that handles them
	exited  int    // for afterExit verbs: the PID -p named, which no process has (proc is nil)
}

// pid is the target's process ID, for messages: a capture's as its core
// tells it.
func (e *env) pid() int {
	if e.capture != nil {
		p, _ := e.capture.Process()
		return p.PID
	}
	return e.proc.PID
}

// verb is one subcommand. setup declares its flags and returns the
// function that runs it with the parsed flags and remaining arguments.
type verb struct {
	name  string
	args  string // synopsis after the verb's name
	short string
	long  string // what help adds after the flags; may be empty
	setup func(flags *pflag.FlagSet) func(e *env, args []string) error
	// noTarget verbs ignore -p/-P/-S.
	noTarget bool
	// needsTarget verbs make no sense on procmem itself (the default
	// target): they want -p or -P.
	needsTarget bool
	// ownSuspend verbs stop the target themselves for -S (env.suspend),
	// around each piece of work, not for as long as they run.
	ownSuspend bool
	// alone, if set, says from the parsed flags that this run of the verb
	// needs no target (scan --sessions): it runs as noTarget verbs do.
	alone func(flags *pflag.FlagSet) bool
	// captures verbs work on captured memory too (--core FILE): they read
	// it, and refuse what would write it.
	captures bool
	// afterExit verbs also run when -p names a process that has exited,
	// with env.exited set and no proc: scan removes its session.
	afterExit bool
}

func verbs() []verb {
	return []verb{infoVerb, readVerb, writeVerb, statmVerb, usageVerb, listVerb, searchVerb, scanVerb, freezeVerb, watchVerb, pointersVerb, coreVerb, mountVerb, completionVerb(), manVerb()}
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

// globals are the flags before the verb.
type globals struct {
	pid, name, core  string
	suspend, version bool
}

func globalFlags(g *globals) *pflag.FlagSet {
	pid, name, suspend, version := &g.pid, &g.name, &g.suspend, &g.version
	flags := pflag.NewFlagSet("procmem", pflag.ContinueOnError)
	flags.SetInterspersed(false)
	flags.StringVarP(pid, "pid", "p", "", "target process `PID`, or self")
	flags.StringVarP(name, "process", "P", "", "target process by exact command `NAME`")
	flags.BoolVarP(suspend, "suspend", "S", false, "stop the target (SIGSTOP) while working, resume it after")
	flags.BoolVar(version, "version", false, "print procmem's version and exit")
	flags.StringVar(&g.core, "core", "", "target the captured process in the core `FILE` (a kernel, gcore or procmem core; zstd, lz4 or xz compressed too) instead of a live one: info, read, search, scan and pointers read it")
	return flags
}

func mainUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: procmem [-p PID|self | -P NAME | --core FILE] [-S] VERB [verb flags]\n\nVerbs:\n")
	for _, v := range verbs() {
		fmt.Fprintf(w, "  %-10s %s\n", v.name, v.short)
	}
	fmt.Fprintf(w, "\nGlobal flags:\n%s\n'procmem help VERB' or 'procmem VERB --help' describes a verb.\n",
		globalFlags(&globals{}).FlagUsages())
}

func verbUsage(w io.Writer, v verb) {
	flags := pflag.NewFlagSet(v.name, pflag.ContinueOnError)
	v.setup(flags)
	fmt.Fprintf(w, "usage: procmem [global flags] %s %s\n\n%s.\n", v.name, v.args, v.short)
	if usage := flags.FlagUsages(); usage != "" {
		fmt.Fprintf(w, "\nFlags:\n%s", usage)
	}
	if v.long != "" {
		fmt.Fprintf(w, "\n%s\n", v.long)
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
		fmt.Fprintf(stderr, "procmem: %s\n", message(err))
		return 1
	}
}

// message is the one place where an error becomes what the user reads: one
// line, with a hint where the class of the error has one.
func message(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	switch memory.Classify(err) {
	case memory.Exhausted:
		return msg + " (procmem ran out of file descriptors or memory: raise ulimit -n)"
	case memory.NotPermitted:
		if !strings.Contains(msg, "permission denied") && !strings.Contains(msg, "not permitted") {
			return msg + ": permission denied"
		}
	}
	return msg
}

func runErr(args []string, stdout, stderr io.Writer) error {
	var g globals
	gflags := globalFlags(&g)
	pidSpec, name := &g.pid, &g.name
	gflags.SetOutput(io.Discard)
	if err := gflags.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			mainUsage(stdout)
			return err
		}
		return usagef("%v", err)
	}
	if g.version {
		_, err := fmt.Fprintln(stdout, version())
		return err
	}
	rest := gflags.Args()
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
		// mount -t fuse.procmem and fstab run "procmem SOURCE DIR -o OPTIONS".
		if rest, ok = mountHelperArgs(rest); !ok {
			return usagef("unknown verb %q", gflags.Args()[0])
		}
		v = mountVerb
	}
	flags := pflag.NewFlagSet(v.name, pflag.ContinueOnError)
	flags.SetOutput(io.Discard)
	runVerb := v.setup(flags)
	if err := flags.Parse(rest[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			verbUsage(stdout, v)
			return err
		}
		return usagef("%s: %v%s", v.name, err, globalFlagHint(rest[1:]))
	}
	if countSet(*pidSpec, *name, g.core) > 1 {
		return usagef("-p, -P and --core exclude each other")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, stdin: os.Stdin, signals: stop}
	if v.noTarget || v.alone != nil && v.alone(flags) {
		return runVerb(e, flags.Args())
	}
	if g.core != "" {
		return runCaptured(e, v, g.core, func() error { return runVerb(e, flags.Args()) })
	}
	if v.needsTarget && *pidSpec == "" && *name == "" {
		return usagef("%s needs a target process: procmem -p PID %s ... or procmem -P NAME %s ...", v.name, v.name, v.name)
	}
	pid, err := resolveTarget(*pidSpec, *name)
	var gone noProcess
	if errors.As(err, &gone) && v.afterExit {
		e.exited = gone.pid
		return runVerb(e, flags.Args())
	}
	if err != nil {
		return err
	}
	if e.proc, err = procfs.Open(pid); err != nil {
		return err
	}
	defer e.proc.Close()
	e.suspend = g.suspend && v.ownSuspend
	if g.suspend && !v.ownSuspend {
		resume, err := stopProcess(e.proc)
		if err != nil {
			return err
		}
		defer resume()
	}
	return runVerb(e, flags.Args())
}

// globalFlagHint says where the global flags go when one of them was given
// after the verb, where the verb's own flags do not know it.
func globalFlagHint(args []string) string {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-p" || a == "-S" || strings.HasPrefix(a, "--pid") || strings.HasPrefix(a, "--suspend") ||
			strings.HasPrefix(a, "-p") && len(a) > 2 {
			return " (global flags such as -p, -P and -S go before the verb: procmem -p PID VERB ...)"
		}
	}
	return ""
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

// stderrf prints a one-line "procmem: " message.
func stderrf(e *env, format string, a ...any) {
	fmt.Fprintf(e.stderr, "procmem: "+format+"\n", a...)
}

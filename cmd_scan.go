package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/scan"
	"github.com/procmem/procmem/userfiles"
)

var scanVerb = verb{
	name:  "scan",
	args:  "[-t TYPE] [-e little|big] [--utf16] [--unaligned] [--all-regions] [--session DIR] [--undo-budget SIZE] [-r RANGE] [region filters] [COMMAND]",
	short: "find a value that changes (health, gold, a name): scan, narrow the matches, set or freeze them",
	long: "With COMMAND, runs it, prints its result and keeps the matches in the session for the next command;\n" +
		"without, a prompt (line editing, history) that takes the same commands. Write a negative value\n" +
		"after --: procmem scan -- -5.\n\n" + scan.Help + "\n\n" +
		"Types: the numeric ones; anyint (every integer width that holds the value, each aligned to its size, as\n" +
		"scanmem's int; each match keeps the widths it has passed, list shows them, set writes the widest that\n" +
		"holds the new value); anynumber (anyint, float and double); string (UTF-8, or UTF-16 with --utf16);\n" +
		"bytes (hex with ?? and nibble wildcards). A string or byte match may cross a page boundary.\n\n" +
		"Scans cover writable regions, as scanmem's and Cheat Engine's do: --all-regions adds code and read-only\n" +
		"data, and set writes there only with --force. Pages that hold no data are not scanned: they hold only\n" +
		"zeros, and reading them would fault them in. The target keeps running; -S stops it for each scan, not\n" +
		"between them.\n\n" +
		"A session is a directory (scan-PID.session in procmem's cache directory unless --session says): every\n" +
		"step undo and redo go through, within --undo-budget (the oldest are dropped past it), and the named\n" +
		"snapshots; a step that keeps matches as they were refers to the earlier file rather than copying it,\n" +
		"and a slow disk gets compressed files. It records its process (PID, start time, image) and refuses\n" +
		"another: reset removes a session of another process, procmem -p PID scan reset one of a process that\n" +
		"has exited. procmem scan --sessions lists the sessions in the cache directory with their sizes;\n" +
		"--prune removes those of processes that have exited.\n\n" +
		"A string value is the rest of the line. Quote a byte pattern from the shell, whose ? is a wildcard\n" +
		"too: procmem -p PID scan -t bytes '48 8b ?? 90'.\n" +
		rangeHelp,
	setup:       setupScan,
	captures:    true,
	needsTarget: true,
	ownSuspend:  true,
	alone:       func(flags *pflag.FlagSet) bool { return flags.Changed("sessions") || flags.Changed("prune") },
	afterExit:   true,
}

// maxWrites bounds how many matches set and freeze write: more means the
// value is not found yet, and writing them all would wreck the process.
const maxWrites = 10000

func setupScan(flags *pflag.FlagSet) func(*env, []string) error {
	var filter regionFilter
	filter.declare(flags)
	typ := flags.StringP("type", "t", "int32", "scan for `TYPE`: "+strings.Join(scan.SpecNames(), ", "))
	endian := flags.StringP("endian", "e", "little", "byte order of numbers and UTF-16: little or big")
	utf16 := flags.Bool("utf16", false, "-t string: text in UTF-16, not UTF-8")
	unaligned := flags.Bool("unaligned", false, "try every byte offset, not only multiples of each value's size")
	allRegions := flags.Bool("all-regions", false, "scan regions without write permission too (code, read-only data)")
	session := flags.String("session", "", "keep the session in `DIR` (default: scan-PID.session in procmem's cache directory)")
	budget := flags.String("undo-budget", "", "keep at most `SIZE` of steps to undo and redo (512M, 2G; default 1G), kept for the session")
	force := flags.Bool("force", false, "set and freeze also write into regions without write permission")
	rangeFlag := flags.StringP("range", "r", "", "scan only `RANGE` (see below)")
	interval := flags.Duration("interval", 10*time.Millisecond, "how often freeze writes at the prompt")
	sessions := flags.Bool("sessions", false, "list the sessions in procmem's cache directory, with their sizes")
	prune := flags.Bool("prune", false, "remove the sessions of processes that have exited from procmem's cache directory")
	return func(e *env, args []string) error {
		if *sessions || *prune {
			if err := noArgs(args); err != nil {
				return err
			}
			return listSessions(e, *prune)
		}
		spec, err := scan.ParseSpec(*typ, *endian, *utf16, *unaligned)
		if err != nil {
			return usagef("scan: %s", syntaxMsg(err))
		}
		if *interval <= 0 {
			return usagef("scan: --interval must be above 0")
		}
		r := &scanRun{env: e, filter: &filter, force: *force, interval: *interval}
		o := scan.Options{Spec: spec, Budget: -1,
			SpecGiven: flags.Changed("type") || flags.Changed("endian") || flags.Changed("unaligned") || flags.Changed("utf16")}
		if *budget != "" {
			if o.Budget, err = scan.ParseSize(*budget); err != nil {
				return usagef("scan: --undo-budget: %s", syntaxMsg(err))
			}
		}
		filter.writable = filter.writable || !*allRegions
		// Parse the command before anything is touched: a malformed one
		// leaves nothing behind.
		var cmd *scan.Command
		if len(args) > 0 {
			c, err := scan.ParseCommand(strings.Join(args, " "))
			if err != nil {
				return usagef("scan: %s", syntaxMsg(err))
			}
			switch c.Name {
			case "quit":
				return nil
			case "help":
				fmt.Fprintln(e.stdout, scan.Help)
				return nil
			case "freeze", "unfreeze":
				return usagef("scan: %s works at the prompt only (procmem scan, no command), or use procmem freeze", c.Name)
			}
			cmd = &c
		}
		path, isDefault, err := sessionPath(e, *session)
		if err != nil {
			return err
		}
		if e.exited != 0 {
			return removeExited(e, path, cmd)
		}
		if *rangeFlag != "" {
			rng, err := resolveRange(e, *rangeFlag)
			if err != nil {
				return err
			}
			r.rng = &rng
		}
		if err := r.open(path, o, cmd); err != nil || cmd != nil && !r.sess.Changes(*cmd) {
			if err != nil {
				return err
			}
			return r.do(e.ctx, *cmd)
		}
		if isDefault {
			if _, err := userfiles.MakeCacheDir(); err != nil {
				return fmt.Errorf("no cache directory for the session: %v: give --session DIR", err)
			}
			defer r.sayExited(filepath.Dir(path))
		}
		unlock, err := scan.Lock(path)
		if err != nil {
			return err
		}
		defer unlock()
		// Another procmem may have changed it before the lock was ours.
		if err := r.open(path, o, cmd); err != nil {
			return err
		}
		if cmd == nil {
			return r.prompt()
		}
		return r.do(e.ctx, *cmd)
	}
}

// syntaxMsg is a scan.ErrSyntax error as the user reads it.
func syntaxMsg(err error) string {
	return strings.TrimPrefix(err.Error(), scan.ErrSyntax.Error()+": ")
}

// scanRun is one run of the verb: its session, and what the session's
// commands need from the command line.
type scanRun struct {
	*env
	sess     *scan.Session
	image    procfs.Image // of the process when the session was opened
	filter   *regionFilter
	rng      *addrRange
	force    bool
	interval time.Duration
	freezer  *runningFreeze
	warned   bool // the session's size was said
}

// open reads the session and checks that cmd may run on it.
func (r *scanRun) open(path string, o scan.Options, cmd *scan.Command) error {
	id, err := r.identity()
	if err != nil {
		return err
	}
	r.image = id.Image
	sess, err := scan.Open(path, id, o, cmd)
	if errors.Is(err, scan.ErrSyntax) {
		return usagef("scan: %s", syntaxMsg(err))
	}
	r.sess = sess
	return err
}

// identity is what a session records of its process: a live one's PID,
// start time, name and image; for captured memory, its core's process and
// file (the start time stands for the core file and when it was written).
func (r *scanRun) identity() (scan.Identity, error) {
	if c := r.capture; c != nil {
		p, _ := c.Process()
		h := fnv.New64a()
		fmt.Fprintf(h, "%s %d", c.Path(), c.ModTime().UnixNano())
		return scan.Identity{PID: p.PID, StartTime: h.Sum64(), Comm: p.Name}, nil
	}
	st, err := r.proc.Stat()
	if err != nil {
		return scan.Identity{}, err
	}
	return scan.Identity{PID: r.pid(), StartTime: st.StartTime, Comm: st.Comm, Image: st.Image}, nil
}

// do carries out one command.
func (r *scanRun) do(ctx context.Context, cmd scan.Command) error {
	switch cmd.Name {
	case "scan":
		return r.scan(ctx, cmd.Cond)
	case "snapshot":
		return r.snapshot(ctx, cmd.Snapshot)
	case "count":
		return r.printCount()
	case "list":
		return r.suspended(func() error { return r.list(cmd.N) })
	case "set":
		return r.set(ctx, cmd)
	case "freeze":
		return r.freeze(cmd)
	case "unfreeze":
		r.unfreeze()
	case "undo", "redo":
		move := r.sess.Undo
		if cmd.Name == "redo" {
			move = r.sess.Redo
		}
		if err := move(); err != nil {
			return err
		}
		if r.sess.Current() == nil {
			fmt.Fprintln(r.stdout, "no scan yet")
			return nil
		}
		return r.printCount()
	case "reset":
		return r.reset()
	case "history":
		return r.history()
	case "snapshots":
		r.snapshots()
	case "forget":
		if err := r.sess.Forget(cmd.Snapshot); err != nil {
			return err
		}
		fmt.Fprintf(r.stdout, "snapshot %s removed\n", cmd.Snapshot)
	case "help":
		fmt.Fprintln(r.stdout, scan.Help)
	}
	return nil
}

func (r *scanRun) printCount() error {
	cur := r.sess.Current()
	if cur == nil {
		return scan.ErrNoScan
	}
	fmt.Fprintln(r.stdout, matches(cur.Matches))
	return nil
}

func matches(n uint64) string {
	if n == 1 {
		return "1 match"
	}
	return strconv.FormatUint(n, 10) + " matches"
}

// memory opens the target's memory, and fails once the process runs
// another image than the one the session is of: an exec since, and the
// addresses mean nothing.
func (r *scanRun) memory(write bool) (*memory.Reader, error) {
	mem, err := openMemory(r.env, write)
	if err == nil && mem.Image() != r.image {
		mem.Close()
		err = fmt.Errorf("process %d has exec'd since the matches were found: their addresses mean nothing now; start over with reset", r.pid())
	}
	return mem, err
}

// regions are the regions the user selected, as maps shows them now.
func (r *scanRun) regions() ([]procfs.Region, error) {
	regions, err := r.filter.regions(r.env)
	if err != nil {
		return nil, err
	}
	if r.rng != nil {
		if regions = clip(regions, *r.rng); len(regions) == 0 {
			return nil, fmt.Errorf("0x%x-0x%x is not mapped%s in process %d (scans cover writable regions: --all-regions adds the rest)", r.rng.start, r.rng.end, r.filter.among(), r.pid())
		}
	}
	return regions, nil
}

// suspended runs work with the target stopped if -S was given.
func (r *scanRun) suspended(work func() error) error {
	if r.suspend {
		resume, err := stopProcess(r.proc)
		if err != nil {
			return err
		}
		defer resume()
	}
	return work()
}

// scan runs a first scan, or narrows the matches.
func (r *scanRun) scan(ctx context.Context, c scan.Cond) error {
	out, err := r.runScan(ctx, c, "")
	if err != nil {
		return err
	}
	fmt.Fprintln(r.stdout, matches(out.Matches))
	if out.Matches == 0 && !out.First {
		fmt.Fprintln(r.stdout, "(undo goes back; reset starts over)")
	}
	return nil
}

// runScan runs a scan command on the session and says what went amiss.
func (r *scanRun) runScan(ctx context.Context, c scan.Cond, label string) (out scan.Outcome, err error) {
	err = r.scanning(func(sc *scan.Scanner, regions []procfs.Region) (uint64, error) {
		out, err = r.sess.Scan(ctx, sc, regions, c, label)
		return out.Unread, err
	})
	if out.Dropped > 0 {
		stderrf(r.env, "the %d oldest steps were dropped to keep the undo history within %s (--undo-budget)", out.Dropped, scan.FormatSize(r.sess.Budget()))
	}
	return out, err
}

// snapshot keeps memory under a name.
func (r *scanRun) snapshot(ctx context.Context, name string) error {
	return r.scanning(func(sc *scan.Scanner, regions []procfs.Region) (uint64, error) {
		sn, unread, err := r.sess.TakeSnapshot(ctx, sc, regions, name)
		if err == nil {
			fmt.Fprintf(r.stdout, "snapshot %s: %s of memory, %s on disk\n", name, scan.FormatSize(int64(sn.Pages)*int64(scan.PageSize)), scan.FormatSize(sn.Size))
		}
		return unread, err
	})
}

// scanning runs a scan of the selected regions, with the target stopped if
// -S was given, and says what could not be read and when the session has
// grown large.
func (r *scanRun) scanning(work func(*scan.Scanner, []procfs.Region) (unread uint64, err error)) error {
	regions, err := r.regions()
	if err != nil {
		return err
	}
	mem, err := r.memory(false)
	if err != nil {
		return err
	}
	defer mem.Close()
	var unread uint64
	err = r.suspended(func() (err error) {
		unread, err = work(&scan.Scanner{Mem: mem, Progress: &scanProgress{env: r.env}}, regions)
		return err
	})
	if err != nil {
		return err
	}
	if unread > 0 {
		stderrf(r.env, "%d KiB could not be read (guard pages, device memory) and were left out", unread>>10)
	}
	r.saySize()
	return nil
}

// listDefault is how many matches list shows unless told.
const listDefault = 20

// list prints the first n matches: address, region and offset, the value
// now, the value at the last scan, and what else the type shows (anyint's
// widths, a group's offsets).
func (r *scanRun) list(n int) error {
	cur := r.sess.Current()
	if cur == nil {
		return scan.ErrNoScan
	}
	if n == 0 {
		n = listDefault
	}
	ms, err := r.sess.First(n)
	if err != nil {
		return err
	}
	all, err := r.maps()
	if err != nil {
		return err
	}
	mem, err := r.memory(false)
	if err != nil {
		return err
	}
	defer mem.Close()
	spec := cur.Spec
	for _, m := range ms {
		now, where := "?", "(unmapped)"
		if reg, ok := procfs.RegionAt(all, m.Addr); ok {
			where = fmt.Sprintf("%s  %s", reg.Perms, place(all, m.Addr))
			b := make([]byte, spec.Extent(m))
			if mem.ReadRange(b, m.Addr, all) == nil {
				now = spec.Format(m, b, false)
			}
		}
		line := fmt.Sprintf("%016x  %s  %s  %s", m.Addr, where, now, spec.Format(m, m.Old, true))
		if k := spec.Kind(m); k != "" {
			line += "  " + k
		}
		fmt.Fprintln(r.stdout, line)
	}
	if cur.Matches > uint64(n) {
		fmt.Fprintf(r.stdout, "... and %d more (list N shows N)\n", cur.Matches-uint64(n))
	}
	return nil
}

// set writes a value to every match, or to one address.
func (r *scanRun) set(ctx context.Context, cmd scan.Command) error {
	addrText, value, err := r.sess.Spec().SetArgs(cmd)
	if err != nil {
		return usagef("scan: %s", syntaxMsg(err))
	}
	var writes []scan.Write
	skipped := 0
	if addrText != "" {
		addr, err := resolveAddr(r.env, addrText)
		if err != nil {
			return err
		}
		b, err := r.sess.Encode(addr, value)
		if err != nil {
			return err
		}
		if _, err := bytesAt(addr, len(b)); err != nil {
			return usagef("scan: set: %v", err)
		}
		writes = []scan.Write{{Addr: addr, Bytes: b}}
	} else if writes, skipped, err = r.sess.Writes(value, maxWrites); err != nil {
		return err
	}
	if err := r.mayWrite(writes, cmd.Force); err != nil {
		return err
	}
	mem, err := r.memory(true)
	if err != nil {
		return err
	}
	defer mem.Close()
	written, failed := 0, 0
	for _, w := range writes {
		wr := mem.Writer(w.Addr, w.Addr+uint64(len(w.Bytes)))
		if r.force || cmd.Force {
			wr.Forcing() // mayWrite let it into memory without w
		}
		if _, err := wr.WriteFull(w.Bytes, w.Addr); err != nil {
			if memory.Classify(err) == memory.Gone || addrText != "" {
				return err
			}
			failed++
			continue
		}
		written++
	}
	if addrText != "" {
		fmt.Fprintf(r.stdout, "wrote %s at %016x\n", value, writes[0].Addr)
		return nil
	}
	fmt.Fprintf(r.stdout, "wrote %s to %s\n", value, matches(uint64(written)))
	if skipped > 0 {
		stderrf(r.env, "%s not written: %s fits none of their widths", matches(uint64(skipped)), value)
	}
	if failed > 0 {
		stderrf(r.env, "%s could not be written (unmapped since the scan)", matches(uint64(failed)))
	}
	// What the matches hold now is what the next scan compares with.
	_, err = r.runScan(ctx, scan.Cond{Op: scan.OpUpdate}, "set "+value)
	return err
}

// mayWrite refuses writes into regions without write permission unless
// forced, as write does: a scan with --all-regions finds values in code
// and read-only data, and patching those by accident wrecks the process.
func (r *scanRun) mayWrite(writes []scan.Write, force bool) error {
	if r.force || force {
		return nil
	}
	all, err := r.maps()
	if err != nil {
		return err
	}
	var bad []scan.Write
	for _, w := range writes {
		if reg, ok := procfs.RegionAt(all, w.Addr); ok && !reg.Perms.Write {
			bad = append(bad, w)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	reg, _ := procfs.RegionAt(all, bad[0].Addr)
	return fmt.Errorf("%d of %d addresses lie in regions without write permission (%s %s, ...): nothing written; set --force writes there too",
		len(bad), len(writes), reg.Perms, place(all, bad[0].Addr))
}

// reset forgets the matches, or removes a session of another process.
func (r *scanRun) reset() error {
	removed, err := r.sess.Reset()
	switch {
	case err != nil:
		return err
	case removed:
		fmt.Fprintf(r.stdout, "session %s removed: the next value command scans anew\n", r.sess.Path)
	default:
		fmt.Fprintln(r.stdout, "matches forgotten: the next value command scans anew (undo brings them back)")
	}
	return nil
}

// history prints the steps undo and redo go through.
func (r *scanRun) history() error {
	steps, cur, trimmed := r.sess.History()
	if len(steps) == 0 {
		return scan.ErrNoScan
	}
	if trimmed {
		fmt.Fprintf(r.stdout, "  (older steps dropped to keep within the undo budget of %s)\n", scan.FormatSize(r.sess.Budget()))
	} else {
		fmt.Fprintf(r.stdout, "%s #0  no scan\n", mark(cur == -1))
	}
	for i, st := range steps {
		fmt.Fprintf(r.stdout, "%s %s\n", mark(i == cur), st)
	}
	return nil
}

func mark(on bool) string {
	if on {
		return "*"
	}
	return " "
}

// snapshots prints the named snapshots.
func (r *scanRun) snapshots() {
	for _, sn := range r.sess.Snapshots() {
		fmt.Fprintln(r.stdout, sn)
	}
	if len(r.sess.Snapshots()) == 0 {
		fmt.Fprintln(r.stdout, "no snapshots: snapshot NAME takes one")
	}
}

// scanProgress shows a scan's progress on a terminal.
type scanProgress struct {
	env *env
	p   *progress
}

func (s *scanProgress) Begin(what string, total uint64) { s.p = newProgress(s.env, total, what) }
func (s *scanProgress) Add(n uint64)                    { s.p.add(n) }
func (s *scanProgress) End()                            { s.p.finish() }

package main

import (
	"context"
	"errors"
	"fmt"
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
		"snapshots, each kept compressed. It records its process (PID, start time, image) and refuses another;\n" +
		"reset removes a session of another process, and procmem -p PID scan reset one of a process that has\n" +
		"exited. procmem scan --sessions lists the sessions in the cache directory with their sizes, --prune\n" +
		"removes those of processes that have exited.\n" + rangeHelp,
	setup:       setupScan,
	needsTarget: true,
	ownSuspend:  true,
	alone:       func(flags *pflag.FlagSet) bool { return flags.Changed("sessions") || flags.Changed("prune") },
	afterExit:   true,
}

// maxWrites bounds how many matches set and freeze write: more means the
// value is not found yet, and writing them all would wreck the process.
const maxWrites = 10000

// largeSession is the size past which a session says how large it is.
const largeSession = 512 << 20

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
		r := &scanRun{env: e, filter: &filter, force: *force, interval: *interval, budget: -1}
		if *budget != "" {
			if r.budget, err = scan.ParseSize(*budget); err != nil {
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
		pid := e.exited
		if e.proc != nil {
			pid = e.pid()
		}
		path, isDefault, err := sessionPath(pid, *session)
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
		typeGiven := flags.Changed("type") || flags.Changed("endian") || flags.Changed("unaligned") || flags.Changed("utf16")
		if err := r.load(path, spec, typeGiven, cmd); err != nil {
			return err
		}
		if cmd != nil && !r.mutates(*cmd) {
			return r.do(e.ctx, *cmd)
		}
		if isDefault {
			if _, err := userfiles.MakeCacheDir(); err != nil {
				return fmt.Errorf("no cache directory for the session: %v: give --session DIR", err)
			}
		}
		unlock, err := scan.Lock(path)
		if err != nil {
			return err
		}
		defer unlock()
		// Another procmem may have changed it before the lock was ours.
		if err := r.load(path, spec, typeGiven, cmd); err != nil {
			return err
		}
		if isDefault {
			defer r.sayExited(filepath.Dir(path))
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

// sessionPath is the session of process pid: the one given, or
// scan-PID.session in procmem's cache directory (not made here).
func sessionPath(pid int, given string) (path string, isDefault bool, err error) {
	if given != "" {
		return given, false, nil
	}
	dir, err := userfiles.CacheDir()
	if err != nil {
		return "", false, fmt.Errorf("no cache directory for the session: %v: give --session DIR", err)
	}
	return filepath.Join(dir, fmt.Sprintf("scan-%d.session", pid)), true, nil
}

// scanRun is one run of the verb: its session, and what the session's
// commands need from the command line.
type scanRun struct {
	*env
	sess     *scan.Session
	id       scan.Identity
	def      scan.Spec // what a first scan scans for
	foreign  error     // the session is of another process (only reset may go on)
	filter   *regionFilter
	rng      *addrRange
	force    bool
	budget   int64 // -1: the session's own
	interval time.Duration
	freezer  *runningFreeze
	warned   bool // the session's size was said
}

// load reads the session and checks that cmd may run on it.
func (r *scanRun) load(path string, spec scan.Spec, typeGiven bool, cmd *scan.Command) error {
	reset := cmd != nil && cmd.Name == "reset"
	sess, err := scan.LoadSession(path)
	var foreign *scan.ForeignError
	if errors.As(err, &foreign) && reset {
		r.sess, r.foreign = &scan.Session{Path: path}, err
		return nil
	}
	if err != nil {
		return err
	}
	st, err := r.proc.Stat()
	if err != nil {
		return err
	}
	r.sess, r.id = sess, scan.Identity{PID: r.pid(), StartTime: st.StartTime, Comm: st.Comm, Image: st.Image}
	if r.foreign = sess.Check(r.id); r.foreign != nil && !reset {
		return r.foreign
	}
	if r.budget >= 0 {
		sess.SetBudget(r.budget)
	}
	r.def = spec
	if last, ok := sess.LastSpec(); ok && !typeGiven && r.foreign == nil {
		r.def = last
	}
	if cur := sess.Current(); typeGiven && cur != nil && !reset && !cur.Spec.Same(spec) {
		return fmt.Errorf("session %s scans %s: leave -t, -e, --utf16 and --unaligned out, or start over with reset", path, cur.Spec)
	}
	if cmd != nil && r.foreign == nil {
		if err := sess.Validate(*cmd, r.def); err != nil {
			return usagef("scan: %s", syntaxMsg(err))
		}
	}
	return nil
}

// mutates reports whether a command changes the session, so it takes the
// lock; one that fails for want of matches changes nothing.
func (r *scanRun) mutates(cmd scan.Command) bool {
	switch cmd.Name {
	case "count", "list", "history", "snapshots":
		return false
	case "set":
		addr, _, _ := r.sess.Spec(r.def).SetArgs(cmd)
		return addr == "" && r.sess.Current() != nil
	case "undo", "redo", "forget":
		return r.sess.Exists()
	case "scan":
		if cmd.Cond.Since != "" {
			return r.sess.HasSnapshot(cmd.Cond.Since)
		}
		return r.sess.Current() != nil || !cmd.Cond.NeedsPrevious()
	}
	return true
}

// do carries out one command.
func (r *scanRun) do(ctx context.Context, cmd scan.Command) error {
	switch cmd.Name {
	case "scan":
		return r.suspended(func() error { return r.scan(ctx, cmd.Cond) })
	case "snapshot":
		return r.suspended(func() error { return r.snapshot(ctx, cmd.Snapshot) })
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

// sameImage fails once the process runs another image than the one the
// session is of: an exec since, and the addresses mean nothing.
func (r *scanRun) sameImage() error {
	st, err := r.proc.Stat()
	if err != nil {
		return err
	}
	if st.Image != r.id.Image {
		return fmt.Errorf("process %d has exec'd since the matches were found: their addresses mean nothing now; start over with reset", r.pid())
	}
	return nil
}

// regions are the regions the user selected, as maps shows them now.
func (r *scanRun) regions() ([]procfs.Region, error) {
	regions, err := r.filter.regions(r.proc)
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

// scanner opens the target's memory for a scan.
func (r *scanRun) scanner() (*scan.Scanner, func(), error) {
	mem, err := openMemory(r.env, false)
	if err != nil {
		return nil, nil, err
	}
	return &scan.Scanner{Mem: mem, Progress: &scanProgress{env: r.env}}, func() { mem.Close() }, nil
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
func (r *scanRun) runScan(ctx context.Context, c scan.Cond, label string) (scan.Outcome, error) {
	if err := r.sameImage(); err != nil {
		return scan.Outcome{}, err
	}
	regions, err := r.regions()
	if err != nil {
		return scan.Outcome{}, err
	}
	sc, done, err := r.scanner()
	if err != nil {
		return scan.Outcome{}, err
	}
	defer done()
	out, err := r.sess.Scan(ctx, sc, r.id, regions, r.def, c, label)
	if err != nil {
		return out, err
	}
	if out.Unread > 0 {
		stderrf(r.env, "%d KiB could not be read (guard pages, device memory) and were not scanned", out.Unread>>10)
	}
	if out.Dropped > 0 {
		stderrf(r.env, "the %d oldest steps were dropped to keep the undo history within %s (--undo-budget)", out.Dropped, scan.FormatSize(r.sess.Budget()))
	}
	r.saySize()
	return out, nil
}

// snapshot keeps memory under a name.
func (r *scanRun) snapshot(ctx context.Context, name string) error {
	if err := r.sameImage(); err != nil {
		return err
	}
	regions, err := r.regions()
	if err != nil {
		return err
	}
	sc, done, err := r.scanner()
	if err != nil {
		return err
	}
	defer done()
	sn, unread, err := r.sess.TakeSnapshot(ctx, sc, r.id, regions, name)
	if err != nil {
		return err
	}
	if unread > 0 {
		stderrf(r.env, "%d KiB could not be read (guard pages, device memory) and are not in the snapshot", unread>>10)
	}
	fmt.Fprintf(r.stdout, "snapshot %s: %s of memory, %s on disk\n", name, scan.FormatSize(int64(sn.Pages)*int64(scan.PageSize)), scan.FormatSize(sn.Size))
	r.saySize()
	return nil
}

// saySize says, once, that the session has grown large.
func (r *scanRun) saySize() {
	if size := r.sess.Size(); size >= largeSession && !r.warned {
		r.warned = true
		stderrf(r.env, "session %s takes %s on disk: --undo-budget bounds its undo history (%s now), forget NAME removes a snapshot",
			r.sess.Path, scan.FormatSize(size), scan.FormatSize(r.sess.Budget()))
	}
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
	if err := r.sameImage(); err != nil {
		return err
	}
	if n == 0 {
		n = listDefault
	}
	ms, err := r.sess.First(n)
	if err != nil {
		return err
	}
	all, err := r.proc.Maps()
	if err != nil {
		return err
	}
	mem, err := openMemory(r.env, false)
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
	spec := r.sess.Spec(r.def)
	addrText, value, err := spec.SetArgs(cmd)
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
		b, err := r.sess.Encode(r.def, addr, value)
		if err != nil {
			return err
		}
		writes = []scan.Write{{Addr: addr, Bytes: b}}
	} else {
		if err := r.sameImage(); err != nil {
			return err
		}
		if writes, skipped, err = r.sess.Writes(value, maxWrites); err != nil {
			return err
		}
	}
	if err := r.mayWrite(writes, cmd.Force); err != nil {
		return err
	}
	mem, err := openMemory(r.env, true)
	if err != nil {
		return err
	}
	defer mem.Close()
	written, failed := 0, 0
	for _, w := range writes {
		if _, err := mem.Writer(w.Addr, w.Addr+uint64(len(w.Bytes))).WriteFull(w.Bytes, w.Addr); err != nil {
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
	all, err := r.proc.Maps()
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

// freeze starts writing a value to every match, until unfreeze.
func (r *scanRun) freeze(cmd scan.Command) error {
	if err := r.sameImage(); err != nil {
		return err
	}
	spec := r.sess.Spec(r.def)
	_, value, err := spec.SetArgs(cmd)
	if err != nil {
		return usagef("scan: %s", syntaxMsg(err))
	}
	writes, _, err := r.sess.Writes(value, maxWrites)
	if err != nil {
		return err
	}
	if err := r.mayWrite(writes, false); err != nil {
		return err
	}
	r.unfreeze()
	mem, err := openMemory(r.env, true)
	if err != nil {
		return err
	}
	f := &freezer{env: r.env, mem: mem, interval: r.interval}
	for _, w := range writes {
		f.holds = append(f.holds, hold{addr: w.Addr, value: w.Bytes, text: fmt.Sprintf("%016x", w.Addr)})
	}
	if err := f.writeAll(true); err != nil {
		mem.Close()
		return err
	}
	r.freezer = f.start()
	fmt.Fprintf(r.stdout, "holding %s at %s every %v: unfreeze stops\n", value, matches(uint64(len(writes))), r.interval)
	return nil
}

func (r *scanRun) unfreeze() {
	if r.freezer != nil {
		r.freezer.stop()
		r.freezer = nil
		fmt.Fprintln(r.stdout, "released")
	}
}

// reset forgets the matches; a session of another process, or of an
// earlier procmem, is removed.
func (r *scanRun) reset() error {
	if r.foreign != nil {
		if err := r.sess.Remove(); err != nil {
			return err
		}
		fmt.Fprintf(r.stdout, "session %s removed: the next value command scans anew\n", r.sess.Path)
		return r.load(r.sess.Path, r.def, true, nil)
	}
	if err := r.sess.Reset(r.id, r.def); err != nil {
		return err
	}
	fmt.Fprintln(r.stdout, "matches forgotten: the next value command scans anew (undo brings them back)")
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
		what := matches(st.Matches)
		if st.Reset {
			what = "no scan"
		}
		fmt.Fprintf(r.stdout, "%s #%d  %-20s %-14s %10s  %s\n", mark(i == cur), st.ID, st.Scans[len(st.Scans)-1], what, scan.FormatSize(st.Size), st.Spec)
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
		fmt.Fprintf(r.stdout, "%-16s %s  %s of memory, %s on disk\n", sn.Name, sn.Taken.Local().Format(time.DateTime),
			scan.FormatSize(int64(sn.Pages)*int64(scan.PageSize)), scan.FormatSize(sn.Size))
	}
	if len(r.sess.Snapshots()) == 0 {
		fmt.Fprintln(r.stdout, "no snapshots: snapshot NAME takes one")
	}
}

// closeSession ends what the prompt runs.
func (r *scanRun) closeSession() error {
	if r.freezer != nil {
		r.freezer.stop()
		r.freezer = nil
	}
	return nil
}

// removeExited removes the session of a process that has exited, on
// reset; anything else is refused.
func removeExited(e *env, path string, cmd *scan.Command) error {
	if cmd == nil || cmd.Name != "reset" {
		return fmt.Errorf("no process with pid %d: procmem -p %d scan reset removes its session, procmem scan --prune those of every process that has exited", e.exited, e.exited)
	}
	unlock, err := scan.Lock(path)
	if err != nil {
		return err
	}
	defer unlock()
	sess, err := scan.LoadSession(path)
	if err != nil && !errors.As(err, new(*scan.ForeignError)) {
		return err
	}
	if sess == nil {
		sess = &scan.Session{Path: path}
	}
	if err := sess.Remove(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "session %s of process %d, which has exited, removed\n", path, e.exited)
	return nil
}

// listSessions lists the sessions in the cache directory, or removes
// those of processes that have exited.
func listSessions(e *env, prune bool) error {
	dir, err := userfiles.CacheDir()
	if err != nil {
		return fmt.Errorf("no cache directory: %v", err)
	}
	list, err := scan.ListSessions(dir)
	if err != nil {
		return err
	}
	var removed int
	var freed int64
	for _, s := range list {
		state := "running"
		switch {
		case s.Err != nil:
			state = "unreadable"
		case !s.Alive:
			state = "exited"
		}
		if !prune {
			fmt.Fprintf(e.stdout, "%-8d %-16s %-10s %10s  %d steps, %d snapshots  %s\n", s.Identity.PID, s.Identity.Comm, state,
				scan.FormatSize(s.Size), s.Steps, s.Snapshots, s.Path)
			continue
		}
		if state != "exited" {
			continue
		}
		unlock, err := scan.Lock(s.Path)
		if err != nil {
			stderrf(e, "%s", message(err))
			continue
		}
		err = (&scan.Session{Path: s.Path}).Remove()
		unlock()
		if err != nil {
			return err
		}
		removed++
		freed += s.Size
	}
	if prune {
		fmt.Fprintf(e.stdout, "%d sessions of processes that have exited removed, %s freed\n", removed, scan.FormatSize(freed))
	} else if len(list) == 0 {
		fmt.Fprintf(e.stdout, "no sessions in %s\n", dir)
	}
	return nil
}

// deadSessions is the size past which a run says that sessions of
// processes that have exited take room.
const deadSessions = 256 << 20

// sayExited says when sessions of processes that have exited take room in
// the cache directory.
func (r *scanRun) sayExited(dir string) {
	list, _ := scan.ListSessions(dir)
	n, size := 0, int64(0)
	for _, s := range list {
		if s.Err == nil && !s.Alive {
			n++
			size += s.Size
		}
	}
	if size >= deadSessions {
		stderrf(r.env, "%d sessions of processes that have exited take %s in %s: procmem scan --prune removes them", n, scan.FormatSize(size), dir)
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

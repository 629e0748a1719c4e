package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/scan"
)

var scanVerb = verb{
	name:  "scan",
	args:  "[-t TYPE] [-e little|big] [--unaligned] [--session FILE] [-r RANGE] [region filters] [COMMAND]",
	short: "find a value that changes (health, gold): scan, narrow the matches, set or freeze them",
	long: "With COMMAND, runs it, prints its result and keeps the matches in the session file for the next\n" +
		"command; without, a prompt (line editing, history) that takes the same commands. Write a negative\n" +
		"value after --: procmem scan -- -5.\n\n" + scan.Help + "\n\n" +
		"Pages that hold no data are not scanned: they hold only zeros, and reading them would fault them in.\n" +
		"The target keeps running; -S stops it for each scan, not between them. A session records its process\n" +
		"(PID, start time, image) and refuses another; one level of undo is kept beside it in FILE.undo.\n" + rangeHelp,
	setup:       setupScan,
	needsTarget: true,
	ownSuspend:  true,
}

// maxWrites bounds how many matches set and freeze write: more means the
// value is not found yet, and writing them all would wreck the process.
const maxWrites = 10000

func setupScan(flags *pflag.FlagSet) func(*env, []string) error {
	var filter regionFilter
	filter.declare(flags)
	typ := flags.StringP("type", "t", "int32", "scan for values of `TYPE`: "+strings.Join(scan.TypeNames(), ", "))
	endian := flags.StringP("endian", "e", "little", "byte order of the values: little or big")
	unaligned := flags.Bool("unaligned", false, "try every byte offset, not only multiples of the type's size (a value across two pages is not seen)")
	session := flags.String("session", "", "keep the matches in `FILE` (default: scan-PID.session in procmem's cache directory)")
	rangeFlag := flags.StringP("range", "r", "", "scan only `RANGE` (see below)")
	interval := flags.Duration("interval", 10*time.Millisecond, "how often freeze writes at the prompt")
	return func(e *env, args []string) error {
		t, err := scan.ParseType(*typ, *endian)
		if err != nil {
			return usagef("scan: %s", syntaxMsg(err))
		}
		if *interval <= 0 {
			return usagef("scan: --interval must be above 0")
		}
		step := t.Size
		if *unaligned {
			step = 1
		}
		ss := &scanSession{env: e, filter: &filter, typ: t, step: step, interval: *interval}
		if *rangeFlag != "" {
			rng, err := resolveRange(e, *rangeFlag)
			if err != nil {
				return err
			}
			ss.rng = &rng
		}
		if ss.path = *session; ss.path == "" {
			if ss.path, err = defaultSession(e.pid()); err != nil {
				return err
			}
		}
		line := strings.Join(args, " ")
		unlock, err := lockSession(ss.path)
		if err != nil {
			return err
		}
		defer unlock()
		if err := ss.load(); err != nil {
			// reset starts over in a session of another process, or of
			// an image before an exec: it removes it.
			if !errors.As(err, new(foreignSession)) || strings.TrimSpace(line) != "reset" {
				return err
			}
		}
		typeGiven := flags.Changed("type") || flags.Changed("endian") || flags.Changed("unaligned")
		if !ss.cur.empty() && typeGiven && strings.TrimSpace(line) != "reset" {
			if st, sstep := ss.cur.typ(); st != t || sstep != step {
				return fmt.Errorf("session %s scans %s: leave -t, -e and --unaligned out, or start over with reset", ss.path, describeType(st, sstep))
			}
		}
		if len(args) == 0 {
			return ss.prompt()
		}
		cmd, err := scan.ParseCommand(line, ss.scanType())
		if err != nil {
			return usagef("scan: %s", syntaxMsg(err))
		}
		switch cmd.Name {
		case "quit", "help":
			if cmd.Name == "help" {
				fmt.Fprintln(e.stdout, scan.Help)
			}
			return nil
		case "freeze", "unfreeze":
			return usagef("scan: %s works at the prompt only (procmem scan, no command), or use procmem freeze", cmd.Name)
		}
		if err := ss.do(e.ctx, cmd); err != nil {
			return err
		}
		return ss.store()
	}
}

// syntaxMsg is a scan.ErrSyntax error as the user reads it.
func syntaxMsg(err error) string {
	return strings.TrimPrefix(err.Error(), scan.ErrSyntax.Error()+": ")
}

// lockSession takes the session's lock file (FILE.lock) for as long as
// the verb runs: two procmem processes on one session would each move the
// other's files.
func lockSession(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("session %s is in use by another procmem scan: wait for it, or give another --session", path)
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}

// defaultSession is the session file of process pid in procmem's cache
// directory.
func defaultSession(pid int) (string, error) {
	dir, err := cacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the session (%v): give --session FILE", err)
	}
	return filepath.Join(dir, fmt.Sprintf("scan-%d.session", pid)), nil
}

// cacheDir is procmem's directory in the user's cache directory
// ($XDG_CACHE_HOME or ~/.cache): scan sessions and the prompt's history.
func cacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "procmem"), nil
}

func describeType(t scan.Type, step int) string {
	s := t.Name
	if t.Big {
		s += " big-endian"
	}
	if step == 1 && t.Size > 1 {
		s += " unaligned"
	}
	return s
}

// scanSession is the state of a scan between commands: the matches now,
// and the ones undo goes back to, each either as in the session files or
// new.
type scanSession struct {
	*env
	path     string
	filter   *regionFilter
	rng      *addrRange
	typ      scan.Type // for the first scan; the matches' own once there are some
	step     int
	interval time.Duration
	cur      state // FILE
	prev     state // FILE.undo
	prevRead bool  // prev was loaded (it is read only for undo)
	freezer  *runningFreeze
}

// state is one set of matches and where it is kept. A set in a file is
// read when it is needed: count, snapshot and reset need its header only.
type state struct {
	set    *scan.Set // nil: nothing scanned, or not read yet (unread)
	hdr    scan.Header
	origin string // the file that holds it as it is ("" if none does)
	unread bool   // the set is in origin, not read yet
}

// empty reports whether nothing was scanned.
func (st *state) empty() bool { return st.set == nil && !st.unread }

// count is the number of matches.
func (st *state) count() uint64 {
	if st.unread {
		return st.hdr.Matches
	}
	return st.set.Count()
}

// typ is the type and step of the matches (of a state not empty).
func (st *state) typ() (scan.Type, int) {
	if !st.unread {
		return st.set.Type, st.set.Step
	}
	t, _ := scan.ParseType(st.hdr.Type, st.hdr.Endian) // ReadHeader checked it
	if st.hdr.Unaligned {
		return t, 1
	}
	return t, t.Size
}

// read reads the set from its file, if it is not read yet.
func (st *state) read() (*scan.Set, error) {
	if st.unread {
		_, set, err := scan.Load(st.origin)
		if err != nil {
			return nil, err
		}
		st.set, st.unread = set, false
	}
	return st.set, nil
}

func (ss *scanSession) undoPath() string { return ss.path + ".undo" }

// scanType is the type values are typed in: the matches', or the one
// asked for.
func (ss *scanSession) scanType() scan.Type {
	if !ss.cur.empty() {
		t, _ := ss.cur.typ()
		return t
	}
	return ss.typ
}

// scanStep is the step of the matches, or the one asked for.
func (ss *scanSession) scanStep() int {
	if !ss.cur.empty() {
		_, step := ss.cur.typ()
		return step
	}
	return ss.step
}

// matchSet is the current set, read if need be; an error if nothing was
// scanned.
func (ss *scanSession) matchSet() (*scan.Set, error) {
	if ss.cur.empty() {
		return nil, errors.New("no scan yet: start with a value, or snapshot")
	}
	return ss.cur.read()
}

// load reads the session file, if there is one, and checks that it is of
// this process.
func (ss *scanSession) load() error {
	st, err := ss.loadFile(ss.path)
	ss.cur = st
	return err
}

func (ss *scanSession) loadFile(path string) (state, error) {
	h, err := scan.ReadHeader(path)
	if errors.Is(err, fs.ErrNotExist) {
		return state{}, nil
	}
	if err != nil {
		return state{}, err
	}
	me, err := ss.identity()
	if err != nil {
		return state{}, err
	}
	if h.PID == me.PID && h.StartTime == me.StartTime && h.Image != me.Image {
		return state{}, foreignSession{fmt.Sprintf("session %s is of the image process %d (%s) ran before an exec: its addresses mean nothing now; start over with reset", path, me.PID, me.Comm)}
	}
	if h.PID != me.PID || h.StartTime != me.StartTime {
		whose := fmt.Sprintf("process %d (%s)", h.PID, h.Comm)
		if h.PID == me.PID {
			whose = fmt.Sprintf("an earlier process %d (%s), which has exited", h.PID, h.Comm)
		}
		return state{}, foreignSession{fmt.Sprintf("session %s is of %s, not of process %d (%s): give another --session, or start over with reset", path, whose, me.PID, me.Comm)}
	}
	return state{hdr: h, origin: path, unread: true}, nil
}

// foreignSession is a session file of another process.
type foreignSession struct{ msg string }

func (e foreignSession) Error() string { return e.msg }

// identity is what a session records of its process.
func (ss *scanSession) identity() (scan.Header, error) {
	st, err := ss.proc.Stat()
	if err != nil {
		return scan.Header{}, err
	}
	return scan.Header{PID: ss.pid(), StartTime: st.StartTime, Comm: st.Comm, Image: st.Image}, nil
}

// sameImage fails once the process runs another image than the one the
// matches were found in: an exec since, and their addresses mean nothing.
func (ss *scanSession) sameImage() error {
	if ss.cur.empty() {
		return nil
	}
	me, err := ss.identity()
	if err != nil {
		return err
	}
	if ss.cur.hdr.Image != me.Image {
		return fmt.Errorf("process %d has exec'd since the matches were found: their addresses mean nothing now; start over with reset", me.PID)
	}
	return nil
}

// readPrev loads what undo goes back to, once.
func (ss *scanSession) readPrev() error {
	if ss.prevRead {
		return nil
	}
	st, err := ss.loadFile(ss.undoPath())
	if err != nil && !errors.As(err, new(foreignSession)) {
		return err
	}
	ss.prev, ss.prevRead = st, true // another process's undo file: nothing to undo
	return nil
}

// commit makes set the matches; the ones before are what undo goes back to.
func (ss *scanSession) commit(set *scan.Set, scans []string) error {
	hdr, err := ss.identity()
	if err != nil {
		return err
	}
	hdr.Scans = scans
	ss.prev, ss.prevRead = ss.cur, true
	ss.cur = state{set: set, hdr: hdr}
	return nil
}

// store brings the files in line with the states: FILE holds cur,
// FILE.undo prev. What a file already holds is not written again, and a
// set that moved from one file to the other is renamed.
func (ss *scanSession) store() error {
	file, undo := ss.path, ss.undoPath()
	switch {
	case ss.cur.origin == file && (!ss.prevRead || ss.prev.origin == undo):
		return nil
	case ss.cur.origin == undo && ss.prev.origin == file: // undo: swap them
		tmp := file + ".swap"
		if err := os.Rename(file, tmp); err != nil {
			return err
		}
		if err := os.Rename(undo, file); err != nil {
			os.Rename(tmp, file)
			return err
		}
		if err := os.Rename(tmp, undo); err != nil {
			return err
		}
	case ss.prev.origin == file: // a new set, the old one kept for undo
		if err := os.Rename(file, undo); err != nil {
			return err
		}
		if err := ss.write(file, &ss.cur); err != nil {
			return err
		}
	case ss.cur.origin == undo: // undo when FILE held nothing
		if err := os.Rename(undo, file); err != nil {
			return err
		}
		if err := ss.write(undo, &ss.prev); err != nil {
			return err
		}
	default:
		if ss.prevRead && ss.prev.origin != undo {
			if err := ss.write(undo, &ss.prev); err != nil {
				return err
			}
		}
		if ss.cur.origin != file {
			if err := ss.write(file, &ss.cur); err != nil {
				return err
			}
		}
	}
	ss.cur.origin, ss.prev.origin = file, ""
	if ss.prevRead {
		ss.prev.origin = undo
	}
	return nil
}

// write saves st to path, or removes path when st holds nothing.
func (ss *scanSession) write(path string, st *state) error {
	if st.empty() {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	set, err := st.read()
	if err != nil {
		return err
	}
	if err := scan.Save(path, st.hdr, set); err != nil {
		return fmt.Errorf("saving the session: %w", err)
	}
	return nil
}

// regions are the regions the user selected, as maps shows them now.
func (ss *scanSession) regions() ([]procfs.Region, error) {
	regions, err := ss.filter.regions(ss.proc)
	if err != nil {
		return nil, err
	}
	if ss.rng != nil {
		if regions = clip(regions, *ss.rng); len(regions) == 0 {
			return nil, fmt.Errorf("0x%x-0x%x is not mapped%s in process %d", ss.rng.start, ss.rng.end, ss.filter.among(), ss.pid())
		}
	}
	return regions, nil
}

// suspended runs work with the target stopped if -S was given.
func (ss *scanSession) suspended(work func() error) error {
	if ss.suspend {
		resume, err := stopProcess(ss.proc)
		if err != nil {
			return err
		}
		defer resume()
	}
	return work()
}

// do carries out one command.
func (ss *scanSession) do(ctx context.Context, cmd scan.Command) error {
	// Matches found before an exec are addresses in another image: never
	// read or written again. A snapshot or set ADDR does not use them.
	if uses := cmd.Name == "scan" && cmd.Cond.Op != scan.OpSnapshot || cmd.Name == "list" || cmd.Name == "freeze" ||
		cmd.Name == "set" && cmd.Addr == ""; uses {
		if err := ss.sameImage(); err != nil {
			return err
		}
	}
	switch cmd.Name {
	case "scan":
		return ss.suspended(func() error { return ss.scan(ctx, cmd.Cond) })
	case "count":
		ss.printCount()
	case "list":
		return ss.suspended(func() error { return ss.list(cmd.N) })
	case "set":
		return ss.set(ctx, cmd)
	case "freeze":
		return ss.freeze(cmd.Value)
	case "unfreeze":
		return ss.unfreeze()
	case "undo":
		if err := ss.readPrev(); err != nil {
			return err
		}
		if ss.prev.empty() && ss.cur.empty() {
			return errors.New("nothing to undo")
		}
		ss.cur, ss.prev = ss.prev, ss.cur
		ss.printCount()
	case "reset":
		if err := ss.commit(nil, nil); err != nil {
			return err
		}
		fmt.Fprintln(ss.stdout, "matches forgotten: the next value command scans anew (undo brings them back)")
	case "help":
		fmt.Fprintln(ss.stdout, scan.Help)
	}
	return nil
}

func (ss *scanSession) printCount() {
	if ss.cur.empty() {
		fmt.Fprintln(ss.stdout, "no scan yet")
		return
	}
	fmt.Fprintln(ss.stdout, matches(ss.cur.count()))
}

func matches(n uint64) string {
	if n == 1 {
		return "1 match"
	}
	return strconv.FormatUint(n, 10) + " matches"
}

// scan runs a first scan, or narrows the matches.
func (ss *scanSession) scan(ctx context.Context, c scan.Cond) error {
	first := ss.cur.empty() || c.Op == scan.OpSnapshot
	if first && c.NeedsPrevious() {
		return fmt.Errorf("%s compares with a previous scan: start with a value, or snapshot when the value is not known", c)
	}
	regions, err := ss.regions()
	if err != nil {
		return err
	}
	mem, err := openMemory(ss.env, false)
	if err != nil {
		return err
	}
	defer mem.Close()
	sc := &scan.Scanner{Mem: mem}
	var set *scan.Set
	var scans []string
	if first {
		var total uint64
		for _, r := range regions {
			total += r.Size()
		}
		p := newProgress(ss.env, total, "scanning")
		sc.Progress = func(n int64) { p.add(uint64(n)) }
		res, err := sc.First(ctx, regions, ss.scanType(), ss.scanStep(), c)
		p.finish()
		if err != nil {
			return err
		}
		if res.Unread > 0 {
			stderrf(ss.env, "%d KiB could not be read (guard pages, device memory) and were not scanned", res.Unread>>10)
		}
		set, scans = res.Set, []string{c.String()}
	} else {
		prev, err := ss.cur.read()
		if err != nil {
			return err
		}
		p := newProgress(ss.env, uint64(prev.Pages())*uint64(scan.PageSize), "narrowing")
		sc.Progress = func(n int64) { p.add(uint64(n)) }
		set, err = sc.Narrow(ctx, regions, prev, c)
		p.finish()
		if err != nil {
			return err
		}
		scans = append(append([]string(nil), ss.cur.hdr.Scans...), c.String())
	}
	if err := ss.commit(set, scans); err != nil {
		return err
	}
	ss.printCount()
	if set.Count() == 0 && !first {
		fmt.Fprintln(ss.stdout, "(undo goes back; reset starts over)")
	}
	return nil
}

// listDefault is how many matches list shows unless told.
const listDefault = 20

// list prints the first n matches: address, region and offset, the value
// now, the value at the last scan.
func (ss *scanSession) list(n int) error {
	set, err := ss.matchSet()
	if err != nil {
		return err
	}
	if n == 0 {
		n = listDefault
	}
	all, err := ss.proc.Maps()
	if err != nil {
		return err
	}
	mem, err := openMemory(ss.env, false)
	if err != nil {
		return err
	}
	defer mem.Close()
	t := set.Type
	now := make([]byte, t.Size)
	for _, m := range set.First(n) {
		cur := "?"
		r, ok := procfs.RegionAt(all, m.Addr)
		where := "(unmapped)"
		if ok {
			where = fmt.Sprintf("%s  %s", r.Perms, place(all, m.Addr))
			if mem.ReadRange(now, m.Addr, all) == nil {
				cur = t.Format(now)
			}
		}
		fmt.Fprintf(ss.stdout, "%016x  %s  %s  %s\n", m.Addr, where, cur, t.Format(m.Old))
	}
	if c := set.Count(); c > uint64(n) {
		fmt.Fprintf(ss.stdout, "... and %d more (list N shows N)\n", c-uint64(n))
	}
	return nil
}

// set writes a value to every match, or to one address.
func (ss *scanSession) set(ctx context.Context, cmd scan.Command) error {
	t := ss.scanType()
	value := t.Encode(cmd.Value)
	mem, err := openMemory(ss.env, true)
	if err != nil {
		return err
	}
	defer mem.Close()
	if cmd.Addr != "" {
		addr, err := resolveAddr(ss.env, cmd.Addr)
		if err != nil {
			return err
		}
		if _, err := mem.Writer(addr, addr+uint64(len(value))).WriteFull(value, addr); err != nil {
			return err
		}
		fmt.Fprintf(ss.stdout, "wrote %s at %016x\n", cmd.Value.Text, addr)
		return nil
	}
	addrs, err := ss.writable()
	if err != nil {
		return err
	}
	prev := ss.cur.set // read by writable
	written, failed := 0, 0
	for _, a := range addrs {
		if _, err := mem.Writer(a, a+uint64(len(value))).WriteFull(value, a); err != nil {
			if memory.Classify(err) == memory.Gone {
				return err
			}
			failed++
			continue
		}
		written++
	}
	fmt.Fprintf(ss.stdout, "wrote %s to %s\n", cmd.Value.Text, matches(uint64(written)))
	if failed > 0 {
		stderrf(ss.env, "%s could not be written (unmapped since the scan)", matches(uint64(failed)))
	}
	// What the matches hold now is what the next scan compares with.
	regions, err := ss.regions()
	if err != nil {
		return err
	}
	set, err := (&scan.Scanner{Mem: mem}).Narrow(ctx, regions, prev, scan.Cond{Op: scan.OpUpdate})
	if err != nil {
		return err
	}
	return ss.commit(set, append(append([]string(nil), ss.cur.hdr.Scans...), "set "+cmd.Value.Text))
}

// writable returns the matches' addresses for set and freeze, if there
// are few enough to write.
func (ss *scanSession) writable() ([]uint64, error) {
	switch {
	case ss.cur.empty():
		return nil, errors.New("no matches to write: scan first")
	case ss.cur.count() == 0:
		return nil, errors.New("no matches to write")
	case ss.cur.count() > maxWrites:
		return nil, fmt.Errorf("%s: narrow them first (set and freeze write at most %d)", matches(ss.cur.count()), maxWrites)
	}
	set, err := ss.cur.read()
	if err != nil {
		return nil, err
	}
	var addrs []uint64
	set.Each(func(m scan.Match) bool { addrs = append(addrs, m.Addr); return true })
	return addrs, nil
}

// freeze starts writing v to every match, until unfreeze.
func (ss *scanSession) freeze(v scan.Value) error {
	addrs, err := ss.writable()
	if err != nil {
		return err
	}
	ss.unfreeze()
	mem, err := openMemory(ss.env, true)
	if err != nil {
		return err
	}
	t := ss.scanType()
	f := &freezer{env: ss.env, mem: mem, interval: ss.interval}
	for _, a := range addrs {
		f.holds = append(f.holds, hold{addr: a, value: t.Encode(v), text: fmt.Sprintf("%016x", a)})
	}
	if err := f.writeAll(true); err != nil {
		mem.Close()
		return err
	}
	ss.freezer = f.start()
	fmt.Fprintf(ss.stdout, "holding %s at %s every %v: unfreeze stops\n", v.Text, matches(uint64(len(addrs))), ss.interval)
	return nil
}

func (ss *scanSession) unfreeze() error {
	if ss.freezer == nil {
		return nil
	}
	ss.freezer.stop()
	ss.freezer = nil
	fmt.Fprintln(ss.stdout, "released")
	return nil
}

// closeSession ends what the session runs and saves it.
func (ss *scanSession) closeSession() error {
	if ss.freezer != nil {
		ss.freezer.stop()
		ss.freezer = nil
	}
	return ss.store()
}

package scan

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/userfiles"
)

// A session is a directory: a state file (JSON: whose matches they are,
// the steps so far and which one is current, the snapshots), a set file
// for each step that undo and redo go through (step-ID.set) and one for
// each named snapshot of memory (snap-NAME.set). Every file is written
// under a temporary name and renamed into place, the state last, so a
// session that is interrupted is the one before or the one after. A verb
// holds PATH.lock (beside it) while it changes the session.

// SessionFormat names the state file's format.
const SessionFormat = "procmem scan session 3"

// ErrSession is wrapped by every error about a session's state file.
var ErrSession = errors.New("not a procmem scan session")

// Identity is what a session records of its process: a session of another
// process, or of the image before an exec, means nothing in this one.
type Identity struct {
	PID       int          `json:"pid"`
	StartTime uint64       `json:"start_time"` // in clock ticks after boot (stat field 22)
	Comm      string       `json:"comm"`
	Image     procfs.Image `json:"image"` // stat's code, data, stack, argument and environment addresses
}

// DefaultBudget is how many bytes the steps undo and redo go back and
// forth through may take, unless the user sets another budget.
const DefaultBudget = 1 << 30

// Step is one set of matches in a session's history.
type Step struct {
	ID      int      `json:"id"`
	Spec    Spec     `json:"spec"`
	Scans   []string `json:"scans"` // the commands that made it, since the first scan
	Matches uint64   `json:"matches"`
	Pages   uint64   `json:"pages"`
	Size    int64    `json:"size"`            // of its set file
	Reset   bool     `json:"reset,omitempty"` // no matches: the next value scans anew
	Uses    []int    `json:"uses,omitempty"`  // the earlier steps whose files its references name
}

// String is the step's line in history: the command that made it, its
// matches, its size and what it scans for.
func (st Step) String() string {
	what := fmt.Sprintf("%d matches", st.Matches)
	switch {
	case st.Reset:
		what = "no scan"
	case st.Matches == 1:
		what = "1 match"
	}
	return fmt.Sprintf("#%d  %-20s %-14s %10s  %s", st.ID, st.Scans[len(st.Scans)-1], what, FormatSize(st.Size), st.Spec)
}

// Snapshot is a named snapshot of memory.
type Snapshot struct {
	Name  string    `json:"name"`
	Pages uint64    `json:"pages"`
	Size  int64     `json:"size"`
	Taken time.Time `json:"taken"`
}

// String is the snapshot's line in snapshots.
func (sn Snapshot) String() string {
	return fmt.Sprintf("%-16s %s  %s of memory, %s on disk", sn.Name, sn.Taken.Local().Format(time.DateTime),
		FormatSize(int64(sn.Pages)*int64(PageSize)), FormatSize(sn.Size))
}

// state is the session's state file.
type state struct {
	Format string `json:"format"`
	Identity
	Budget    int64      `json:"undo_budget"`
	Cur       int        `json:"cur"`               // the index in Steps of the matches now; -1 before the first scan
	Trimmed   bool       `json:"trimmed,omitempty"` // steps before Steps[0] were dropped for the budget
	NextID    int        `json:"next_id"`
	Steps     []Step     `json:"steps"`
	Kept      []Step     `json:"kept,omitempty"` // steps gone from the history whose files steps in it read
	Snapshots []Snapshot `json:"snapshots"`
}

// Session is a scan session kept in a directory, as one run of procmem
// uses it: for one process, with what the command line asks a first scan
// to scan for.
type Session struct {
	Path    string
	st      state
	exists  bool
	id      Identity // the process it is used with
	def     Spec     // what a first scan scans for
	foreign error    // it is of another process: only reset may go on
}

func emptyState() state { return state{Cur: -1, Budget: DefaultBudget, NextID: 1} }

// ForeignError is a session that is not of the process it is used with.
type ForeignError struct{ Msg string }

func (e *ForeignError) Error() string { return e.Msg }

// LoadSession reads the session at path, if there is one; it makes
// nothing. It reads without the lock: the state file is replaced whole,
// so it is one version or the next.
func LoadSession(path string) (*Session, error) {
	s := &Session{Path: path, st: emptyState()}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, err
	case fi.Mode().IsRegular():
		return nil, &ForeignError{fmt.Sprintf("%s is a session of an earlier procmem: start over with reset, which removes it", path)}
	case !fi.IsDir():
		return nil, fmt.Errorf("%s is no session directory", path)
	}
	if err := userfiles.CheckDir(path); err != nil {
		return nil, err
	}
	f, err := userfiles.Open(filepath.Join(path, "state"))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil // made, never saved: as good as none
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := decodeState(io.LimitReader(f, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.st, s.exists = st, true
	return s, nil
}

// decodeState reads and checks a state file.
func decodeState(r io.Reader) (state, error) {
	var st state
	if err := json.NewDecoder(r).Decode(&st); err != nil || st.Format != SessionFormat {
		return state{}, fmt.Errorf("%w: no state", ErrSession)
	}
	bad := func(why string) (state, error) { return state{}, fmt.Errorf("%w: %s", ErrSession, why) }
	if st.Cur < -1 || st.Cur >= len(st.Steps) || st.Budget < 0 {
		return bad("its current step is not one of its steps")
	}
	for i, s := range st.Steps {
		if s.ID <= 0 || s.ID >= st.NextID || (i > 0 && s.ID <= st.Steps[i-1].ID) || s.Size < 0 || !s.Spec.valid() || len(s.Scans) == 0 {
			return bad("its steps are out of order")
		}
		for _, u := range s.Uses {
			if u <= 0 || u >= s.ID {
				return bad("a step refers to one after it")
			}
		}
	}
	for _, s := range st.Kept {
		if s.ID <= 0 || s.ID >= st.NextID || s.Size < 0 {
			return bad("a kept step is not one")
		}
	}
	seen := map[string]bool{}
	for _, sn := range st.Snapshots {
		if !snapshotName.MatchString(sn.Name) || seen[sn.Name] || sn.Size < 0 {
			return bad("a snapshot's name is not one")
		}
		seen[sn.Name] = true
	}
	return st, nil
}

// Lock takes the session's lock (PATH.lock) for as long as a verb changes
// it: two procmem processes on one session would undo each other's work.
// Call it before touching anything else.
func Lock(path string) (unlock func(), err error) {
	unlock, err = userfiles.Lock(path + ".lock")
	if errors.Is(err, userfiles.ErrLocked) {
		return nil, fmt.Errorf("session %s is in use by another procmem scan: wait for it, or give another --session", path)
	}
	return unlock, err
}

// Exists reports whether the session was ever saved.
func (s *Session) Exists() bool { return s.exists }

// Identity is the process the session is of.
func (s *Session) Identity() Identity { return s.st.Identity }

// Check fails with a ForeignError unless the session (if there is one) is
// of the process id describes, and of the image it runs.
func (s *Session) Check(id Identity) error {
	h := s.st.Identity
	switch {
	case !s.exists:
		return nil
	case h.PID == id.PID && h.StartTime == id.StartTime && h.Image != id.Image:
		return &ForeignError{fmt.Sprintf("session %s is of the image process %d (%s) ran before an exec: its addresses mean nothing now; start over with reset", s.Path, id.PID, id.Comm)}
	case h.PID != id.PID || h.StartTime != id.StartTime:
		whose := fmt.Sprintf("process %d (%s)", h.PID, h.Comm)
		if h.PID == id.PID {
			whose = fmt.Sprintf("an earlier process %d (%s), which has exited", h.PID, h.Comm)
		}
		return &ForeignError{fmt.Sprintf("session %s is of %s, not of process %d (%s): give another --session, or start over with reset", s.Path, whose, id.PID, id.Comm)}
	}
	return nil
}

// Current is the step whose matches are now, nil before the first scan
// or after a reset.
func (s *Session) Current() *Step {
	if s.st.Cur < 0 || s.st.Steps[s.st.Cur].Reset {
		return nil
	}
	return &s.st.Steps[s.st.Cur]
}

// Spec is what the matches are of, or what a first scan scans for when
// there are none.
func (s *Session) Spec() Spec {
	if c := s.Current(); c != nil {
		return c.Spec
	}
	return s.def
}

// LastSpec is what the session scans for: the matches', or what the last
// reset asked for; false before the first scan.
func (s *Session) LastSpec() (Spec, bool) {
	if s.st.Cur < 0 {
		return Spec{}, false
	}
	return s.st.Steps[s.st.Cur].Spec, true
}

// Budget is the bytes the steps other than the current one may take.
func (s *Session) Budget() int64 { return s.st.Budget }

// SetBudget sets the budget for this command and the ones after it.
func (s *Session) SetBudget(n int64) { s.st.Budget = n }

// History is the steps, oldest first, and the index of the current one
// (-1: before the first); trimmed says older steps were dropped.
func (s *Session) History() (steps []Step, cur int, trimmed bool) {
	return s.st.Steps, s.st.Cur, s.st.Trimmed
}

// Snapshots are the named snapshots.
func (s *Session) Snapshots() []Snapshot { return s.st.Snapshots }

// Size is what the session's files take.
func (s *Session) Size() int64 {
	var n int64
	for _, st := range append(slices.Clone(s.st.Steps), s.st.Kept...) {
		n += st.Size
	}
	for _, sn := range s.st.Snapshots {
		n += sn.Size
	}
	return n
}

func (s *Session) stepPath(id int) string {
	return filepath.Join(s.Path, "step-"+strconv.Itoa(id)+".set")
}

// openStep opens the set file of a step, whose references name the files
// of earlier steps.
func (s *Session) openStep(id int) (*setReader, error) {
	return openSet(s.stepPath(id), id, func(step int) (*os.File, error) { return userfiles.Open(s.stepPath(step)) })
}

func (s *Session) snapPath(name string) string {
	return filepath.Join(s.Path, "snap-"+name+".set")
}

// open makes the session's directory if need be, and removes what an
// interrupted command left: files no step or snapshot names. The caller
// holds the lock.
func (s *Session) open() error {
	if err := userfiles.MakeDir(s.Path); err != nil {
		return err
	}
	if !s.exists {
		s.st.Identity = s.id
	}
	keep := map[string]bool{"state": true}
	for _, st := range append(slices.Clone(s.st.Steps), s.st.Kept...) {
		keep[filepath.Base(s.stepPath(st.ID))] = true
	}
	for _, sn := range s.st.Snapshots {
		keep[filepath.Base(s.snapPath(sn.Name))] = true
	}
	entries, err := os.ReadDir(s.Path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !keep[e.Name()] && (strings.HasSuffix(e.Name(), ".set") || strings.HasSuffix(e.Name(), ".tmp")) {
			os.Remove(filepath.Join(s.Path, e.Name()))
		}
	}
	return nil
}

// save writes the state file.
func (s *Session) save() error {
	s.st.Format = SessionFormat
	b, err := json.MarshalIndent(&s.st, "", "\t")
	if err != nil {
		return err
	}
	f, err := userfiles.Create(filepath.Join(s.Path, "state"), 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Abort()
		return err
	}
	if err := f.Commit(); err != nil {
		return err
	}
	s.exists = true
	return nil
}

// Remove removes the session and everything in it. The caller holds the
// lock.
func (s *Session) Remove() error {
	fi, err := os.Lstat(s.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode().IsRegular(): // a session of an earlier procmem
		return os.Remove(s.Path)
	}
	if err := userfiles.RemoveDir(s.Path); err != nil {
		return err
	}
	s.st, s.exists, s.foreign = emptyState(), false, nil
	return nil
}

// Outcome is what a scan did to the session.
type Outcome struct {
	Matches uint64
	First   bool   // it was a first scan
	Unread  uint64 // bytes that could not be read
	Dropped int    // old steps dropped to keep to the budget
}

// Scan runs a scan command: a first scan when there are no matches, else
// a narrowing of them. Its matches become a new step; label is what the
// history calls it ("" for the command itself). The caller holds the lock.
func (s *Session) Scan(ctx context.Context, sc *Scanner, regions []procfs.Region, c Cond, label string) (Outcome, error) {
	cur := s.Current()
	first := cur == nil || c.Op == OpSnapshot
	t, err := s.Spec().compile(c, first)
	if err != nil {
		return Outcome{}, err
	}
	var snap *setReader
	if c.Since != "" {
		if snap, err = s.openSnapshot(c.Since); err != nil {
			return Outcome{}, err
		}
		defer snap.close()
	}
	if err := s.open(); err != nil {
		return Outcome{}, err
	}
	id2 := s.st.NextID
	w, err := createSet(s.stepPath(id2), setHeader{Spec: t.spec})
	if err != nil {
		return Outcome{}, err
	}
	defer w.abort()
	var res Result
	scans := []string{cmp.Or(label, c.String())}
	switch {
	case first && snap != nil:
		res, err = sc.narrow(ctx, regions, nil, oldSource{snap: snap, fromSnap: true}, t, w, s.snapshot(c.Since).Pages*uint64(PageSize))
	case first:
		res, err = sc.first(ctx, regions, t, w)
	default:
		var prev *setReader
		if prev, err = s.openStep(cur.ID); err != nil {
			return Outcome{}, err
		}
		defer prev.close()
		if !prev.hdr.Spec.Same(cur.Spec) {
			return Outcome{}, fmt.Errorf("%s: %w: its spec is not the session's", s.stepPath(cur.ID), ErrSet)
		}
		res, err = sc.narrow(ctx, regions, prev, oldSource{snap: snap}, t, w, cur.Pages*uint64(PageSize))
		scans = append(append([]string(nil), cur.Scans...), scans...)
	}
	if err != nil {
		return Outcome{}, err
	}
	size, err := w.commit()
	if err != nil {
		return Outcome{}, err
	}
	step := Step{ID: id2, Spec: t.spec, Scans: scans, Matches: w.total.matches, Pages: uint64(w.total.pages), Size: size}
	for u := range w.refs {
		step.Uses = append(step.Uses, u)
	}
	slices.Sort(step.Uses)
	dropped, err := s.push(step)
	return Outcome{Matches: step.Matches, First: first, Unread: res.Unread, Dropped: dropped}, err
}

// push makes step the current one: the steps undo had gone back over are
// dropped (no redo past a new step), and the oldest ones while the
// history takes more than the budget. It saves the state.
func (s *Session) push(step Step) (dropped int, err error) {
	s.st.NextID = step.ID + 1
	gone := slices.Clone(s.st.Steps[s.st.Cur+1:])
	s.st.Steps = append(slices.Clone(s.st.Steps[:s.st.Cur+1]), step)
	s.st.Cur = len(s.st.Steps) - 1
	for s.historySize() > s.st.Budget && s.st.Cur > 0 {
		gone = append(gone, s.st.Steps[0])
		s.st.Steps = s.st.Steps[1:]
		s.st.Cur--
		s.st.Trimmed = true
		dropped++
	}
	s.collect(gone)
	return dropped, s.save()
}

// reads is the steps whose files the steps given read: their own, and the
// ones their references name.
func reads(steps []Step) map[int]bool {
	need := map[int]bool{}
	for _, st := range steps {
		if !st.Reset {
			need[st.ID] = true
		}
		for _, u := range st.Uses {
			need[u] = true
		}
	}
	return need
}

// collect removes the files of the steps gone from the history that no
// step left reads, and keeps the others (Kept) until none does.
func (s *Session) collect(gone []Step) {
	need := reads(s.st.Steps)
	var kept []Step
	for _, st := range append(slices.Clone(s.st.Kept), gone...) {
		switch {
		case need[st.ID]:
			kept = append(kept, st)
		case !st.Reset:
			os.Remove(s.stepPath(st.ID))
		}
	}
	s.st.Kept = kept
}

// historySize is what the files read by the steps other than the current
// one take, and not by the current one.
func (s *Session) historySize() int64 {
	cur := reads(s.st.Steps[s.st.Cur : s.st.Cur+1])
	others := reads(slices.Delete(slices.Clone(s.st.Steps), s.st.Cur, s.st.Cur+1))
	var n int64
	for _, st := range append(slices.Clone(s.st.Steps), s.st.Kept...) {
		if others[st.ID] && !cur[st.ID] {
			n += st.Size
		}
	}
	return n
}

// Reset forgets the matches: a step without any, which undo goes back
// over. A session of another process, or of an earlier procmem, is
// removed instead (removed). The caller holds the lock.
func (s *Session) Reset() (removed bool, err error) {
	if s.foreign != nil {
		return true, s.Remove()
	}
	if err := s.open(); err != nil {
		return false, err
	}
	_, err = s.push(Step{ID: s.st.NextID, Spec: s.def, Scans: []string{"reset"}, Reset: true})
	return false, err
}

// Undo goes back one step. The caller holds the lock.
func (s *Session) Undo() error {
	switch {
	case s.st.Cur < 0:
		return errors.New("nothing to undo")
	case s.st.Cur == 0 && s.st.Trimmed:
		return fmt.Errorf("no older step is kept: the undo budget is %s (--undo-budget raises it)", FormatSize(s.st.Budget))
	}
	s.st.Cur--
	return s.save()
}

// Redo goes forth one step again. The caller holds the lock.
func (s *Session) Redo() error {
	if s.st.Cur+1 >= len(s.st.Steps) {
		return errors.New("nothing to redo")
	}
	s.st.Cur++
	return s.save()
}

// HasSnapshot reports whether there is a snapshot of that name.
func (s *Session) HasSnapshot(name string) bool { return s.snapshot(name) != nil }

// snapshot is the named snapshot, or nil.
func (s *Session) snapshot(name string) *Snapshot {
	for i := range s.st.Snapshots {
		if s.st.Snapshots[i].Name == name {
			return &s.st.Snapshots[i]
		}
	}
	return nil
}

func (s *Session) openSnapshot(name string) (*setReader, error) {
	if s.snapshot(name) == nil {
		return nil, s.noSnapshot(name)
	}
	r, err := openSet(s.snapPath(name), 0, nil)
	if err != nil {
		return nil, err
	}
	if r.hdr.Spec.Class != snapshotSpec.Class || r.hdr.Spec.Len != snapshotSpec.Len {
		r.close()
		return nil, fmt.Errorf("%s: %w: not a snapshot", s.snapPath(name), ErrSet)
	}
	return r, nil
}

func (s *Session) noSnapshot(name string) error {
	var names []string
	for _, sn := range s.st.Snapshots {
		names = append(names, sn.Name)
	}
	if len(names) == 0 {
		return fmt.Errorf("no snapshot %q: snapshot %s takes one", name, name)
	}
	return fmt.Errorf("no snapshot %q (there are %s)", name, strings.Join(names, ", "))
}

// TakeSnapshot keeps the memory of the regions as it is now under name,
// replacing a snapshot of that name; the matches stay as they are. The
// caller holds the lock.
func (s *Session) TakeSnapshot(ctx context.Context, sc *Scanner, regions []procfs.Region, name string) (Snapshot, uint64, error) {
	if err := s.open(); err != nil {
		return Snapshot{}, 0, err
	}
	h := setHeader{Spec: snapshotSpec}
	for _, r := range regions {
		h.Regions = append(h.Regions, [2]uint64{r.Start, r.End})
	}
	w, err := createSet(s.snapPath(name), h)
	if err != nil {
		return Snapshot{}, 0, err
	}
	defer w.abort()
	t := &test{op: OpSnapshot, spec: snapshotSpec}
	res, err := sc.first(ctx, regions, t, w)
	if err != nil {
		return Snapshot{}, 0, err
	}
	size, err := w.commit()
	if err != nil {
		return Snapshot{}, 0, err
	}
	sn := Snapshot{Name: name, Pages: uint64(w.total.pages), Size: size, Taken: time.Now().UTC().Truncate(time.Second)}
	if old := s.snapshot(name); old != nil {
		*old = sn
	} else {
		s.st.Snapshots = append(s.st.Snapshots, sn)
	}
	return sn, res.Unread, s.save()
}

// Forget removes a named snapshot. The caller holds the lock.
func (s *Session) Forget(name string) error {
	for i, sn := range s.st.Snapshots {
		if sn.Name == name {
			s.st.Snapshots = append(s.st.Snapshots[:i], s.st.Snapshots[i+1:]...)
			if err := s.save(); err != nil {
				return err
			}
			os.Remove(s.snapPath(name))
			return nil
		}
	}
	return s.noSnapshot(name)
}

// FormatSize says a size in bytes as people read it.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// ParseSize reads a size such as 512M, 2G, 1.5GiB or 1000000.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := 1.0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult, t = float64(int64(1)<<(10*(i+1))), t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*mult > 1<<62 || strings.ContainsAny(t, "xXpP_") {
		return 0, fmt.Errorf("%w: size %q: want bytes, or a number with K, M, G or T", ErrSyntax, s)
	}
	return int64(f * mult), nil
}

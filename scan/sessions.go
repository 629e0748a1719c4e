package scan

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/userfiles"
)

// RemoveExited removes the session at path of a process that has exited,
// taking its lock first.
func RemoveExited(path string) error {
	unlock, err := Lock(path)
	if err != nil {
		return err
	}
	defer unlock()
	return (&Session{Path: path}).Remove()
}

// Prune removes the sessions in dir of processes that have exited, and
// returns them.
func Prune(dir string) ([]SessionInfo, error) {
	list, err := ListSessions(dir)
	if err != nil {
		return nil, err
	}
	var removed []SessionInfo
	for _, info := range list {
		if info.Err != nil || info.Alive {
			continue
		}
		if err := RemoveExited(info.Path); err != nil {
			return removed, err
		}
		removed = append(removed, info)
	}
	return removed, nil
}

// Exited is how many sessions in dir are of processes that have exited,
// and what they take.
func Exited(dir string) (n int, size int64) {
	list, _ := ListSessions(dir)
	for _, info := range list {
		if info.Err == nil && !info.Alive {
			n++
			size += info.Size
		}
	}
	return n, size
}

// Options is what the command line says of a session.
type Options struct {
	Spec      Spec  // what -t and the flags beside it ask a first scan for
	SpecGiven bool  // they were given, not left to their defaults
	Budget    int64 // --undo-budget; -1 keeps the session's own
}

// Open reads the session at path for the process id, and checks that cmd
// (nil: the prompt) may run on it, touching nothing: a session of another
// process, or flags that ask for another type than the matches', only for
// reset; values of the type (ErrSyntax). Without -t, a first scan scans
// for what the session last did.
func Open(path string, id Identity, o Options, cmd *Command) (*Session, error) {
	reset := cmd != nil && cmd.Name == "reset"
	s, err := LoadSession(path)
	var fe *ForeignError
	if errors.As(err, &fe) && reset {
		return &Session{Path: path, st: emptyState(), id: id, def: o.Spec, foreign: err}, nil
	}
	if err != nil {
		return nil, err
	}
	s.id, s.def = id, o.Spec
	if s.foreign = s.Check(id); s.foreign != nil && !reset {
		return nil, s.foreign
	}
	if o.Budget >= 0 {
		s.st.Budget = o.Budget
	}
	if last, ok := s.LastSpec(); ok && !o.SpecGiven && s.foreign == nil {
		s.def = last
	}
	if cur := s.Current(); o.SpecGiven && cur != nil && !reset && !cur.Spec.Same(o.Spec) {
		return nil, fmt.Errorf("session %s scans %s: leave -t, -e, --utf16 and --unaligned out, or start over with reset", path, cur.Spec)
	}
	if cmd != nil && s.foreign == nil {
		if err := s.Validate(*cmd); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Changes reports whether a command changes the session, so that it must
// hold the lock; one that fails for want of matches or of a snapshot
// changes nothing.
func (s *Session) Changes(cmd Command) bool {
	switch cmd.Name {
	case "count", "list", "history", "snapshots", "help", "quit":
		return false
	case "set":
		addr, _, _ := s.Spec().SetArgs(cmd)
		return addr == "" && s.Current() != nil
	case "undo", "redo", "forget":
		return s.exists
	case "scan":
		if cmd.Cond.Since != "" {
			return s.HasSnapshot(cmd.Cond.Since)
		}
		return s.Current() != nil || !cmd.Cond.NeedsPrevious()
	}
	return true
}

// Validate checks a command's values against what it scans for or
// writes, so that a malformed command is refused (ErrSyntax) before
// anything is touched. A command that needs matches when there are none
// passes: it fails when it runs, as a failure, not a usage error.
func (s *Session) Validate(cmd Command) error {
	spec := s.Spec()
	switch cmd.Name {
	case "scan":
		_, err := spec.compile(cmd.Cond, s.Current() == nil || cmd.Cond.Op == OpSnapshot)
		if errors.Is(err, errNoPrevious) {
			return nil
		}
		return err
	case "set", "freeze":
		addr, value, err := spec.SetArgs(cmd)
		if err != nil || (s.Current() == nil && addr == "") {
			return err
		}
		_, err = spec.encoder(value)
		return err
	}
	return nil
}

// IsNoPrevious reports whether err is a first scan that needs a previous
// one.
func IsNoPrevious(err error) bool { return errors.Is(err, errNoPrevious) }

// String is the session's line in --sessions.
func (info SessionInfo) String() string {
	state := "running"
	switch {
	case info.Err != nil:
		state = "unreadable"
	case !info.Alive:
		state = "exited"
	}
	return fmt.Sprintf("%-8d %-16s %-10s %10s  %d steps, %d snapshots  %s", info.Identity.PID, info.Identity.Comm, state,
		FormatSize(info.Size), info.Steps, info.Snapshots, info.Path)
}

// SessionInfo describes a session in a directory of them.
type SessionInfo struct {
	Path      string
	Identity  Identity
	Alive     bool  // its process still runs
	Size      int64 // what its files take
	Steps     int
	Snapshots int
	Earlier   bool  // a session file of an earlier procmem
	Err       error // why it could not be read
}

// ListSessions describes the sessions procmem keeps in dir by default
// (scan-PID.session), lowest PID first.
func ListSessions(dir string) ([]SessionInfo, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []SessionInfo
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "scan-") || !strings.HasSuffix(e.Name(), ".session") {
			continue
		}
		info := SessionInfo{Path: filepath.Join(dir, e.Name())}
		if e.Type().IsRegular() {
			info.Earlier = true
			info.Identity, info.Err = earlierIdentity(info.Path)
			if fi, err := e.Info(); err == nil {
				info.Size = fi.Size()
			}
		} else if s, err := LoadSession(info.Path); err != nil {
			info.Err = err
		} else {
			info.Identity, info.Steps, info.Snapshots = s.st.Identity, len(s.st.Steps), len(s.st.Snapshots)
			info.Size = dirSize(info.Path)
		}
		info.Alive = info.Err == nil && Alive(info.Identity)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Identity.PID < out[j].Identity.PID })
	return out, nil
}

// Alive reports whether the process a session is of still runs (a zombie
// has exited: its memory is gone).
func Alive(id Identity) bool {
	p, err := procfs.Open(id.PID)
	if err != nil {
		return false
	}
	defer p.Close()
	st, err := p.Stat()
	return err == nil && st.StartTime == id.StartTime && !st.Exited()
}

// earlierIdentity reads the process of an earlier procmem's session file
// from its first line.
func earlierIdentity(path string) (Identity, error) {
	f, err := userfiles.Open(path)
	if err != nil {
		return Identity{}, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadSlice('\n')
	var id Identity
	if err != nil || json.Unmarshal(line, &id) != nil {
		return Identity{}, ErrSession
	}
	return id, nil
}

func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

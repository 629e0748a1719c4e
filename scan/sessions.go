package scan

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/userfiles"
)

// Validate checks a command's values against what it scans for or
// writes, so that a malformed command is refused (ErrSyntax) before
// anything is touched. A command that needs matches when there are none
// passes: it fails when it runs, as a failure, not a usage error.
func (s *Session) Validate(cmd Command, def Spec) error {
	spec := s.Spec(def)
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

package main

import (
	"fmt"
	"hash/fnv"
	"path/filepath"

	"github.com/procmem/procmem/scan"
	"github.com/procmem/procmem/userfiles"
)

// This file has what the scan verb does with its sessions as files: where
// they are, what they take, and those of processes that have exited.

// largeSession is the size past which a session says how large it is.
const largeSession = 512 << 20

// sessionPath is the session of process pid: the one given, or
// scan-PID.session in procmem's cache directory (not made here).
func sessionPath(e *env, given string) (path string, isDefault bool, err error) {
	if given != "" {
		return given, false, nil
	}
	dir, err := userfiles.CacheDir()
	if err != nil {
		return "", false, fmt.Errorf("no cache directory for the session: %v: give --session DIR", err)
	}
	name := fmt.Sprintf("scan-%d.session", e.exited)
	switch {
	case e.capture != nil: // named by the core file, never a live process's
		abs, _ := filepath.Abs(e.capture.Path())
		h := fnv.New32a()
		h.Write([]byte(abs))
		name = fmt.Sprintf("scan-core-%s-%08x.session", filepath.Base(abs), h.Sum32())
	case e.proc != nil:
		name = fmt.Sprintf("scan-%d.session", e.pid())
	}
	return filepath.Join(dir, name), true, nil
}

// saySize says, once, that the session has grown large.
func (r *scanRun) saySize() {
	if size := r.sess.Size(); size >= largeSession && !r.warned {
		r.warned = true
		stderrf(r.env, "session %s takes %s on disk: --undo-budget bounds its undo history (%s now), forget NAME removes a snapshot",
			r.sess.Path, scan.FormatSize(size), scan.FormatSize(r.sess.Budget()))
	}
}

// removeExited removes the session of a process that has exited, on
// reset; anything else is refused.
func removeExited(e *env, path string, cmd *scan.Command) error {
	if cmd == nil || cmd.Name != "reset" {
		return fmt.Errorf("no process with pid %d: procmem -p %d scan reset removes its session, procmem scan --prune those of every process that has exited", e.exited, e.exited)
	}
	if err := scan.RemoveExited(path); err != nil {
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
	if prune {
		removed, err := scan.Prune(dir)
		var freed int64
		for _, s := range removed {
			freed += s.Size
		}
		fmt.Fprintf(e.stdout, "%d sessions of processes that have exited removed, %s freed\n", len(removed), scan.FormatSize(freed))
		return err
	}
	list, err := scan.ListSessions(dir)
	for _, s := range list {
		fmt.Fprintln(e.stdout, s)
	}
	if err == nil && len(list) == 0 {
		fmt.Fprintf(e.stdout, "no sessions in %s\n", dir)
	}
	return err
}

// deadSessions is the size past which a run says that sessions of
// processes that have exited take room.
const deadSessions = 256 << 20

// sayExited says when sessions of processes that have exited take room in
// the cache directory.
func (r *scanRun) sayExited(dir string) {
	if n, size := scan.Exited(dir); size >= deadSessions {
		stderrf(r.env, "%d sessions of processes that have exited take %s in %s: procmem scan --prune removes them", n, scan.FormatSize(size), dir)
	}
}

// Package userfiles makes and opens the files procmem writes for the one
// who runs it: outputs (-o), sessions, locks, history, pointer maps, plots.
// Two promises hold for all of them:
//
//   - A failed command leaves no partial file: a file is written under a
//     temporary name beside its path and renamed over it once complete
//     (Create, Commit). What is no regular file (/dev/null, a pipe, a
//     terminal) is written in place, never replaced.
//   - Nobody is led by another user's symlink: a symlink as the last
//     component of a path is followed only if it is the effective user's or
//     root's, state files (Open, OpenAppend, Lock) never follow one, and
//     procmem's cache directory is used only if it belongs to the effective
//     user and others cannot write in it, so root run with a user's HOME
//     (sudo -E) never creates files or directories in that user's home.
package userfiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// File is a file being written: its data goes to a temporary file in the
// same directory until Commit renames it into place; or, where path is no
// regular file (/dev/null, a pipe, a terminal), straight to it.
type File struct {
	*os.File
	path    string
	inPlace bool // written where it is: nothing to rename, nothing to undo
	done    bool
}

var tempSeq atomic.Uint64

// maxLinks bounds the symlinks Create follows to a regular file.
const maxLinks = 8

// Create starts writing path with permissions perm. Nothing appears at
// path until Commit; Abort (or a failed Commit) removes what was written.
// A device, pipe or socket at path is written in place, never replaced. A
// symlink is followed only if it is the effective user's or root's (as
// /dev/stdout is); another user's is refused.
func Create(path string, perm os.FileMode) (*File, error) {
	return create(path, perm, 0)
}

func create(path string, perm os.FileMode, links int) (*File, error) {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK:
		if int(st.Uid) != os.Geteuid() && st.Uid != 0 {
			return nil, fmt.Errorf("%s is a symbolic link of uid %d, which procmem does not follow", path, st.Uid)
		}
		if links >= maxLinks {
			return nil, &os.PathError{Op: "create", Path: path, Err: unix.ELOOP}
		}
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s is a symbolic link to nothing: %w", path, err)
		case fi.Mode().IsRegular():
			real, err := filepath.EvalSymlinks(path)
			if err != nil {
				return nil, err
			}
			return create(real, perm, links+1)
		}
		return openInPlace(path, 0) // /dev/stdout, /proc/self/fd/N: a pipe, a terminal
	case err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG:
		return openInPlace(path, unix.O_NOFOLLOW)
	}
	dir, base := filepath.Split(path)
	if base == "" || base == "." || base == ".." {
		return nil, fmt.Errorf("%s: not a file name", path)
	}
	for range 100 {
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d-%d.tmp", base, os.Getpid(), tempSeq.Add(1)))
		fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "create", Path: path, Err: err}
		}
		return &File{File: os.NewFile(uintptr(fd), tmp), path: path}, nil
	}
	return nil, &os.PathError{Op: "create", Path: path, Err: unix.EEXIST}
}

// openInPlace opens what is not a regular file for writing where it is.
func openInPlace(path string, flags int) (*File, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &File{File: os.NewFile(uintptr(fd), path), path: path, inPlace: true}, nil
}

// Path is where the file appears on Commit.
func (f *File) Path() string { return f.path }

// Commit closes the file and renames it to its path, replacing what was
// there (a symlink is replaced, never followed). On failure the temporary
// file is removed.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("%s: already committed or aborted", f.path)
	}
	f.done = true
	tmp := f.File.Name()
	err := f.File.Close()
	if f.inPlace {
		return err
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Abort closes and removes the temporary file; after Commit it does
// nothing, so it can be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	if !f.inPlace {
		os.Remove(f.File.Name())
	}
}

// Open opens path for reading; a symlink as its last component is refused.
func Open(path string) (*os.File, error) {
	return openFile(path, unix.O_RDONLY, 0)
}

// OpenAppend opens path for appending, creating it with mode 0600 if it is
// missing; a symlink as its last component is refused.
func OpenAppend(path string) (*os.File, error) {
	return openFile(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT, 0o600)
}

func openFile(path string, flags int, perm uint32) (*os.File, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if err == unix.EINTR {
			continue
		}
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s is a symbolic link, which procmem does not follow", path)
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// ErrLocked is returned by Lock when another process holds the lock.
var ErrLocked = errors.New("locked by another procmem")

// Lock takes an exclusive lock on path (created with mode 0600 if
// missing; a symlink is refused) for one procmem process at a time.
// unlock removes the file and releases the lock, so nothing is left
// behind; a waiter that locked the file just as it was removed notices
// and locks the new one.
func Lock(path string) (unlock func(), err error) {
	for range 100 {
		f, err := openFile(path, unix.O_RDWR|unix.O_CREAT, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("%s: %w", path, ErrLocked)
			}
			return nil, &os.PathError{Op: "lock", Path: path, Err: err}
		}
		// Locked; but if the holder before removed the file meanwhile,
		// this lock guards nothing: take the one now at path.
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Lstat(path, &now) == nil && held.Ino == now.Ino && held.Dev == now.Dev {
			return func() {
				os.Remove(path)
				f.Close()
			}, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("%s: %w", path, ErrLocked)
}

// CacheDir is procmem's directory in the user's cache directory
// ($XDG_CACHE_HOME/procmem, or ~/.cache/procmem, where ~ is the effective
// user's home when HOME belongs to someone else). It is not created here
// (MakeCacheDir does): a command that fails early leaves nothing behind.
// It fails with a one-line reason where using it would not be safe.
func CacheDir() (string, error) {
	dir, err := cacheDirPath()
	if err != nil {
		return "", err
	}
	if err := checkDirs(dir, false); err != nil {
		return "", err
	}
	return dir, nil
}

// MakeCacheDir returns CacheDir, created (mode 0700, with any missing
// parent) if missing.
func MakeCacheDir() (string, error) {
	dir, err := cacheDirPath()
	if err != nil {
		return "", err
	}
	if err := checkDirs(dir, true); err != nil {
		return "", err
	}
	return dir, nil
}

func cacheDirPath() (string, error) {
	if x := os.Getenv("XDG_CACHE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "procmem"), nil
	}
	home := os.Getenv("HOME")
	if home == "" || !ownedBy(home, os.Geteuid()) {
		// sudo -E keeps the user's HOME: root's files go to root's home.
		h, err := homeOf(os.Geteuid())
		if err != nil {
			return "", fmt.Errorf("no cache directory: HOME is not set or not yours, and %v", err)
		}
		home = h
	}
	return filepath.Join(home, ".cache", "procmem"), nil
}

// ownedBy reports whether path is a directory (not a link) owned by uid.
func ownedBy(path string, uid int) bool {
	var st unix.Stat_t
	return unix.Lstat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && int(st.Uid) == uid
}

// homeOf reads uid's home directory from /etc/passwd.
func homeOf(uid int) (string, error) {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "", err
	}
	want := strconv.Itoa(uid)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 6 && f[2] == want && filepath.IsAbs(f[5]) {
			return f[5], nil
		}
	}
	return "", fmt.Errorf("uid %d has no home in /etc/passwd", uid)
}

// checkDirs checks that dir, and each parent of it that would have to be
// created, is safe to use, creating them with mode 0700 if create is set.
// A directory is safe when it is no symlink, belongs to the effective
// user and no one else may write in it; the directory a missing one would
// be made in must belong to the effective user too (root makes nothing in
// a home not its own).
func checkDirs(dir string, create bool) error {
	uid := os.Geteuid()
	var st unix.Stat_t
	err := unix.Lstat(dir, &st)
	switch {
	case err == nil:
		return safeDir(dir, &st, uid)
	case !errors.Is(err, unix.ENOENT):
		return &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	parent := filepath.Dir(dir)
	if parent == dir {
		return fmt.Errorf("%s does not exist", dir)
	}
	var pst unix.Stat_t
	if err := unix.Lstat(parent, &pst); errors.Is(err, unix.ENOENT) {
		if err := checkDirs(parent, create); err != nil {
			return err
		}
	} else if err != nil {
		return &os.PathError{Op: "stat", Path: parent, Err: err}
	} else if int(pst.Uid) != uid {
		return fmt.Errorf("%s belongs to uid %d, not to you (uid %d): procmem makes nothing in it; set XDG_CACHE_HOME or give a file name", parent, pst.Uid, uid)
	}
	if !create {
		return nil
	}
	if err := unix.Mkdir(dir, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	if err := unix.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return safeDir(dir, &st, uid)
}

func safeDir(dir string, st *unix.Stat_t, uid int) error {
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("%s is a symbolic link, which procmem does not follow", dir)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%s is not a directory", dir)
	case int(st.Uid) != uid:
		return fmt.Errorf("%s belongs to uid %d, not to you (uid %d): procmem does not use it; set XDG_CACHE_HOME or give a file name", dir, st.Uid, uid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("%s may be written by others (mode %o): procmem does not use it", dir, st.Mode&0o777)
	}
	return nil
}

// MakeDir makes the directory path (mode 0700) if it is missing, and
// checks that it is safe to keep files in, as the cache directory is: no
// symlink, the effective user's, not writable by others. Its parent must
// exist.
func MakeDir(path string) error {
	if err := unix.Mkdir(path, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mkdir", Path: path, Err: err}
	}
	return CheckDir(path)
}

// CheckDir checks that the existing directory path is safe to keep files
// in, as MakeDir does.
func CheckDir(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return safeDir(path, &st, os.Geteuid())
}

// RemoveDir removes the directory path and everything in it, once CheckDir
// finds it safe: a symlink is never followed, another user's directory
// never emptied.
func RemoveDir(path string) error {
	if err := CheckDir(path); err != nil {
		return err
	}
	return os.RemoveAll(path)
}

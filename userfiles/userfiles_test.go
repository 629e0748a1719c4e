package userfiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateCommitAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	f, err := Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("half")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the file shows before Commit: %v", err)
	}
	f.Abort()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("Abort left %v behind", entries)
	}

	f, err = Create(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("whole")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // after Commit: nothing
	if b, err := os.ReadFile(path); err != nil || string(b) != "whole" {
		t.Fatalf("after Commit: %q, %v", b, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("Commit left %d files", len(entries))
	}
}

// A symlink at the path is replaced, never written through.
func TestCreateReplacesSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	path := filepath.Join(dir, "out")
	os.Symlink(victim, path)
	f, err := Create(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("new")
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("the link's target was written: %q", b)
	}
	if fi, _ := os.Lstat(path); fi.Mode()&os.ModeSymlink != 0 {
		t.Fatal("the link is still there")
	}
}

func TestOpenRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, nil, 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(victim, link)
	if _, err := Open(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Open of a link: %v", err)
	}
	if _, err := OpenAppend(link); err == nil {
		t.Fatal("OpenAppend followed a link")
	}
	if _, err := Lock(link); err == nil {
		t.Fatal("Lock followed a link")
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.lock")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second lock: %v", err)
	}
	unlock()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("unlock left the lock file: %v", err)
	}
	unlock, err = Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}

func TestCacheDir(t *testing.T) {
	base := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(base, "cache"))
	dir, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("CacheDir created the directory")
	}
	if got, err := MakeCacheDir(); err != nil || got != dir {
		t.Fatalf("MakeCacheDir: %q, %v", got, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made %v, %v", fi.Mode(), err)
	}
	os.Chmod(dir, 0o777)
	if _, err := CacheDir(); err == nil || !strings.Contains(err.Error(), "written by others") {
		t.Fatalf("a world-writable directory: %v", err)
	}
	os.Remove(dir)
	os.Symlink(base, dir)
	if _, err := MakeCacheDir(); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("a symlinked directory: %v", err)
	}
}

// Root run with a user's HOME makes nothing in that home.
func TestCacheDirForeignHome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a directory of another user")
	}
	home := t.TempDir()
	os.Chown(home, 65534, 65534)
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", home)
	dir, err := MakeCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(dir, home) {
		t.Fatalf("root's cache directory is in another user's home: %s", dir)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Fatalf("root made %v in another user's home", entries)
	}
	// The user's own .cache, named by XDG_CACHE_HOME, is refused.
	os.Mkdir(filepath.Join(home, ".cache"), 0o700)
	os.Chown(filepath.Join(home, ".cache"), 65534, 65534)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, ".cache"))
	if _, err := MakeCacheDir(); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("XDG_CACHE_HOME in a user's home: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(home, ".cache")); len(entries) != 0 {
		t.Fatalf("root made %v in another user's cache", entries)
	}
}

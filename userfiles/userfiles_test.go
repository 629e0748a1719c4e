package userfiles

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

func TestMakeDir(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "d")
	if err := MakeDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made %v, %v", fi, err)
	}
	if err := MakeDir(dir); err != nil {
		t.Fatalf("again: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o600)
	victim := filepath.Join(base, "victim")
	os.Mkdir(victim, 0o700)
	os.WriteFile(filepath.Join(victim, "keep"), nil, 0o600)
	link := filepath.Join(base, "link")
	os.Symlink(victim, link)
	if err := MakeDir(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("MakeDir of a link: %v", err)
	}
	if err := RemoveDir(link); err == nil {
		t.Fatal("RemoveDir followed a link")
	}
	if _, err := os.Stat(filepath.Join(victim, "keep")); err != nil {
		t.Fatalf("the link's target lost its file: %v", err)
	}
	if err := RemoveDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("RemoveDir left %v", err)
	}
}

// A device, pipe or the user's own link to one is written in place, never
// replaced: -o /dev/null must leave /dev/null a device.
func TestCreateInPlace(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() { b, _ := os.ReadFile(fifo); got <- b }()
	link := filepath.Join(dir, "link")
	os.Symlink(fifo, link)
	for _, path := range []string{fifo, link} {
		f, err := Create(path, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(path + ";")
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if path == fifo {
			if b := <-got; string(b) != fifo+";" {
				t.Errorf("the fifo read %q", b)
			}
			go func() { b, _ := os.ReadFile(fifo); got <- b }()
		}
	}
	<-got
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the fifo was replaced: %v, %v", fi.Mode(), err)
	}
	f, err := Create("/dev/null", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x")
	f.Commit()
	if fi, err := os.Lstat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("/dev/null is no longer a device: %v, %v", fi.Mode(), err)
	}
	// A link to a regular file: the file is replaced, the link kept.
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("old"), 0o600)
	tl := filepath.Join(dir, "tl")
	os.Symlink(target, tl)
	f, err = Create(tl, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("new")
	f.Commit()
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Errorf("through the user's own link: %q", b)
	}
}

// Another user's symlink is never followed.
func TestCreateRefusesOthersLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make another user's link")
	}
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(victim, link)
	os.Lchown(link, 65534, 65534)
	if _, err := Create(link, 0o600); err == nil || !strings.Contains(err.Error(), "does not follow") {
		t.Fatalf("Create through another user's link: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("the link's target changed: %q", b)
	}
}

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/fs"
	"github.com/procmem/procmem/procfs"
)

var mountVerb = verb{
	name:     "mount",
	args:     "[--read-only] [--allow-other] [--force-write] [--xattrs] [--timeout DURATION] [--core FILE]... [--debug] MOUNTPOINT",
	short:    "serve process memory as a filesystem",
	long:     "Stop it with Ctrl-C, kill (SIGTERM) or umount MOUNTPOINT; kill -USR1 prints what the daemon holds.",
	setup:    setupMount,
	noTarget: true,
}

func setupMount(flags *pflag.FlagSet) func(*env, []string) error {
	var cfg fs.Config
	flags.BoolVar(&cfg.ReadOnly, "read-only", false, "refuse every write, truncate and attribute change with EROFS")
	flags.BoolVar(&cfg.AllowOther, "allow-other", false, "let other users use the mount; each open, listing and lookup is decided as the kernel decides /proc/PID/mem or maps for that user")
	flags.BoolVar(&cfg.ForceWrite, "force-write", false, "allow writes to regions without 'w' (code, read-only data) as /proc/PID/mem does")
	flags.BoolVar(&cfg.Xattrs, "xattrs", false, "serve each region's smaps fields as extended attributes (user.procmem.*, getfattr -d); ls -l then asks for them, two round trips a file")
	flags.Bool("no-xattrs", false, "the default now: no extended attributes")
	flags.MarkHidden("no-xattrs")
	flags.BoolVar(&cfg.NoAsyncDIO, "no-async-dio", false, "have the kernel send the requests of an asynchronous direct read or write (io_uring, libaio) one at a time, not at once")
	flags.DurationVar(&cfg.Timeout, "timeout", fs.DefaultTimeout, "answer a request that waits this long on its process with EIO; the process's requests then fail at once until the call returns")
	flags.BoolVar(&cfg.Debug, "debug", false, "log every FUSE request and reply to stderr")
	flags.StringArrayVar(&cfg.Cores, "core", nil, "serve the core `FILE` (a kernel, gcore or procmem core; zstd, lz4 or xz compressed too) as a process directory, read-only, instead of live processes; repeatable")
	flags.StringVar(&cfg.CoreOptions.CacheDir, "core-cache", "", "decompress compressed cores into an unnamed file in `DIR` instead of memory")
	cpuProfile := flags.String("cpuprofile", "", "write a CPU profile of the daemon to `FILE` until it exits (for finding where time goes)")
	flags.MarkHidden("cpuprofile")
	return func(e *env, args []string) error {
		if len(args) != 1 {
			return usagef("mount: want one MOUNTPOINT")
		}
		if cfg.Timeout <= 0 {
			return usagef("mount: --timeout must be a positive duration such as 500ms or 5s")
		}
		if cfg.ReadOnly && cfg.ForceWrite {
			return usagef("mount: --read-only and --force-write exclude each other")
		}
		fsys, err := fs.New(cfg)
		if err != nil {
			return err
		}
		defer fsys.Close()
		// The daemon's work is system calls, which run on threads of their
		// own whatever GOMAXPROCS is. With one P, handing a call to its
		// goroutine (fs/bound.go) and back wakes no idle P's thread to
		// spin: 4 KiB reads took 72-84 µs with two Ps, 51-53 µs with one
		// (base 44-49 µs). GOMAXPROCS in the environment still decides.
		if os.Getenv("GOMAXPROCS") == "" {
			runtime.GOMAXPROCS(1)
		}
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		return serve(e, fsys, args[0])
	}
}

// serve mounts at dir and serves until the filesystem is unmounted or a
// signal asks to stop: the first SIGINT/SIGTERM unmounts cleanly, a second
// one detaches lazily if files were still open.
func serve(e *env, fsys *fs.FS, dir string) error {
	if err := prepareMountpoint(e, dir); err != nil {
		return err
	}
	// A daemon whose output nobody reads any more (procmem mount DIR | head)
	// must go on serving: without this, its next write to a closed pipe
	// would end it with SIGPIPE and leave a dead mount behind. Writes then
	// fail with EPIPE, which nothing here needs to hear of.
	signal.Ignore(syscall.SIGPIPE)
	// Catch the signals before mounting, so none is lost in between.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)

	server, err := fsys.Mount(dir)
	if err != nil {
		if os.Geteuid() != 0 {
			return fmt.Errorf("mount %s: %v (without root, mounting needs fusermount3 and read-write access to /dev/fuse)", dir, err)
		}
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	fmt.Fprintf(e.stdout, "procmem mounted at %s\n", dir)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-usr1:
				stderrf(e, "stats: %s nodes %d", daemonStats(), fsys.Nodes())
			}
		}
	}()
	go stopOnSignal(e, server, dir, sigs, done)
	server.Wait()
	return nil
}

// stopOnSignal unmounts on the first SIGINT/SIGTERM. While files are still
// open the kernel refuses (EBUSY), so it tries again until they are closed;
// a second signal detaches the mount lazily instead: gone for new users at
// once, served until the last open file is closed.
func stopOnSignal(e *env, server *fuse.Server, dir string, sigs <-chan os.Signal, done <-chan struct{}) {
	select {
	case <-sigs:
	case <-done:
		return
	}
	retry := time.NewTicker(100 * time.Millisecond)
	defer retry.Stop()
	for warned := false; ; {
		err := server.Unmount()
		if err == nil {
			return
		}
		if !warned {
			stderrf(e, "unmount %s: %v: waiting for open files to be closed; send the signal again to detach lazily", dir, err)
			warned = true
		}
		select {
		case <-sigs:
			if err := detach(dir); err != nil {
				stderrf(e, "lazy unmount of %s: %v", dir, err)
			}
			return
		case <-done:
			return
		case <-retry.C:
		}
	}
}

// daemonStats says what the daemon holds: goroutines, open descriptors
// and threads, for finding leaks (kill -USR1).
func daemonStats() string {
	fds, _ := os.ReadDir("/proc/self/fd")
	tasks, _ := os.ReadDir("/proc/self/task")
	return fmt.Sprintf("goroutines %d fds %d threads %d", runtime.NumGoroutine(), len(fds)-1, len(tasks))
}

// prepareMountpoint creates dir if missing and recovers a mountpoint left
// behind by a daemon that was killed ("transport endpoint is not
// connected"). It refuses, before anything is mounted, what is no
// directory and a live procmem mount.
func prepareMountpoint(e *env, dir string) error {
	// statfs always reaches a FUSE server (stat may be answered from the
	// kernel's attribute cache), so a dead one shows as ENOTCONN.
	var st syscall.Statfs_t
	err := syscall.Statfs(dir, &st)
	switch {
	case err == nil:
		return checkMountpoint(dir)
	case errors.Is(err, syscall.ENOENT):
		return os.MkdirAll(dir, 0o755)
	case errors.Is(err, syscall.ENOTCONN):
		if err := detach(dir); err != nil {
			return fmt.Errorf("%s is a stale mount of a dead daemon and could not be unmounted: %w", dir, err)
		}
		stderrf(e, "recovered stale mount at %s left by a daemon that died", dir)
		return nil
	}
	return &os.PathError{Op: "statfs", Path: dir, Err: err}
}

// detach unmounts dir lazily: at once for new users, for good once the
// last open file is closed.
func detach(dir string) error {
	if os.Geteuid() == 0 {
		return syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	out, err := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3: %v: %s", err, out)
	}
	return nil
}

// checkMountpoint refuses a mountpoint that is no directory, or a live
// procmem mount (a second one would hide the first without a word).
func checkMountpoint(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	fsType, err := procfs.MountedType(abs)
	if err == nil && fsType == "fuse.procmem" {
		return fmt.Errorf("%s is already a procmem mount: unmount it first (umount %s)", dir, dir)
	}
	return nil
}

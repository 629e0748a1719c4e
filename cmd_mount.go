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

	"github.com/procmem/procmem/daemon"
	"github.com/procmem/procmem/fs"
	"github.com/procmem/procmem/procfs"
)

var mountVerb = verb{
	name:     "mount",
	args:     "[--background] [-o OPTIONS] [--read-only] [--allow-other] [--force-write] [--xattrs] [--timeout DURATION] [--core FILE]... [--debug] MOUNTPOINT",
	short:    "serve process memory as a filesystem",
	long:     mountHelp,
	setup:    setupMount,
	noTarget: true,
}

// mountHelp is what procmem help mount and the manual say of mounting and
// of the files a mount has.
const mountHelp = `Serves in the foreground until unmounted (umount MOUNTPOINT, fusermount3 -u) or sent
SIGINT or SIGTERM, which unmount cleanly (a second signal detaches lazily while files are open)
and exit 0; kill -USR1 prints what the daemon holds. With --background it returns once the mount
is ready and the daemon serves on. MOUNTPOINT is created if missing; a file, a live procmem mount,
a place inside one, and a mountpoint another procmem is mounting on are refused. Root mounts with
mount(2); other users need fusermount3 (Debian: fuse3) and access to /dev/fuse.

Like every other filesystem (mount.fuse3 from Debian's fuse3 runs procmem in the background):
  mount -t fuse.procmem -o allow_other procmem /mnt/procmem
  /etc/fstab:  procmem  /mnt/procmem  fuse.procmem  allow_other,nofail  0 0
Under systemd, dist/procmem.service (Type=notify: procmem sends READY=1 once mounted) mounts at boot.

The mount:
  MOUNTPOINT/PID/             one directory per process (threads are not listed); self -> your own
  MOUNTPOINT/PID/START-END    one file per region of /proc/PID/maps, named like info's first column
  MOUNTPOINT/PID/heap, stack, vdso, anon:NAME ...   links to the region of that name
  MOUNTPOINT/PID/info, statm  the text of procmem info --no-default-filter and procmem statm
  MOUNTPOINT/PID/mem          the whole address space, offset = address (not listed: open it by name)
  MOUNTPOINT/PID/core         an ELF core of the live process, made when opened (not listed)
Every read is live memory; pages without data read as zeros without touching the process, and
are holes to SEEK_DATA, du and cp --sparse=always. Writes land only inside their region, in
regions with w unless --force-write.

mem is 128 TiB of mostly holes on x86-64: a tool that reads every byte (sha256sum, strings,
grep -a, md5sum, GHex) runs for hours on it. Read the part you want, or copy only the pages with
data (to tmpfs, xfs or btrfs: ext4 files stop at 16 TiB):
  xxd -s 0x55f8a0b3d2a0 -l 64 MOUNTPOINT/PID/mem
  dd if=MOUNTPOINT/PID/mem bs=4096 skip=$((0x55f8a0b3d000 / 4096)) count=16 | xxd
  cp --sparse=always MOUNTPOINT/PID/mem /dev/shm/image
The region files are what tools that read whole files want.`

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
	background := flags.Bool("background", false, "return once the mount is ready, the daemon serving on in the background (as mount -t fuse.procmem does); its errors until then go to stderr, its log after to the journal under systemd, else nowhere")
	options := flags.StringArrayP("options", "o", nil, "mount `OPTIONS` as mount(8) and fstab spell them, comma-separated: allow_other, ro, force_write, xattrs, no_async_dio, timeout=5s, core=FILE, debug; rw, dev, suid, exec, nofail, _netdev, defaults and the like are taken and ignored")
	return func(e *env, args []string) error {
		if len(args) != 1 {
			return usagef("mount: want one MOUNTPOINT")
		}
		if err := applyMountOptions(flags, *options); err != nil {
			return err
		}
		if cfg.Timeout <= 0 {
			return usagef("mount: --timeout must be a positive duration such as 500ms or 5s")
		}
		if cfg.ReadOnly && cfg.ForceWrite {
			return usagef("mount: --read-only and --force-write exclude each other")
		}
		child := daemon.Detached()
		if *background && child == nil {
			return startDaemon(e, flags, args[0])
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
		return serve(e, fsys, args[0], child)
	}
}

// startDaemon runs the mount again as a daemon, with the flags given
// (options spelled out as flags), and returns once it serves: mount(8)
// and a unit's ExecStart wait for that. Its errors until then are the
// caller's.
func startDaemon(e *env, flags *pflag.FlagSet, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	args := []string{"mount"}
	flags.Visit(func(f *pflag.Flag) {
		if f.Name == "options" || f.Name == "background" {
			return
		}
		if list, ok := f.Value.(pflag.SliceValue); ok { // --core, once for each
			for _, v := range list.GetSlice() {
				args = append(args, "--"+f.Name+"="+v)
			}
			return
		}
		args = append(args, "--"+f.Name+"="+f.Value.String())
	})
	if _, err := daemon.Start(append(args, abs), e.stderr); err != nil {
		if errors.Is(err, daemon.ErrFailed) {
			return errSilent // it said why
		}
		return fmt.Errorf("starting the daemon: %w", err)
	}
	return nil
}

// serve mounts at dir and serves until the filesystem is unmounted or a
// signal asks to stop: the first SIGINT/SIGTERM unmounts cleanly, a second
// one detaches lazily if files were still open. A daemon started in the
// background (child) tells its parent when it serves; one under systemd
// tells systemd.
func serve(e *env, fsys *fs.FS, dir string, child *daemon.Child) error {
	lock, err := claimMountpoint(e, dir)
	if err != nil {
		return err
	}
	defer lock.Close() // held while the daemon serves
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
	if child != nil {
		if err := child.Ready(); err != nil {
			stderrf(e, "%v", err)
		}
	} else {
		fmt.Fprintf(e.stdout, "procmem mounted at %s\n", dir)
	}
	if err := daemon.Notify(fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid())); err != nil {
		stderrf(e, "%v", err)
	}
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
	daemon.Notify("STOPPING=1")
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

// claimMountpoint makes dir ready to mount on, and takes its lock: it
// creates dir if missing and recovers a mountpoint left behind by a
// daemon that was killed ("transport endpoint is not connected"). It
// refuses, before anything is mounted, what is no directory, a live
// procmem mount or a place inside one, and a mountpoint another procmem
// is mounting on: looked at again once the lock is held, so two daemons
// started at once never both mount there.
func claimMountpoint(e *env, dir string) (*os.File, error) {
	if err := checkMountpoint(dir); err != nil {
		return nil, err
	}
	if err := prepareMountpoint(e, dir); err != nil {
		return nil, err
	}
	lock, err := daemon.LockMountpoint(dir)
	if errors.Is(err, daemon.ErrBusy) {
		if err := checkMountpoint(dir); err != nil {
			return nil, err // it has mounted meanwhile
		}
		return nil, fmt.Errorf("%s: another procmem is mounting there", dir)
	}
	if err != nil {
		return nil, err
	}
	if err := checkMountpoint(dir); err != nil {
		lock.Close()
		return nil, err
	}
	return lock, nil
}

// prepareMountpoint creates dir if missing and recovers a mountpoint left
// behind by a daemon that was killed ("transport endpoint is not
// connected").
func prepareMountpoint(e *env, dir string) error {
	// statfs always reaches a FUSE server (stat may be answered from the
	// kernel's attribute cache), so a dead one shows as ENOTCONN.
	var st syscall.Statfs_t
	err := syscall.Statfs(dir, &st)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOENT):
		return os.MkdirAll(dir, 0o755)
	case errors.Is(err, syscall.ENOTCONN):
		if err := detach(dir); err != nil {
			if syscall.Statfs(dir, &st) == nil {
				return nil // another daemon recovered it meanwhile
			}
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

// checkMountpoint refuses a mountpoint that is no directory, a live
// procmem mount (a second one would hide the first without a word) and a
// place inside one (the daemon would serve its own requests), found by the
// device of dir, or of its nearest ancestor that exists.
func checkMountpoint(dir string) error {
	at := filepath.Clean(dir)
	var st syscall.Stat_t
	for {
		// statfs reaches a FUSE server where stat may be answered from
		// the kernel's cache: a dead one shows as ENOTCONN.
		var fst syscall.Statfs_t
		err := syscall.Statfs(at, &fst)
		if err == nil {
			err = syscall.Stat(at, &st)
		}
		if err == nil {
			break
		}
		if errors.Is(err, syscall.ENOTCONN) {
			return nil // a stale mount: prepareMountpoint recovers it
		}
		if !errors.Is(err, syscall.ENOENT) || filepath.Dir(at) == at {
			return &os.PathError{Op: "stat", Path: at, Err: err}
		}
		at = filepath.Dir(at)
	}
	if at == filepath.Clean(dir) && st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return fmt.Errorf("%s is not a directory", dir)
	}
	point, fsType, err := procfs.MountOfDevice(st.Dev)
	if err != nil || fsType != "fuse.procmem" {
		return err
	}
	if at == filepath.Clean(dir) && sameFile(dir, point) {
		return fmt.Errorf("%s is already a procmem mount: unmount it first (umount %s)", dir, dir)
	}
	return fmt.Errorf("%s is inside the procmem mount at %s: mount somewhere else", dir, point)
}

// sameFile reports whether a and b name the same file.
func sameFile(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

//go:build linux

package integration

// Benchmarks that measure procmem side by side with the kernel's own
// interface (and with a null FUSE server, the transport's ceiling) in one
// run, on the same target, and report medians and ratios. Run them all:
//
//	go test ./integration -run '^$' -bench . -benchtime 5x
//
// Each iteration measures every contender once, alternating, so noise on
// the shared machine hits both sides alike.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/procmem/procmem/procfs"
)

var (
	toolsMu sync.Mutex
	tools   = map[string]string{}
)

// buildTool builds one of the benchmarks' helper commands once per run.
func buildTool(b testing.TB, name string) string {
	toolsMu.Lock()
	defer toolsMu.Unlock()
	if bin, ok := tools[name]; ok {
		return bin
	}
	bin := filepath.Join(binDir, name)
	if out, err := exec.Command("go", "build", "-o", bin, "./"+name).CombinedOutput(); err != nil {
		b.Fatalf("building %s: %v\n%s", name, err, out)
	}
	tools[name] = bin
	return bin
}

// startNullFS mounts a null server with one file of the given size and
// returns the file's path: "nullfs" (go-fuse, mounted as procmem is) or
// "rawfuse" (the same file from a bare loop on /dev/fuse, without go-fuse),
// given flags before its arguments.
func startNullFS(b *testing.B, server string, size uint64, flags ...string) string {
	bin := buildTool(b, server)
	dir := filepath.Join(b.TempDir(), server)
	os.Mkdir(dir, 0o755)
	cmd := exec.Command(bin, append(flags, dir, fmt.Sprint(size))...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		syscall.Unmount(dir, 0) // both servers exit when their mount goes
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if isMounted(dir) {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	waitFor(b, server, func() (string, bool) { _, err := os.Stat(filepath.Join(dir, "data")); return "", err == nil })
	return filepath.Join(dir, "data")
}

// preadRegion reads region r of an open /proc/PID/mem in 1 MiB preads, the
// kernel's own interface the benchmarks compare with, and returns how long
// it took.
func preadRegion(b *testing.B, mem *os.File, r procfs.Region) time.Duration {
	b.Helper()
	buf := make([]byte, 1<<20)
	start := time.Now()
	for addr := r.Start; addr < r.End; addr += uint64(len(buf)) {
		if _, err := mem.ReadAt(buf[:min(uint64(len(buf)), r.End-addr)], int64(addr)); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// timed runs a command and returns how long it took.
func timed(b *testing.B, name string, args ...string) time.Duration {
	b.Helper()
	start := time.Now()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return time.Since(start)
}

// samples collects durations per contender.
type samples map[string][]time.Duration

func (s samples) median(name string) time.Duration {
	d := append([]time.Duration(nil), s[name]...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	if len(d) == 0 {
		return 0
	}
	return d[len(d)/2]
}

// report adds the median of each contender in ms and the ratios asked for.
func (s samples) report(b *testing.B, ratios ...[2]string) {
	for name := range s {
		b.ReportMetric(float64(s.median(name).Microseconds())/1000, name+"-ms")
	}
	for _, r := range ratios {
		b.ReportMetric(s.median(r[0]).Seconds()/s.median(r[1]).Seconds(), r[0]+"/"+r[1])
	}
}

func gbps(size uint64, d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }

// BenchmarkDd1GiB: dd bs=1M of a 1 GiB filled region through the mount,
// straight from /proc/PID/mem (dd, and 1 MiB preads in the test process),
// and from the null servers: go-fuse's (procmem's transport with nothing
// to read), a bare loop on /dev/fuse (the kernel's part alone) and the same
// loop with ordinary system calls (adding the Go scheduler's part).
func BenchmarkDd1GiB(b *testing.B) {
	tg := startTarget(b, "", 1<<30)
	m := startMount(b)
	m2 := startMountTwoP(b)
	null := startNullFS(b, "nullfs", 1<<30)
	var raw, goloop string // the bare loops mount with mount(2): root only
	if os.Geteuid() == 0 {
		raw = startNullFS(b, "rawfuse", 1<<30)
		goloop = startNullFS(b, "rawfuse", 1<<30, "-syscall")
	}
	pat := tg.region(tg.addr["pattern"])
	mem := procMem(b, tg.pid, false)
	s := samples{}
	for i := 0; i < b.N; i++ {
		s["pread"] = append(s["pread"], preadRegion(b, mem, pat))
		s["direct"] = append(s["direct"], timed(b, "dd", fmt.Sprintf("if=/proc/%d/mem", tg.pid), "of=/dev/null", "bs=1M",
			"iflag=skip_bytes,count_bytes", fmt.Sprintf("skip=%d", pat.Start), fmt.Sprintf("count=%d", pat.Size())))
		s["procmem"] = append(s["procmem"], timed(b, "dd", "if="+m.path(itoa(tg.pid), pat.Name()), "of=/dev/null", "bs=1M"))
		s["procmem-2p"] = append(s["procmem-2p"], timed(b, "dd", "if="+m2.path(itoa(tg.pid), pat.Name()), "of=/dev/null", "bs=1M"))
		s["null"] = append(s["null"], timed(b, "dd", "if="+null, "of=/dev/null", "bs=1M"))
		if raw != "" {
			s["rawloop"] = append(s["rawloop"], timed(b, "dd", "if="+raw, "of=/dev/null", "bs=1M"))
			s["goloop"] = append(s["goloop"], timed(b, "dd", "if="+goloop, "of=/dev/null", "bs=1M"))
		}
	}
	for _, name := range []string{"pread", "direct", "procmem", "procmem-2p", "null", "rawloop", "goloop"} {
		if len(s[name]) > 0 {
			b.ReportMetric(gbps(pat.Size(), s.median(name)), name+"-GB/s")
		}
	}
	b.ReportMetric(s.median("pread").Seconds()/s.median("procmem").Seconds(), "procmem/pread-throughput")
	b.ReportMetric(s.median("pread").Seconds()/s.median("procmem-2p").Seconds(), "procmem-2p/pread-throughput")
	b.ReportMetric(s.median("direct").Seconds()/s.median("procmem").Seconds(), "procmem/direct-throughput")
	b.ReportMetric(s.median("null").Seconds()/s.median("procmem").Seconds(), "procmem/null-throughput")
	b.ReportMetric(s.median("pread").Seconds()/s.median("null").Seconds(), "null/pread-throughput")
	if raw != "" {
		b.ReportMetric(s.median("pread").Seconds()/s.median("rawloop").Seconds(), "rawloop/pread-throughput")
		b.ReportMetric(s.median("pread").Seconds()/s.median("goloop").Seconds(), "goloop/pread-throughput")
	}
	// What procmem adds to go-fuse's transport per MiB: the page-table scan,
	// the copy out of the target and the check after it.
	b.ReportMetric(float64((s.median("procmem")-s.median("null")).Microseconds())/float64(pat.Size()>>20), "procmem-minus-null-us/MiB")
	// The best any server on go-fuse can do here, if it must copy the data
	// out of the target once at the cost of a pread (process_vm_readv
	// costs 10-20% less) and does nothing else: transport, then copy.
	b.ReportMetric(s.median("pread").Seconds()/(s.median("null")+s.median("pread")).Seconds(), "one-copy-ceiling/pread-throughput")
}

// startMountTwoP mounts a daemon that runs Go on two Ps (GOMAXPROCS=2)
// instead of its default one, so that large reads are split between two
// threads.
func startMountTwoP(b *testing.B) *mount {
	b.Helper()
	return startMountAt(b, []string{"env", "GOMAXPROCS=2"}, filepath.Join(b.TempDir(), "mnt2"))
}

// BenchmarkSmallIO: 4 KiB reads through the mount and from the null
// server (the FUSE round trip), and 1 MiB writes through the mount and
// straight to /proc/PID/mem.
func BenchmarkSmallIO(b *testing.B) {
	tg := startTarget(b, "", 64<<20)
	m := startMount(b)
	m2 := startMountTwoP(b)
	null := startNullFS(b, "nullfs", 64<<20)
	pat := tg.region(tg.addr["pattern"])
	region, err := os.OpenFile(m.path(itoa(tg.pid), pat.Name()), os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer region.Close()
	region2, err := os.Open(m2.path(itoa(tg.pid), pat.Name()))
	if err != nil {
		b.Fatal(err)
	}
	defer region2.Close()
	nf, err := os.Open(null)
	if err != nil {
		b.Fatal(err)
	}
	defer nf.Close()
	mem := procMem(b, tg.pid, true)
	buf := make([]byte, 1<<20)
	const reads = 5000
	readLoop := func(f *os.File) time.Duration {
		start := time.Now()
		for j := 0; j < reads; j++ {
			if _, err := syscall.Pread(int(f.Fd()), buf[:4096], int64(j%4096)*4096); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	copy(buf, tg.pattern)
	s := samples{}
	for i := 0; i < b.N; i++ {
		s["read4k-procmem"] = append(s["read4k-procmem"], readLoop(region))
		s["read4k-null"] = append(s["read4k-null"], readLoop(nf))
		s["read4k-procmem-2p"] = append(s["read4k-procmem-2p"], readLoop(region2))
		start := time.Now()
		for off := 0; off < len(tg.pattern); off += len(buf) {
			if _, err := syscall.Pwrite(int(region.Fd()), tg.pattern[off:off+len(buf)], int64(off)); err != nil {
				b.Fatal(err)
			}
		}
		s["write1m-procmem"] = append(s["write1m-procmem"], time.Since(start))
		start = time.Now()
		for off := 0; off < len(tg.pattern); off += len(buf) {
			if _, err := mem.WriteAt(tg.pattern[off:off+len(buf)], int64(pat.Start)+int64(off)); err != nil {
				b.Fatal(err)
			}
		}
		s["write1m-direct"] = append(s["write1m-direct"], time.Since(start))
	}
	b.ReportMetric(float64(s.median("read4k-procmem").Microseconds())/reads, "procmem-us/4k-read")
	b.ReportMetric(float64(s.median("read4k-null").Microseconds())/reads, "null-us/4k-read")
	b.ReportMetric(float64(s.median("read4k-procmem-2p").Microseconds())/reads, "procmem-2p-us/4k-read")
	b.ReportMetric(s.median("read4k-null").Seconds()/s.median("read4k-procmem").Seconds(), "procmem/null-4k-throughput")
	b.ReportMetric(gbps(uint64(len(tg.pattern)), s.median("write1m-procmem")), "procmem-write-GB/s")
	b.ReportMetric(gbps(uint64(len(tg.pattern)), s.median("write1m-direct")), "direct-write-GB/s")
	b.ReportMetric(s.median("write1m-direct").Seconds()/s.median("write1m-procmem").Seconds(), "procmem/direct-write-throughput")
}

// BenchmarkTools64MiB: xxd and grep -c of a 64 MiB region through the
// mount and of a copy of it in tmpfs.
func BenchmarkTools64MiB(b *testing.B) {
	requireTool(b, "xxd", "grep")
	tg := startTarget(b, "", 64<<20)
	m := startMount(b)
	pat := tg.region(tg.addr["pattern"])
	file := m.path(itoa(tg.pid), pat.Name())
	shm, err := os.MkdirTemp("/dev/shm", "procmem-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(shm) })
	copyPath := filepath.Join(shm, "region")
	if err := os.WriteFile(copyPath, tg.pattern, 0o644); err != nil {
		b.Fatal(err)
	}
	grepCount := func(path string) time.Duration {
		start := time.Now()
		out, err := exec.Command("grep", "-c", "-a", "STRADDLE", path).Output()
		d := time.Since(start)
		if err != nil || strings.TrimSpace(string(out)) != "1" {
			b.Fatalf("grep -c STRADDLE %s: %q, %v; want 1", path, out, err)
		}
		return d
	}
	s := samples{}
	for i := 0; i < b.N; i++ {
		s["xxd-procmem"] = append(s["xxd-procmem"], timed(b, "sh", "-c", `xxd "$1" >/dev/null`, "sh", file))
		s["xxd-tmpfs"] = append(s["xxd-tmpfs"], timed(b, "sh", "-c", `xxd "$1" >/dev/null`, "sh", copyPath))
		s["grep-procmem"] = append(s["grep-procmem"], grepCount(file))
		s["grep-tmpfs"] = append(s["grep-tmpfs"], grepCount(copyPath))
	}
	s.report(b, [2]string{"xxd-procmem", "xxd-tmpfs"}, [2]string{"grep-procmem", "grep-tmpfs"})
}

// BenchmarkListing: ls -l of a process with 60,000 regions against cat of
// its maps, and ls of the root with 1,000 processes against ls /proc. As
// root it also lists through --allow-other mounts, where the kernel may not
// cache the names and every path lookup comes to the daemon.
func BenchmarkListing(b *testing.B) {
	tg := startTargetAs(b, nil, targetBin, 1<<20, "mappings", "60000")
	m := startMount(b)
	// --xattrs is the daemon's default before it was opt-in; a daemon
	// without it takes the flag for the old default.
	withXattrs := startMount(b, xattrsFlag()...)
	var shared *mount
	if os.Geteuid() == 0 {
		shared = startMount(b, "--allow-other")
	}
	startSleepers(b, 1000)
	// The same names as empty files in tmpfs: what ls -l costs on a
	// filesystem in the kernel.
	tmpfs, err := os.MkdirTemp("/dev/shm", "procmem-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(tmpfs) })
	names, err := os.ReadDir(m.path(itoa(tg.pid)))
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range names {
		if err := os.WriteFile(filepath.Join(tmpfs, e.Name()), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	// quiet times a command whose output goes to /dev/null.
	quiet := func(cmd, path string) time.Duration {
		return timed(b, "sh", "-c", cmd+` "$1" >/dev/null`, "sh", path)
	}
	pid := itoa(tg.pid)
	s := samples{}
	for i := 0; i < b.N; i++ {
		s["ls-l-procmem"] = append(s["ls-l-procmem"], quiet("ls -l", m.path(pid)))
		s["ls-l-xattrs"] = append(s["ls-l-xattrs"], quiet("ls -l", withXattrs.path(pid)))
		if shared != nil {
			s["ls-l-allow-other"] = append(s["ls-l-allow-other"], quiet("ls -l", shared.path(pid)))
		}
		s["ls-l-tmpfs"] = append(s["ls-l-tmpfs"], quiet("ls -l", tmpfs))
		s["du-s-procmem"] = append(s["du-s-procmem"], quiet("du -s", m.path(pid)))
		s["du-s-tmpfs"] = append(s["du-s-tmpfs"], quiet("du -s", tmpfs))
		s["ls-procmem"] = append(s["ls-procmem"], quiet("ls", m.path(pid)))
		s["cat-maps"] = append(s["cat-maps"], quiet("cat", "/proc/"+pid+"/maps"))
		s["ls-root-procmem"] = append(s["ls-root-procmem"], quiet("ls", m.dir))
		s["ls-proc"] = append(s["ls-proc"], quiet("ls", "/proc"))
	}
	ratios := [][2]string{{"ls-l-procmem", "ls-l-tmpfs"}, {"ls-l-xattrs", "ls-l-tmpfs"}, {"du-s-procmem", "du-s-tmpfs"},
		{"ls-procmem", "cat-maps"}, {"ls-root-procmem", "ls-proc"}}
	if shared != nil {
		ratios = append(ratios, [2]string{"ls-l-allow-other", "ls-l-tmpfs"})
	}
	s.report(b, ratios...)
}

// xattrsFlag asks the daemon for extended attributes: --xattrs, unless the
// binary under test (PROCMEM_BIN) is one from before they were opt-in.
func xattrsFlag() []string {
	if out, _ := exec.Command(procmemBin, "help", "mount").Output(); strings.Contains(string(out), "--xattrs") {
		return []string{"--xattrs"}
	}
	return nil
}

// startSleepers starts n sleeping processes for the benchmark's duration.
func startSleepers(b *testing.B, n int) {
	var cmds []*exec.Cmd
	b.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	for i := 0; i < n; i++ {
		c := exec.Command("sleep", "3600")
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		cmds = append(cmds, c)
	}
}

// BenchmarkFirstByte: latency of the first 16 bytes of the heap, through
// the mount with head and dd, and straight from /proc/PID/mem with dd.
func BenchmarkFirstByte(b *testing.B) {
	tg := startTarget(b, "", 1<<20)
	m := startMount(b)
	heap := tg.regionByPath("[heap]")
	file := m.path(itoa(tg.pid), "heap")
	s := samples{}
	for i := 0; i < b.N*20; i++ {
		s["head-procmem"] = append(s["head-procmem"], timed(b, "head", "-c", "16", file))
		s["dd-procmem"] = append(s["dd-procmem"], timed(b, "dd", "if="+file, "of=/dev/null", "bs=16", "count=1", "status=none"))
		s["dd-direct"] = append(s["dd-direct"], timed(b, "dd", fmt.Sprintf("if=/proc/%d/mem", tg.pid), "of=/dev/null", "bs=16", "count=1",
			"iflag=skip_bytes", fmt.Sprintf("skip=%d", heap.Start), "status=none"))
	}
	s.report(b, [2]string{"dd-procmem", "dd-direct"})
}

// BenchmarkDaemonFootprint: the daemon's peak RSS after listing 1,000
// processes and reading from 100 of them, and its CPU time while idle.
func BenchmarkDaemonFootprint(b *testing.B) {
	m := startMount(b)
	startSleepers(b, 1000)
	for i := 0; i < b.N; i++ {
		entries, err := os.ReadDir(m.dir)
		if err != nil {
			b.Fatal(err)
		}
		read := 0
		for _, e := range entries {
			if read == 100 {
				break
			}
			if _, err := os.ReadFile(m.path(e.Name(), "statm")); err == nil {
				if _, err := os.ReadFile(m.path(e.Name(), "stack")); err == nil {
					read++
				}
			}
		}
		if read < 100 {
			b.Fatalf("read from only %d processes", read)
		}
	}
	st, err := pinned(b, m.cmd.Process.Pid).Status()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.Sizes["VmHWM"])/(1<<20), "daemon-peak-RSS-MiB")
	cpu := func() uint64 {
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.cmd.Process.Pid))
		f := strings.Fields(string(raw)[strings.LastIndexByte(string(raw), ')')+1:])
		var u, s uint64
		fmt.Sscan(f[11], &u)
		fmt.Sscan(f[12], &s)
		return u + s
	}
	// Idle means after the last request has been answered: the kernel
	// sends RELEASE and FORGET after close returns, and the Go runtime
	// returns freed memory in the background for a moment.
	time.Sleep(2 * time.Second)
	c0 := cpu()
	time.Sleep(5 * time.Second)
	b.ReportMetric(float64(cpu()-c0), "daemon-idle-CPU-ticks/5s")
}

// BenchmarkSparseCopy: cp --sparse=always of a 4 GiB reservation with three
// touched pages through the mount, against dd of the same range straight
// from /proc/PID/mem: time, and what each does to the target.
func BenchmarkSparseCopy(b *testing.B) {
	const size = 4 << 30
	tg, _ := startSparseTarget(b, size)
	m := startMount(b)
	res := tg.region(tg.addr["reservation"])
	dir := b.TempDir()
	s := samples{}
	grow := map[string]map[string]uint64{}
	measure := func(name string, run func() time.Duration) {
		before := memStatus(b, tg.pid)
		s[name] = append(s[name], run())
		after := memStatus(b, tg.pid)
		grow[name] = map[string]uint64{}
		for k := range before {
			grow[name][k] = after[k] - before[k]
		}
	}
	for i := 0; i < b.N; i++ {
		measure("cp-sparse-procmem", func() time.Duration {
			defer os.Remove(filepath.Join(dir, "copy"))
			return timed(b, "cp", "--sparse=always", m.path(itoa(tg.pid), res.Name()), filepath.Join(dir, "copy"))
		})
	}
	// Reading through /proc/PID/mem leaves the pages behind, so once is
	// enough (and all the target can afford).
	measure("dd-direct", func() time.Duration {
		return timed(b, "dd", fmt.Sprintf("if=/proc/%d/mem", tg.pid), "of=/dev/null", "bs=1M",
			"iflag=skip_bytes,count_bytes", fmt.Sprintf("skip=%d", res.Start), fmt.Sprintf("count=%d", res.Size()))
	})
	s.report(b, [2]string{"cp-sparse-procmem", "dd-direct"})
	for name, g := range grow {
		for k, v := range g {
			b.ReportMetric(float64(v)/(1<<20), name+"-"+k+"-MiB")
		}
	}
}

// BenchmarkMemImage: an image of a process where offset = address (256 MiB
// of data and a 64 GiB reservation with three pages), made by cp
// --sparse=always of the mount's mem and by procmem read --sparse -o,
// alternated, on tmpfs.
func BenchmarkMemImage(b *testing.B) {
	requireRoot(b) // tmpfs: the image is 128 TiB long
	file := filepath.Join(b.TempDir(), "mapped-file")
	tg := startTargetAs(b, nil, targetBin, 256<<20, "sparse", file, fmt.Sprintf("%#x", uint64(64<<30)))
	m := startMount(b)
	dir := b.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2g", "tmpfs", dir).CombinedOutput(); err != nil {
		b.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	b.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	image := filepath.Join(dir, "image")
	s := samples{}
	for i := 0; i < b.N; i++ {
		s["cp-sparse-mem"] = append(s["cp-sparse-mem"], timed(b, "cp", "--sparse=always", m.path(itoa(tg.pid), "mem"), image))
		os.Remove(image)
		s["procmem-read-sparse"] = append(s["procmem-read-sparse"], timed(b, procmemBin, "-p", itoa(tg.pid), "read", "--sparse", "-o", image))
		os.Remove(image)
	}
	s.report(b, [2]string{"cp-sparse-mem", "procmem-read-sparse"})
}

// BenchmarkCore: the core of a process with 1 GiB of resident data copied
// with cp --sparse=always from the mount, against gcore of the same
// process (and how long gcore keeps it stopped, sampled from its state);
// and opening the core of a process with 60,000 mappings.
func BenchmarkCore(b *testing.B) {
	requireRoot(b) // the cores go to a tmpfs: writing 2 GiB to disk per round measures the disk
	requireTool(b, "gcore")
	tg := startTarget(b, "", 1<<30)
	many := startTargetAs(b, nil, targetBin, 1<<20, "mappings", "60000")
	m := startMount(b)
	dir := b.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3g", "tmpfs", dir).CombinedOutput(); err != nil {
		b.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	b.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	s := samples{}
	var stopped []time.Duration
	for i := 0; i < b.N; i++ {
		s["cp-sparse-core"] = append(s["cp-sparse-core"], timed(b, "cp", "--sparse=always", m.path(itoa(tg.pid), "core"), filepath.Join(dir, "core")))
		os.Remove(filepath.Join(dir, "core"))
		done := make(chan time.Duration)
		quit := make(chan struct{})
		go func() { done <- stoppedTime(tg.pid, quit) }()
		s["gcore"] = append(s["gcore"], timed(b, "gcore", "-o", filepath.Join(dir, "gcore"), itoa(tg.pid)))
		close(quit)
		stopped = append(stopped, <-done)
		os.Remove(filepath.Join(dir, "gcore."+itoa(tg.pid)))
		s["procmem-core"] = append(s["procmem-core"], timed(b, procmemBin, "-p", itoa(tg.pid), "core", "-o", filepath.Join(dir, "pcore")))
		os.Remove(filepath.Join(dir, "pcore"))
		s["open-core-60k"] = append(s["open-core-60k"], timed(b, "head", "-c", "64", m.path(itoa(many.pid), "core")))
	}
	s.report(b, [2]string{"cp-sparse-core", "gcore"}, [2]string{"procmem-core", "gcore"})
	slices.Sort(stopped)
	b.ReportMetric(float64(stopped[len(stopped)/2].Microseconds())/1000, "gcore-stopped-ms")
}

// stoppedTime samples process pid's state every millisecond until quit
// is closed, and returns how long it was seen stopped (T or t).
func stoppedTime(pid int, quit <-chan struct{}) time.Duration {
	var total time.Duration
	last := time.Now()
	for {
		select {
		case <-quit:
			return total
		case <-time.After(time.Millisecond):
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		now := time.Now()
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			total += now.Sub(last)
		}
		last = now
	}
}

// BenchmarkPointers: pointers --depth 4 --max-offset 1000 to the health of
// a coretarget with 256 MiB of heap whose every word is a pointer (32
// million pointers): one run alone, and three runs (two more coretargets,
// their maps saved beforehand with --save-map, given with --also), side by
// side in each iteration, with the peak memory of each whole command. With
// PROCMEM_BASE_BIN set to another build, that build's one run is measured
// beside them (the pointers verb before the pointer package was 8.9 s,
// 1035 MiB here).
func BenchmarkPointers(b *testing.B) {
	requireTool(b, "/usr/bin/time")
	var pids, healths []string
	for range 3 {
		cmd := exec.Command(coreBin, "dense", fmt.Sprint(256<<20))
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
		sc := bufio.NewScanner(out)
		for sc.Scan() && sc.Text() != "ready" {
			if v, ok := strings.CutPrefix(sc.Text(), "health "); ok {
				healths = append(healths, v)
			}
		}
		go io.Copy(io.Discard, out)
		pids = append(pids, itoa(cmd.Process.Pid))
	}
	dir := b.TempDir()
	var also []string
	for i := 1; i < 3; i++ {
		path := filepath.Join(dir, fmt.Sprintf("run%d.map", i))
		if r, err := exec.Command(procmemBin, "-p", pids[i], "pointers", "--save-map", path, healths[i]).CombinedOutput(); err != nil {
			b.Fatalf("--save-map: %v\n%s", err, r)
		}
		also = append(also, "--also", path)
	}
	one := []string{"-p", pids[0], "pointers", healths[0], "--depth", "4", "--max-offset", "1000"}
	contenders := [][]string{{"one", procmemBin}, {"three", procmemBin}}
	if base := os.Getenv("PROCMEM_BASE_BIN"); base != "" {
		contenders = append(contenders, []string{"base", base})
	}
	s := samples{}
	peak := map[string][]float64{}
	for i := 0; i < b.N; i++ {
		for _, c := range contenders {
			args := append([]string{"-f", "%M", c[1]}, one...)
			if c[0] == "three" {
				args = append(args, also...)
			}
			start := time.Now()
			r, err := exec.Command("/usr/bin/time", args...).CombinedOutput()
			if err != nil {
				b.Fatalf("%s: %v\n%s", c[0], err, r)
			}
			s[c[0]] = append(s[c[0]], time.Since(start))
			lines := strings.Split(strings.TrimSpace(string(r)), "\n")
			kb, _ := strconv.ParseFloat(lines[len(lines)-1], 64)
			peak[c[0]] = append(peak[c[0]], kb/1024)
		}
	}
	ratios := [][2]string{{"three", "one"}}
	if len(contenders) == 3 {
		ratios = append(ratios, [2]string{"one", "base"})
	}
	s.report(b, ratios...)
	for name, p := range peak {
		slices.Sort(p)
		b.ReportMetric(p[len(p)/2], name+"-peak-MiB")
		b.Logf("%s: %v, peak MiB %v", name, s[name], p)
	}
}

// BenchmarkScan: procmem scan against scanmem (its non-interactive -c) on
// one game holding 1 GiB of heap filled with int32 values, one in 268 of
// them 7: a first exact scan (about a million matches) and a narrowing of
// those, as int32 and as any integer width (scanmem's int, procmem's
// anyint), a byte pattern with wildcards, and a snapshot followed by
// unchanged; with each one's peak RSS and match count. procmem runs as a
// new process for each command, reading and writing its session on the
// machine's disk (the benchmark's temporary directory); scanmem's
// narrowing is the difference between a run that scans twice and one that
// scans once.
func BenchmarkScan(b *testing.B) {
	requireTool(b, "scanmem")
	g := startGame(b, "fill", fmt.Sprint(1<<30))
	dir := b.TempDir()
	session := filepath.Join(dir, "s")
	s := samples{}
	rss := map[string][]int64{}
	found := map[string]string{}
	measure := func(name string, args ...string) time.Duration {
		start := time.Now()
		cmd := exec.Command(args[0], args[1:]...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%q: %v\n%s", args, err, out)
		}
		d := time.Since(start)
		s[name] = append(s[name], d)
		rss[name] = append(rss[name], cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
		found[name] = matchCount(string(out))
		return d
	}
	scanmem := func(typ, cmds string) []string {
		return []string{"scanmem", "-p", itoa(g.pid), "-c", "option scan_data_type " + typ + ";" + cmds + ";exit"}
	}
	pm := func(args ...string) []string {
		return append([]string{procmemBin, "-p", itoa(g.pid), "scan", "--session", session}, args...)
	}
	// scanmem's bytearray has no nibble wildcards: the same pattern with ??.
	const pattern = "07 00 00 00 ?? ?? 00 00"
	for i := 0; i < b.N; i++ {
		for _, typ := range []string{"int32", "anyint"} {
			os.RemoveAll(session)
			measure("procmem-"+typ+"-first", pm("-t", typ, "7")...)
			measure("procmem-"+typ+"-narrow", pm("7")...)
		}
		os.RemoveAll(session)
		measure("procmem-bytes", pm("-t", "bytes", pattern)...)
		os.RemoveAll(session)
		measure("procmem-snapshot", pm("snapshot")...)
		measure("procmem-unchanged", pm("unchanged")...)
		os.RemoveAll(session)
		for _, typ := range []string{"int32", "int"} {
			once := measure("scanmem-"+typ+"-first", scanmem(typ, "7")...)
			twice := measure("scanmem-"+typ+"-first-and-narrow", scanmem(typ, "7;7")...)
			s["scanmem-"+typ+"-narrow"] = append(s["scanmem-"+typ+"-narrow"], twice-once)
		}
		measure("scanmem-bytearray", scanmem("bytearray", pattern)...)
		measure("scanmem-snapshot", scanmem("int32", "snapshot")...)
	}
	s.report(b, [2]string{"scanmem-int32-first", "procmem-int32-first"}, [2]string{"scanmem-int32-narrow", "procmem-int32-narrow"},
		[2]string{"scanmem-int-first", "procmem-anyint-first"}, [2]string{"scanmem-int-narrow", "procmem-anyint-narrow"},
		[2]string{"scanmem-bytearray", "procmem-bytes"}, [2]string{"scanmem-snapshot", "procmem-snapshot"})
	for name, kib := range rss {
		slices.Sort(kib)
		b.ReportMetric(float64(kib[len(kib)/2])/1024, name+"-peak-RSS-MiB")
	}
	for name, n := range found {
		if v, err := strconv.ParseFloat(n, 64); err == nil {
			b.ReportMetric(v, name+"-matches")
		}
	}
	for name, d := range s {
		slices.Sort(d)
		b.Logf("%s: median %v, range %v-%v", name, s.median(name), d[0], d[len(d)-1])
	}
}

// matchCount is the match count a scan printed: procmem's "N matches",
// scanmem's "we currently have N matches".
func matchCount(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(line, "we currently have "); ok {
			line = rest
		}
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[1], "match") {
			return f[0]
		}
	}
	return ""
}

// BenchmarkFio: fio reading a 1 GiB region with asynchronous direct I/O
// (io_uring and libaio, 1 MiB blocks, eight in flight), through a mount
// that lets the kernel send a reader's requests at once (CAP_ASYNC_DIO,
// the default) and through one that does not (--no-async-dio), beside
// 1 MiB preads of /proc/PID/mem.
func BenchmarkFio(b *testing.B) {
	requireTool(b, "fio")
	tg := startTarget(b, "", 1<<30)
	async := startMount(b)
	serial := startMountAt(b, nil, filepath.Join(b.TempDir(), "serial"), "--no-async-dio")
	pat := tg.region(tg.addr["pattern"])
	mem := procMem(b, tg.pid, false)
	// fio's own figure (terse field 7: read bandwidth in KiB/s), as the
	// time 1 GiB takes at that rate: fio's start is left out.
	fio := func(path, engine string) time.Duration {
		out, err := exec.Command("fio", "--name=read", "--filename="+path, "--rw=read", "--bs=1M", "--iodepth=8",
			"--ioengine="+engine, "--direct=1", "--readonly", fmt.Sprintf("--size=%d", pat.Size()),
			"--output-format=terse", "--terse-version=3").CombinedOutput()
		f := strings.Split(strings.TrimSpace(string(out)), ";")
		if err != nil || len(f) < 7 {
			b.Fatalf("fio: %v\n%s", err, out)
		}
		kibps, err := strconv.ParseFloat(f[6], 64)
		if err != nil || kibps <= 0 {
			b.Fatalf("fio bandwidth %q: %v", f[6], err)
		}
		return time.Duration(float64(pat.Size()) / (kibps * 1024) * float64(time.Second))
	}
	s := samples{}
	for i := 0; i < b.N; i++ {
		s["pread"] = append(s["pread"], preadRegion(b, mem, pat))
		for _, engine := range []string{"io_uring", "libaio"} {
			s[engine+"-async"] = append(s[engine+"-async"], fio(async.path(itoa(tg.pid), pat.Name()), engine))
			s[engine+"-serial"] = append(s[engine+"-serial"], fio(serial.path(itoa(tg.pid), pat.Name()), engine))
		}
	}
	for _, name := range []string{"pread", "io_uring-async", "io_uring-serial", "libaio-async", "libaio-serial"} {
		b.ReportMetric(gbps(pat.Size(), s.median(name)), name+"-GB/s")
	}
	s.report(b, [2]string{"io_uring-serial", "io_uring-async"}, [2]string{"libaio-serial", "libaio-async"},
		[2]string{"pread", "io_uring-async"})
}

// BenchmarkCopyLimit: cp of a 1 GiB region (to /dev/null: the read side
// alone) and dd bs=16M through a mount made with the kernel's default
// request limit (max_pages_limit 256: 1 MiB) and one made with it raised
// to 4096 (16 MiB requests, and st_blksize to match, which cp reads by),
// beside 1 MiB preads of /proc/PID/mem and the null server's dd. Root
// only: it sets the sysctl, and puts it back.
func BenchmarkCopyLimit(b *testing.B) {
	requireRoot(b)
	const sysctl = "/proc/sys/fs/fuse/max_pages_limit"
	old, err := os.ReadFile(sysctl)
	if err != nil {
		skipOrFail(b, "no %s (Linux 6.13): %v", sysctl, err)
	}
	b.Cleanup(func() { os.WriteFile(sysctl, old, 0) })
	tg := startTarget(b, "", 1<<30)
	pat := tg.region(tg.addr["pattern"])
	mounts := map[string]*mount{}
	for _, limit := range []string{"256", "4096"} {
		if err := os.WriteFile(sysctl, []byte(limit), 0); err != nil {
			b.Fatal(err)
		}
		mounts[limit] = startMountAt(b, nil, filepath.Join(b.TempDir(), "mnt"+limit))
	}
	os.WriteFile(sysctl, old, 0)
	null := startNullFS(b, "nullfs", 1<<30)
	mem := procMem(b, tg.pid, false)
	s := samples{}
	for i := 0; i < b.N; i++ {
		s["pread"] = append(s["pread"], preadRegion(b, mem, pat))
		s["null"] = append(s["null"], timed(b, "dd", "if="+null, "of=/dev/null", "bs=1M"))
		for limit, m := range mounts {
			path := m.path(itoa(tg.pid), pat.Name())
			s["cp-"+limit] = append(s["cp-"+limit], timed(b, "cp", path, "/dev/null"))
			s["dd16M-"+limit] = append(s["dd16M-"+limit], timed(b, "dd", "if="+path, "of=/dev/null", "bs=16M"))
		}
	}
	s.report(b, [2]string{"pread", "cp-256"}, [2]string{"pread", "cp-4096"}, [2]string{"pread", "dd16M-4096"})
	// The best a synchronous reader can get through go-fuse here: the null
	// server's transport, then one copy at the cost of a pread.
	b.ReportMetric(s.median("pread").Seconds()/(s.median("null")+s.median("pread")).Seconds(), "one-copy-ceiling/pread-throughput")
}

package procfs

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// resident maps size bytes of anonymous memory filled with a pattern.
func resident(t *testing.T, size int) ([]byte, uint64) {
	t.Helper()
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	return b, uint64(uintptr(unsafe.Pointer(&b[0])))
}

// TestVMReader: process_vm_readv reads resident memory only while the
// process runs the image its mem was opened on, and every refusal falls
// back to /proc/PID/mem with the same bytes.
func TestVMReader(t *testing.T) {
	src, addr := resident(t, 1<<20)
	m := openMem(t, os.Getpid(), false)
	if m.vm == nil {
		t.Fatal("no process_vm_readv reader for this process")
	}
	segs := []Segment{{addr, addr + 1<<19, Resident}, {addr + 1<<19, addr + 1<<19 + 4096, Hole}, {addr + 1<<19 + 4096, addr + 1<<20, Resident}}
	want := bytes.Clone(src)
	clear(want[1<<19 : 1<<19+4096])

	check := func(what string, fast bool) {
		t.Helper()
		b := make([]byte, len(src))
		if got := m.vm.read(b, addr, []Segment{segs[0], segs[2]}); got != fast {
			t.Errorf("%s: process_vm_readv used: %v, want %v", what, got, fast)
		}
		clear(b)
		if n, err := ReadSegments(m, b, addr, segs); n != len(b) || err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s: ReadSegments = %d, %v; bytes equal: %v", what, n, err, bytes.Equal(b, want))
		}
	}
	check("same image", true)

	// An exec: the image changes.
	image := m.vm.image
	m.vm.image.StartStack++
	check("another image", false)
	m.vm.image = image

	// Pages the process itself may not read: /proc/PID/mem forces access.
	if err := syscall.Mprotect(src[1<<19+4096:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	check("PROT_NONE", false)
	syscall.Mprotect(src[1<<19+4096:], syscall.PROT_READ|syscall.PROT_WRITE)
	check("readable again", true)

	// Too many pieces for one call.
	many := make([]Segment, 1025)
	for i := range many {
		many[i] = Segment{addr + uint64(i)*512, addr + uint64(i+1)*512, Resident}
	}
	if m.vm.read(make([]byte, len(src)), addr, many) {
		t.Error("process_vm_readv with 1025 pieces")
	}
}

// TestVMReaderGone: once the process is gone, or its PID belongs to
// another, the reader refuses.
func TestVMReaderGone(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Until its exec is over, the child's image changes (Go forks with
	// CLONE_VM|CLONE_VFORK, then exec places the new program), and a
	// reader made then is refused. Once sleep sleeps, it is over.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if st, err := ReadStat(cmd.Process.Pid); err == nil && st.Comm == "sleep" && st.State == 'S' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sleep did not start")
		}
	}
	m := openMem(t, cmd.Process.Pid, false)
	if m.vm == nil || !m.vm.same() {
		t.Fatal("no reader for a live child")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if m.vm.same() {
		t.Error("the reader of a reaped process still sees its image")
	}
	// The stat file is bound to the process, not the number: pointed at
	// this process's PID (as after a reuse), it still refuses.
	src, addr := resident(t, vmReadMin)
	m.vm.pid = os.Getpid()
	if m.vm.read(make([]byte, len(src)), addr, []Segment{{addr, addr + vmReadMin, Resident}}) {
		t.Error("read another process through a gone process's reader")
	}
}

// BenchmarkRead is what the daemon does for a read of private anonymous
// memory: the layout of the range, then the read, with process_vm_readv
// where it applies and with /proc/PID/mem alone for comparison.
func BenchmarkRead(b *testing.B) {
	for _, c := range []struct {
		name string
		size int
		vm   bool
	}{{"4KiB", 4 << 10, true}, {"1MiB", 1 << 20, true}, {"1MiB-mem-only", 1 << 20, false}} {
		b.Run(c.name, func(b *testing.B) { benchmarkRead(b, c.size, c.vm) })
	}
}

func benchmarkRead(b *testing.B, size int, vm bool) {
	src, err := syscall.Mmap(-1, 0, 64<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Munmap(src)
	for i := range src {
		src[i] = byte(i)
	}
	addr := uint64(uintptr(unsafe.Pointer(&src[0])))
	p, err := Open(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	m, err := p.OpenMem(false)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	if !vm {
		m.vm.close()
		m.vm = nil
	}
	l, err := p.OpenLayout(Region{Start: addr, End: addr + uint64(len(src)), Perms: Perms{Read: true, Write: true}})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	buf := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	off := uint64(0)
	for b.Loop() {
		at := addr + off
		segs, err := l.Segments(at, at+uint64(size))
		if err != nil {
			b.Fatal(err)
		}
		if n, err := ReadSegments(m, buf, at, segs); n != size || err != nil {
			b.Fatal(n, err)
		}
		off = (off + uint64(size)) % uint64(len(src))
	}
}

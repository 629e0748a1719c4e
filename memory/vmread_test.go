package memory

import (
	"bytes"
	"os"
	"syscall"
	"testing"

	"github.com/procmem/procmem/procfs"
)

// filled maps size bytes of anonymous memory filled with a pattern.
func filled(t testing.TB, size int) ([]byte, uint64) {
	t.Helper()
	b := anonymous(t, size/int(pageSize))
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	return b, addrOf(b)
}

// TestVMReader: process_vm_readv reads resident memory only while the
// process runs the image its mem was opened on, and every refusal falls
// back to /proc/PID/mem with the same bytes.
func TestVMReader(t *testing.T) {
	src, addr := filled(t, 1<<20)
	_, rd := openReader(t, os.Getpid(), false)
	if rd.vm == nil {
		t.Fatal("no process_vm_readv reader for this process")
	}
	segs := []segment{{addr, addr + 1<<19, resident}, {addr + 1<<19, addr + 1<<19 + 4096, hole}, {addr + 1<<19 + 4096, addr + 1<<20, resident}}
	want := bytes.Clone(src)
	clear(want[1<<19 : 1<<19+4096])

	check := func(what string, fast bool) {
		t.Helper()
		b := make([]byte, len(src))
		if got := rd.vm.read(b, addr, []segment{segs[0], segs[2]}); got != fast {
			t.Errorf("%s: process_vm_readv used: %v, want %v", what, got, fast)
		}
		clear(b)
		if n, err := rd.readSegments(b, addr, segs, nil); n != len(b) || err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s: readSegments = %d, %v; bytes equal: %v", what, n, err, bytes.Equal(b, want))
		}
	}
	check("same image", true)

	// An exec: the image changes.
	image := rd.vm.image
	rd.vm.image.StartStack++
	check("another image", false)
	rd.vm.image = image

	// Pages the process itself may not read: /proc/PID/mem forces access.
	if err := syscall.Mprotect(src[1<<19+4096:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	check("PROT_NONE", false)
	syscall.Mprotect(src[1<<19+4096:], syscall.PROT_READ|syscall.PROT_WRITE)
	check("readable again", true)

	// Too many pieces for one call.
	many := make([]segment, 1025)
	for i := range many {
		many[i] = segment{addr + uint64(i)*512, addr + uint64(i+1)*512, resident}
	}
	if rd.vm.read(make([]byte, len(src)), addr, many) {
		t.Error("process_vm_readv with 1025 pieces")
	}
}

// TestVMReaderGone: once the process is gone, or its PID belongs to
// another, the reader refuses.
func TestVMReaderGone(t *testing.T) {
	cmd := startSleeper(t)
	_, rd := openReader(t, cmd.Process.Pid, false)
	if rd.vm == nil || !rd.vm.same() {
		t.Fatal("no reader for a live child")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if rd.vm.same() {
		t.Error("the reader of a reaped process still sees its image")
	}
	// The stat file is bound to the process, not the number: pointed at
	// this process's PID (as after a reuse), it still refuses.
	src, addr := filled(t, vmReadMin)
	rd.vm.pid = os.Getpid()
	if rd.vm.read(make([]byte, len(src)), addr, []segment{{addr, addr + vmReadMin, resident}}) {
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
	src, addr := filled(b, 64<<20)
	_, rd := openReader(b, os.Getpid(), false)
	if !vm {
		rd.vm = nil
	}
	g := rd.Region(procfs.Region{Start: addr, End: addr + uint64(len(src)), Perms: procfs.Perms{Read: true, Write: true}})
	defer g.Close()
	buf := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	off := uint64(0)
	for b.Loop() {
		if n, err := g.ReadAt(buf, addr+off); n != size || err != nil {
			b.Fatal(n, err)
		}
		off = (off + uint64(size)) % uint64(len(src))
	}
}

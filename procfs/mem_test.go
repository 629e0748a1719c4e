package procfs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"unsafe"
)

// openMem opens the memory of process pid for the test.
func openMem(t *testing.T, pid int, write bool) *Mem {
	t.Helper()
	p, err := Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	m, err := p.OpenMem(write)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMemSelf(t *testing.T) {
	m := openMem(t, os.Getpid(), true)

	buf := []byte("procmem marker: 0123456789")
	addr := uint64(uintptr(unsafe.Pointer(&buf[0])))
	got := make([]byte, len(buf))
	if n, err := m.ReadFull(got, addr); err != nil || n != len(buf) || !bytes.Equal(got, buf) {
		t.Fatalf("ReadFull = %d, %v, %q", n, err, got)
	}
	if _, err := m.WriteFull([]byte("PROCMEM"), addr); err != nil {
		t.Fatal(err)
	}
	if string(buf[:7]) != "PROCMEM" {
		t.Errorf("write did not land: %q", buf)
	}
	if _, err := m.Pread(got, 0xffffffffff600000); !errors.Is(err, ErrAddressRange) {
		t.Errorf("read of [vsyscall]: %v, want ErrAddressRange", err)
	}
	if _, err := m.Pread(got, 0); !errors.Is(err, syscall.EIO) {
		t.Errorf("read of page 0: %v, want EIO", err)
	}

	regions, err := Maps(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		if r.Path == "[vvar]" {
			if _, err := m.Pread(got, r.Start); !errors.Is(err, syscall.EIO) {
				t.Errorf("read of [vvar]: %v, want EIO", err)
			}
		}
	}
}

func TestMemAfterExit(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p, err := Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	regions, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.OpenMem(false)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cmd.Process.Kill()
	cmd.Wait()
	b := make([]byte, 16)
	if _, err := m.Pread(b, regions[0].Start); err != io.EOF {
		t.Errorf("read after exit: %v, want io.EOF", err)
	}
	if _, err := p.Maps(); !IsGone(err) {
		t.Errorf("maps of reaped process: %v, want gone", err)
	}
}

func TestResolve(t *testing.T) {
	if pid, err := ResolvePID("self"); err != nil || pid != os.Getpid() {
		t.Errorf("ResolvePID(self) = %d, %v", pid, err)
	}
	for _, bad := range []string{"", "0", "-1", "x", "012", "99999999999"} {
		if _, err := ResolvePID(bad); err == nil {
			t.Errorf("ResolvePID(%q) succeeded", bad)
		}
	}
	a := exec.Command("sleep", "60")
	b := exec.Command("sleep", "60")
	for _, c := range []*exec.Cmd{a, b} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func(c *exec.Cmd) { c.Process.Kill(); c.Wait() }(c)
	}
	pids, err := FindByName("sleep")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, pid := range pids {
		if pid == a.Process.Pid || pid == b.Process.Pid {
			found++
		}
	}
	if found != 2 {
		t.Errorf("FindByName(sleep) = %v, want both %d and %d", pids, a.Process.Pid, b.Process.Pid)
	}
	if _, err := ResolveName("sleep"); err == nil || !bytes.Contains([]byte(err.Error()), []byte("processes are named")) {
		t.Errorf("ambiguous name: %v", err)
	}
	if _, err := ResolveName("no-such-process-name"); err == nil {
		t.Error("unknown name resolved")
	}
}

package procfs

// This file reads and writes /proc/PID/mem, described in proc_pid_mem(5).

import (
	"errors"
	"fmt"
	"io"
	"math"

	"golang.org/x/sys/unix"
)

// ErrAddressRange is returned for addresses that /proc/PID/mem cannot reach:
// pread and pwrite take a signed offset, so nothing at or above 2^63 (where
// x86-64 keeps [vsyscall]) can be addressed.
var ErrAddressRange = errors.New("address beyond the reach of /proc/PID/mem")

// MaxAddress is the highest address /proc/PID/mem can reach, plus one.
const MaxAddress = uint64(math.MaxInt64) + 1

// Mem is an open /proc/PID/mem. It is bound to the address space it was
// opened on: once that process exits or execs, reads and writes return 0
// bytes and io.EOF.
type Mem struct {
	fd  int
	pid int
	vm  *vmReader // for large reads of resident pages; nil if none
}

// OpenMem pins the process and opens its memory.
func OpenMem(pid int, write bool) (*Mem, error) {
	p, err := Open(pid)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.OpenMem(write)
}

// Close closes the file.
func (m *Mem) Close() error {
	if m.fd < 0 {
		return nil
	}
	err := unix.Close(m.fd)
	m.fd = -1
	m.vm.close()
	m.vm = nil
	return err
}

// Fd returns the file descriptor.
func (m *Mem) Fd() int { return m.fd }

// clamp bounds a transfer of n bytes at addr to what pread can address.
func clamp(n int, addr uint64) (int, error) {
	if addr >= MaxAddress {
		return 0, fmt.Errorf("0x%x: %w", addr, ErrAddressRange)
	}
	if uint64(n) > MaxAddress-addr {
		n = int(MaxAddress - addr)
	}
	return n, nil
}

// Pread reads up to len(b) bytes at addr in one system call, so a read that
// runs into an unreadable page returns the bytes before it. A read that
// starts on an unreadable page fails (usually EIO); one from an address
// space that is gone returns 0, io.EOF.
func (m *Mem) Pread(b []byte, addr uint64) (int, error) {
	n, err := clamp(len(b), addr)
	if err != nil || n == 0 {
		return 0, err
	}
	for {
		got, err := unix.Pread(m.fd, b[:n], int64(addr))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, fmt.Errorf("read at 0x%x: %w", addr, err)
		case got == 0:
			return 0, io.EOF
		}
		return got, nil
	}
}

// Pwrite writes up to len(b) bytes at addr in one system call; a write that
// runs into a page it cannot write is short.
func (m *Mem) Pwrite(b []byte, addr uint64) (int, error) {
	n, err := clamp(len(b), addr)
	if err != nil || n == 0 {
		return 0, err
	}
	for {
		got, err := unix.Pwrite(m.fd, b[:n], int64(addr))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, fmt.Errorf("write at 0x%x: %w", addr, err)
		case got == 0:
			return 0, io.EOF
		}
		return got, nil
	}
}

// ReadFull reads len(b) bytes at addr, retrying short reads. It returns the
// count read before the first failure and that failure.
func (m *Mem) ReadFull(b []byte, addr uint64) (int, error) {
	done := 0
	for done < len(b) {
		n, err := m.Pread(b[done:], addr+uint64(done))
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// WriteFull writes all of b at addr; a short write is an error that says
// where it stopped.
func (m *Mem) WriteFull(b []byte, addr uint64) (int, error) {
	done := 0
	for done < len(b) {
		n, err := m.Pwrite(b[done:], addr+uint64(done))
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

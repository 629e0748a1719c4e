package memory

// This file reads and writes /proc/PID/mem, described in proc_pid_mem(5).

import (
	"fmt"
	"math"

	"golang.org/x/sys/unix"
)

// MaxAddress is the highest address /proc/PID/mem can reach, plus one:
// pread and pwrite take a signed offset.
const MaxAddress = uint64(math.MaxInt64) + 1

// mem is an open /proc/PID/mem. It is bound to the address space it was
// opened on: once that process exits or execs, reads and writes return 0
// bytes, which mem reports as ErrGone.
type mem struct{ fd int }

func (m *mem) close() error {
	if m.fd < 0 {
		return nil
	}
	err := unix.Close(m.fd)
	m.fd = -1
	return err
}

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

// pread reads up to len(b) bytes at addr in one system call, so a read that
// runs into an unreadable page returns the bytes before it. A read that
// starts on an unreadable page fails (usually EIO).
func (m *mem) pread(b []byte, addr uint64) (int, error) {
	return m.transfer("read", unix.Pread, b, addr)
}

// pwrite writes up to len(b) bytes at addr in one system call; a write that
// runs into a page it cannot write is short.
func (m *mem) pwrite(b []byte, addr uint64) (int, error) {
	return m.transfer("write", unix.Pwrite, b, addr)
}

// transfer is one pread or pwrite, bounded to what an offset can address.
func (m *mem) transfer(op string, sys func(int, []byte, int64) (int, error), b []byte, addr uint64) (int, error) {
	n, err := clamp(len(b), addr)
	if err != nil || n == 0 {
		return 0, err
	}
	for {
		got, err := sys(m.fd, b[:n], int64(addr))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, fmt.Errorf("%s at 0x%x: %w", op, addr, err)
		case got == 0:
			return 0, ErrGone
		}
		return got, nil
	}
}

// readFull reads len(b) bytes at addr, retrying short reads. It returns the
// count read before the first failure and that failure.
func (m *mem) readFull(b []byte, addr uint64) (int, error) {
	return full(m.pread, b, addr)
}

// full repeats a transfer that may be short until all of b is done or it
// fails, and returns the count done before the failure.
func full(op func([]byte, uint64) (int, error), b []byte, addr uint64) (int, error) {
	done := 0
	for done < len(b) {
		n, err := op(b[done:], addr+uint64(done))
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

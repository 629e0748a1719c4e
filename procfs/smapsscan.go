package procfs

// This file reads /proc/PID/smaps (proc_pid_smaps(5)) again and again, for
// a sampler that looks at the same process every second.

import (
	"os"

	"golang.org/x/sys/unix"
)

// SmapsScanner reads a process's smaps into buffers it keeps from one Scan
// to the next, so a sampler of a process with 60,000 mappings does not
// allocate 100 MB a second. What Scan returns is valid until the next
// Scan, except the strings (paths, devices, field names), which stay.
type SmapsScanner struct {
	parser smapsParser
	free   chan []byte // chunks to read into, kept between scans
	carry  []byte      // a line cut between two chunks
	last   int         // the length of the last text, to size the next parse
}

const (
	smapsChunk = 1 << 20
	// smapsSlack is left free at the end of a chunk for one more read: the
	// kernel hands out whole entries, a page or two at a time.
	smapsSlack = 64 << 10
	smapsDepth = 8 // chunks in flight
)

// Scan reads /proc/PID/smaps of p whole and parses it. The kernel takes
// about a microsecond per mapping to write the text (75 ms for 60,000) and
// parsing takes as long again, so one goroutine reads while Scan parses
// what it has read, a chunk at a time: the text is still read in one pass,
// from one open, and parsed as if it were whole.
func (s *SmapsScanner) Scan(p *Process) ([]Mapping, error) {
	fd, err := p.OpenFd("smaps", unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if s.free == nil {
		s.free = make(chan []byte, smapsDepth)
		for range smapsDepth {
			s.free <- make([]byte, smapsChunk)
		}
	}
	full := make(chan []byte, smapsDepth)
	readErr := make(chan error, 1)
	go func() {
		defer close(full)
		readErr <- readChunks(fd, p.path("smaps"), s.free, full)
	}()
	s.parser.reset(s.last)
	s.carry = s.carry[:0]
	var parseErr error
	total := 0
	for chunk := range full {
		total += len(chunk)
		if parseErr == nil {
			parseErr = s.feed(chunk)
		}
		s.free <- chunk[:cap(chunk)]
	}
	if err := <-readErr; err != nil {
		return nil, err
	}
	if parseErr == nil {
		_, parseErr = s.parser.feed(s.carry, true)
	}
	if parseErr != nil {
		return nil, parseErr
	}
	s.last = total
	return s.parser.end(), nil
}

// feed parses a chunk, with the line the last one cut in front of it.
func (s *SmapsScanner) feed(chunk []byte) error {
	if len(s.carry) > 0 {
		i := 0
		for i < len(chunk) && chunk[i] != '\n' {
			i++
		}
		if i < len(chunk) {
			i++
		}
		s.carry = append(s.carry, chunk[:i]...)
		chunk = chunk[i:]
		n, err := s.parser.feed(s.carry, false)
		if err != nil {
			return err
		}
		s.carry = append(s.carry[:0], s.carry[n:]...)
		if len(s.carry) > 0 {
			return nil // the line goes on in the next chunk
		}
	}
	n, err := s.parser.feed(chunk, false)
	if err != nil {
		return err
	}
	s.carry = append(s.carry, chunk[n:]...)
	return nil
}

// readChunks reads an open /proc file from its start to its end into
// chunks taken from free, and sends each filled chunk to full.
func readChunks(fd int, path string, free <-chan []byte, full chan<- []byte) error {
	var off int64
	for {
		buf := (<-free)[:0]
		for cap(buf)-len(buf) >= smapsSlack {
			n, err := unix.Pread(fd, buf[len(buf):cap(buf)], off)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				full <- buf
				return &os.PathError{Op: "read", Path: path, Err: err}
			}
			if n == 0 {
				full <- buf
				return nil
			}
			buf = buf[:len(buf)+n]
			off += int64(n)
		}
		full <- buf
	}
}

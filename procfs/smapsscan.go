package procfs

// This file reads /proc/PID/smaps (proc_pid_smaps(5)) again and again, for
// a sampler that looks at the same process every second.

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// SmapsScanner reads the figures of a process's smaps (MappingFigures)
// through buffers it keeps from one Scan to the next, so that a sampler of
// a process with 60,000 mappings does not allocate 50 MB a second, and one
// scanner reads the smaps of a thousand small processes in turn.
type SmapsScanner struct {
	parser figuresParser
	chunks [][]byte    // every chunk made, to read into
	free   chan []byte // chunks not being read into or parsed
	carry  []byte      // a line cut between two chunks
}

const (
	// smapsChunk is read before parsing starts: the whole smaps of a
	// process with 80 mappings, a chunk of one with 60,000.
	smapsChunk = 64 << 10
	// smapsSlack is left free at the end of a chunk for one more read: the
	// kernel hands out whole entries, one page at a time.
	smapsSlack = 8 << 10
	// smapsDepth bounds the chunks in flight: parsing is faster than the
	// kernel writing, so two or three are in use at once.
	smapsDepth = 8
)

// Scan reads /proc/PID/smaps of p whole and calls add with each mapping,
// in the kernel's order, once its entry has been parsed; the pointer is
// valid during the call. On an error, what add was given is to be
// thrown away.
//
// The kernel takes about a microsecond per mapping to write the text (75
// ms for 60,000), and parsing takes a third as long, so a file longer
// than a chunk is read by a goroutine while Scan parses what it has read:
// the text is read in one pass, from one open, and parsed as if whole, and
// the scan takes about as long as the kernel does.
func (s *SmapsScanner) Scan(p *Process, add func(*MappingFigures)) error {
	return s.scan(p, "smaps", add)
}

// ScanMaps reads /proc/PID/maps as Scan reads smaps: the regions, with no
// figures. The kernel writes it in a tenth of the time smaps takes, as it
// neither walks the page tables nor writes the fields.
func (s *SmapsScanner) ScanMaps(p *Process, add func(*MappingFigures)) error {
	return s.scan(p, "maps", add)
}

// Rollup reads /proc/PID/smaps_rollup as Scan reads smaps: the figures
// summed over every mapping, in one entry. ok is false for a process
// without an address space (a kernel thread, a zombie), whose file is
// empty.
func (s *SmapsScanner) Rollup(p *Process) (rollup MappingFigures, ok bool, err error) {
	n := 0
	err = s.scan(p, "smaps_rollup", func(m *MappingFigures) {
		rollup = *m
		n++
	})
	if err == nil && n > 1 {
		err = fmt.Errorf("%w: %s: %d entries, want one", ErrParse, p.path("smaps_rollup"), n)
	}
	return rollup, n == 1 && err == nil, err
}

func (s *SmapsScanner) scan(p *Process, name string, add func(*MappingFigures)) error {
	fd, err := p.OpenFd(name, unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	path := p.path(name)
	s.parser.reset(add)
	defer s.parser.reset(nil) // not to hold on to add, nor what it holds
	s.carry = s.carry[:0]
	if s.free == nil {
		s.free = make(chan []byte, smapsDepth)
	}
	first, off, eof, err := readChunk(fd, path, s.chunk(), 0)
	if err != nil {
		s.free <- first
		return err
	}
	if eof {
		err = s.feed(first)
		s.free <- first
		return s.end(err)
	}
	full := make(chan []byte, smapsDepth)
	readErr := make(chan error, 1)
	go func() {
		defer close(full)
		readErr <- s.readRest(fd, path, off, full)
	}()
	parseErr := s.feed(first)
	s.free <- first
	for chunk := range full {
		if parseErr == nil {
			parseErr = s.feed(chunk)
		}
		s.free <- chunk
	}
	if err := <-readErr; err != nil {
		return err
	}
	return s.end(parseErr)
}

// chunk returns a chunk to read into: a free one, or a new one while
// fewer than smapsDepth have been made.
func (s *SmapsScanner) chunk() []byte {
	select {
	case c := <-s.free:
		return c[:0]
	default:
	}
	if len(s.chunks) < smapsDepth {
		c := make([]byte, 0, smapsChunk)
		s.chunks = append(s.chunks, c)
		return c
	}
	return (<-s.free)[:0]
}

// readRest reads the open smaps from off to its end, a chunk at a time,
// and sends each chunk to full.
func (s *SmapsScanner) readRest(fd int, path string, off int64, full chan<- []byte) error {
	for {
		chunk, next, eof, err := readChunk(fd, path, s.chunk(), off)
		full <- chunk
		if err != nil || eof {
			return err
		}
		off = next
	}
}

// readChunk reads the open file from off into chunk until it is nearly
// full or the file ends.
func readChunk(fd int, path string, chunk []byte, off int64) (_ []byte, next int64, eof bool, err error) {
	for cap(chunk)-len(chunk) >= smapsSlack {
		n, err := unix.Pread(fd, chunk[len(chunk):cap(chunk)], off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return chunk, off, false, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return chunk, off, true, nil
		}
		chunk = chunk[:len(chunk)+n]
		off += int64(n)
	}
	return chunk, off, false, nil
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

// end parses what is left, the last line if it has no newline, and
// hands over the last mapping.
func (s *SmapsScanner) end(err error) error {
	if err == nil {
		_, err = s.parser.feed(s.carry, true)
	}
	if err == nil {
		s.parser.end()
	}
	return err
}

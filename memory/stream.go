package memory

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Sink takes what Stream finds: readable data, and stretches that hold no
// data (zeros, for which the process was left alone).
type Sink struct {
	Data  func(addr uint64, b []byte) error
	Zeros func(addr, n uint64) error
}

// Unread is a stretch that could not be read, and why.
type Unread struct {
	Start, End uint64
	Err        error
}

// streamWindow is how much of a region one look at its layout covers.
const streamWindow = 64 << 20

// Stream reads [start, end) of the region in chunks of len(buf) and hands
// them to the sink in address order. A page that cannot be read is skipped
// and reported as unread, so one bad page does not hide the rest of a
// region. It stops with ErrGone once the address space is gone, and with
// the context's error when that ends.
func (g *Region) Stream(ctx context.Context, start, end uint64, buf []byte, out Sink) ([]Unread, error) {
	var unread []Unread
	skip := func(s, e uint64, err error) {
		if n := len(unread); n > 0 && unread[n-1].End == s && errors.Is(err, errors.Unwrap(unread[n-1].Err)) {
			unread[n-1].End = e
			return
		}
		unread = append(unread, Unread{s, e, err})
	}
	read := false
	for at, wend := start, start; at < end; at = wend {
		if err := ctx.Err(); err != nil {
			return unread, err
		}
		wend = end
		if end-at > streamWindow { // not at+streamWindow: it overflows near 2^64
			wend = at + streamWindow
		}
		segs, err := g.layout.segments(at, wend)
		if Classify(err) == Gone {
			return unread, ErrGone
		}
		if err != nil {
			segs = []segment{{at, wend, data}}
		}
		for _, s := range segs {
			switch s.kind {
			case hole:
				err = out.Zeros(s.start, s.end-s.start)
			case unreadable:
				skip(s.start, s.end, fmt.Errorf("not readable (a guard page, [vvar]): %w", unix.EIO))
			default:
				read = true
				err = g.streamData(s, buf, out.Data, skip)
			}
			if err != nil {
				return unread, err
			}
		}
	}
	if !read {
		if err := g.layout.alive(); err != nil {
			return unread, err
		}
	}
	return unread, nil
}

// streamData reads a segment with data in chunks of len(buf).
func (g *Region) streamData(s segment, buf []byte, out func(uint64, []byte) error, skip func(s, e uint64, err error)) error {
	for addr := s.start; addr < s.end; {
		n := min(uint64(len(buf)), s.end-addr)
		got, err := g.rd.readSegments(buf[:n], addr, []segment{{addr, addr + n, s.kind}}, g.layout)
		if got > 0 {
			if err := out(addr, buf[:got]); err != nil {
				return err
			}
			addr += uint64(got)
			continue
		}
		if errors.Is(err, ErrGone) {
			return ErrGone
		}
		next := min((addr/pageSize+1)*pageSize, s.end)
		skip(addr, next, err)
		addr = next
	}
	return nil
}

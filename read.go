package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

// chunkSize is how much one pread asks for: large enough that the system
// call costs nothing next to the copy, small enough to stay in cache.
const chunkSize = 1 << 20

// unreadSpan is a stretch of a region that could not be read.
type unreadSpan struct {
	start, end uint64
	err        error
}

// errGone is returned when the target's address space disappears mid-way.
var errGone = errors.New("the process exited")

// scanWindow is how much of a region one look at its layout covers.
const scanWindow = 64 << 20

// sink takes what scanMemory finds: readable data, and stretches that hold
// no data (returned as zeros without touching the process).
type sink struct {
	data  func(addr uint64, b []byte) error
	zeros func(addr, n uint64) error
}

// scanMemory reads [start, end) of a region. Where the layout says there is
// no data it hands the sink zeros and leaves the process alone; the rest
// it reads in chunks. A page that cannot be read is skipped and recorded
// as unread, so one bad page does not hide the rest of a region.
func scanMemory(ctx context.Context, m *procfs.Mem, layout *procfs.Layout, start, end uint64, buf []byte, out sink) ([]unreadSpan, error) {
	var unread []unreadSpan
	unreadable := func(s, e uint64, err error) {
		if n := len(unread); n > 0 && unread[n-1].end == s && errors.Is(err, errors.Unwrap(unread[n-1].err)) {
			unread[n-1].end = e
			return
		}
		unread = append(unread, unreadSpan{s, e, err})
	}
	read := false
	for at, wend := start, start; at < end; at = wend {
		if err := ctx.Err(); err != nil {
			return unread, err
		}
		wend = end
		if end-at > scanWindow { // not at+scanWindow: it overflows near 2^64
			wend = at + scanWindow
		}
		segs, err := layout.Segments(at, wend)
		if errors.Is(err, syscall.ESRCH) {
			return unread, errGone
		}
		if err != nil {
			segs = []procfs.Segment{{Start: at, End: wend, Kind: procfs.Data}}
		}
		for _, s := range segs {
			switch s.Kind {
			case procfs.Hole:
				err = out.zeros(s.Start, s.End-s.Start)
			case procfs.Unreadable:
				unreadable(s.Start, s.End, fmt.Errorf("guard page: %w", syscall.EIO))
			default:
				read = true
				err = readData(m, s.Start, s.End, buf, out.data, unreadable)
			}
			if err != nil {
				return unread, err
			}
		}
	}
	if !read && layout.Alive() != nil {
		return unread, errGone
	}
	return unread, nil
}

// readData reads [start, end) from memory in chunks of len(buf).
func readData(m *procfs.Mem, start, end uint64, buf []byte, data func(uint64, []byte) error, unreadable func(s, e uint64, err error)) error {
	page := uint64(os.Getpagesize())
	for addr := start; addr < end; {
		n := min(uint64(len(buf)), end-addr)
		got, err := m.Pread(buf[:n], addr)
		if got > 0 {
			if err := data(addr, buf[:got]); err != nil {
				return err
			}
			addr += uint64(got)
			continue
		}
		if errors.Is(err, io.EOF) {
			return errGone
		}
		next := min((addr/page+1)*page, end)
		unreadable(addr, next, err)
		addr = next
	}
	return nil
}

func reportUnread(e *env, r procfs.Region, unread []unreadSpan) {
	for _, h := range unread {
		cause := h.err
		if u := errors.Unwrap(cause); u != nil {
			cause = u
		}
		stderrf(e, "%s %s: cannot read 0x%x-0x%x: %v", r.Name(), r.Path, h.start, h.end, cause)
	}
}

const maxPNG = 256 << 20

func setupRead(fs *pflag.FlagSet) func(*env, []string) error {
	var filter regionFilter
	filter.declare(fs)
	rangeFlag := fs.StringP("range", "r", "", "read only `RANGE` (see below)")
	width := fs.IntP("width", "W", 16, "hexdump `N` bytes per row")
	outfile := fs.StringP("outfile", "o", "", "write the raw bytes to `FILE` instead of a hexdump")
	split := fs.Bool("split", false, "with -o: one file per region, named FILE-%016x after its start address")
	sparse := fs.Bool("sparse", false, "with -o: put each region at its own address in a sparse FILE")
	pngFile := fs.String("png", "", "render each region as a grayscale image, 1024 bytes per row, named `FILE`-%016x.png")
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		switch {
		case (*split || *sparse) && *outfile == "":
			return usagef("read: --split and --sparse go with -o FILE")
		case *split && *sparse:
			return usagef("read: --split and --sparse exclude each other")
		case *width < 1 || *width > 4096:
			return usagef("read: -W takes a width from 1 to 4096")
		}
		regions, err := filter.regions(e.pid)
		if err != nil {
			return err
		}
		if *rangeFlag != "" {
			rng, err := parseRange(*rangeFlag)
			if err != nil {
				return err
			}
			if regions = clip(regions, rng); len(regions) == 0 {
				return fmt.Errorf("0x%x-0x%x is not mapped (in the selected regions) in process %d", rng.start, rng.end, e.pid)
			}
		}
		if len(regions) == 0 {
			return fmt.Errorf("no region selected")
		}
		rd := &reader{env: e, width: *width, outfile: *outfile, split: *split, sparse: *sparse, png: *pngFile}
		return rd.run(regions)
	}
}

// clip keeps the parts of the regions inside rng.
func clip(regions []procfs.Region, rng addrRange) []procfs.Region {
	var out []procfs.Region
	for _, r := range regions {
		r.Start, r.End = max(r.Start, rng.start), min(r.End, rng.end)
		if r.Start < r.End {
			out = append(out, r)
		}
	}
	return out
}

// reader carries out one read verb: each region goes to the hexdump, to
// raw output files and to images as the flags say.
type reader struct {
	*env
	width         int
	outfile, png  string
	split, sparse bool
	out           *os.File         // the single -o file, when not split
	base          map[string]int64 // where the next region starts in a plain -o file
	written       map[string]uint64
	order         []string
}

func (rd *reader) run(regions []procfs.Region) (err error) {
	p, m, release, err := openMemory(rd.pid, false)
	if err != nil {
		return err
	}
	defer release()
	rd.written = map[string]uint64{}
	rd.base = map[string]int64{}
	if rd.outfile != "" && !rd.split {
		if rd.out, err = os.Create(rd.outfile); err != nil {
			return err
		}
		defer func() {
			if cerr := rd.out.Close(); err == nil {
				err = cerr
			}
		}()
	}
	buf := make([]byte, chunkSize)
	failed := 0
	for _, r := range regions {
		unread, err := rd.region(p, m, r, buf)
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.Name(), r.Path, err)
		}
		if len(unread) > 0 {
			reportUnread(rd.env, r, unread)
			failed++
		}
	}
	for _, name := range rd.order {
		fmt.Fprintf(rd.stdout, "wrote %s to %s\n", report.Size(rd.written[name]), name)
	}
	if failed > 0 {
		stderrf(rd.env, "%d of %d regions could not be read completely", failed, len(regions))
		return errSilent
	}
	return nil
}

func (rd *reader) note(name string, n uint64) {
	if _, ok := rd.written[name]; !ok {
		rd.order = append(rd.order, name)
	}
	rd.written[name] += n
}

// region reads one region into every output the flags ask for.
func (rd *reader) region(p *procfs.Process, m *procfs.Mem, r procfs.Region, buf []byte) ([]unreadSpan, error) {
	var sinks []sink
	var finish []func() error

	if rd.outfile == "" && rd.png == "" {
		fmt.Fprintln(rd.stdout, report.RegionLine(r))
		h := report.NewHexdump(rd.stdout, rd.width)
		sinks = append(sinks, sink{h.Write, h.Zeros})
		finish = append(finish, h.Flush)
	}
	if rd.outfile != "" {
		f, name := rd.out, rd.outfile
		if rd.split {
			name = fmt.Sprintf("%s-%016x", rd.outfile, r.Start)
			var err error
			if f, err = os.Create(name); err != nil {
				return nil, err
			}
		}
		// Stretches without data, and pages that cannot be read, become
		// unread in the file: zeros to whoever reads it, no disk used. A
		// plain file keeps every region at its length; a sparse one puts
		// it at its own address.
		pos := func(addr uint64) (int64, error) {
			if !rd.sparse {
				return rd.base[name] + int64(addr-r.Start), nil
			}
			if addr > 1<<63-1 {
				return 0, fmt.Errorf("address 0x%x does not fit a file offset", addr)
			}
			return int64(addr), nil
		}
		sinks = append(sinks, sink{
			data: func(addr uint64, b []byte) error {
				off, err := pos(addr)
				if err != nil {
					return err
				}
				_, err = f.WriteAt(b, off)
				if errors.Is(err, syscall.EFBIG) {
					return fmt.Errorf("%s cannot hold offset 0x%x: its filesystem limits file size (tmpfs does not; or use --split)", name, off)
				}
				rd.note(name, uint64(len(b)))
				return err
			},
			zeros: func(addr, n uint64) error { rd.note(name, n); return nil },
		})
		finish = append(finish, func() error {
			// Extend the file over a trailing hole.
			end, err := pos(r.End)
			if err != nil {
				return err
			}
			if !rd.sparse {
				rd.base[name] = end
			}
			st, err := f.Stat()
			if err == nil && st.Size() < end {
				err = f.Truncate(end)
			}
			return err
		})
		if rd.split {
			finish = append(finish, f.Close)
		}
	}
	if rd.png != "" {
		if r.Size() > maxPNG {
			return nil, fmt.Errorf("region of %s is too large for --png (at most %s)", report.Size(r.Size()), report.Size(maxPNG))
		}
		img := image.NewGray(image.Rect(0, 0, 1024, int((r.Size()+1023)/1024)))
		name := fmt.Sprintf("%s-%016x.png", rd.png, r.Start)
		sinks = append(sinks, sink{
			data:  func(addr uint64, b []byte) error { copy(img.Pix[addr-r.Start:], b); return nil },
			zeros: func(addr, n uint64) error { return nil }, // the image starts black
		})
		finish = append(finish, func() error {
			f, err := os.Create(name)
			if err != nil {
				return err
			}
			if err := png.Encode(f, img); err != nil {
				f.Close()
				return err
			}
			rd.note(name, r.Size())
			return f.Close()
		})
	}

	layout, err := p.OpenLayout(r)
	if err != nil {
		return nil, err
	}
	defer layout.Close()
	unread, err := scanMemory(rd.ctx, m, layout, r.Start, r.End, buf, sink{
		data: func(addr uint64, b []byte) error {
			for _, s := range sinks {
				if err := s.data(addr, b); err != nil {
					return err
				}
			}
			return nil
		},
		zeros: func(addr, n uint64) error {
			for _, s := range sinks {
				if err := s.zeros(addr, n); err != nil {
					return err
				}
			}
			return nil
		},
	})
	for _, f := range finish {
		if ferr := f(); err == nil {
			err = ferr
		}
	}
	return unread, err
}

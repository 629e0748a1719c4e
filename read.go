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

// hole is a stretch of a region that could not be read.
type hole struct {
	start, end uint64
	err        error
}

// errGone is returned when the target's address space disappears mid-way.
var errGone = errors.New("the process exited")

// scanMemory reads [start, end) in chunks and hands every readable piece to
// fn. A page that cannot be read is skipped and recorded as a hole, so one
// bad page does not hide the rest of a region.
func scanMemory(ctx context.Context, m *procfs.Mem, start, end uint64, buf []byte, fn func(addr uint64, data []byte) error) ([]hole, error) {
	var holes []hole
	page := uint64(os.Getpagesize())
	for addr := start; addr < end; {
		if err := ctx.Err(); err != nil {
			return holes, err
		}
		n := uint64(len(buf))
		if end-addr < n {
			n = end - addr
		}
		got, err := m.Pread(buf[:n], addr)
		if got > 0 {
			if err := fn(addr, buf[:got]); err != nil {
				return holes, err
			}
			addr += uint64(got)
			continue
		}
		if errors.Is(err, io.EOF) {
			return holes, errGone
		}
		next := min((addr/page+1)*page, end)
		if len(holes) > 0 && holes[len(holes)-1].end == addr && errors.Is(err, errors.Unwrap(holes[len(holes)-1].err)) {
			holes[len(holes)-1].end = next
		} else {
			holes = append(holes, hole{addr, next, err})
		}
		addr = next
	}
	return holes, nil
}

func reportHoles(e *env, r procfs.Region, holes []hole) {
	for _, h := range holes {
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
	out           *os.File // the single -o file, when not split
	written       map[string]uint64
	order         []string
}

func (rd *reader) run(regions []procfs.Region) (err error) {
	p, err := procfs.Open(rd.pid)
	if err != nil {
		return err
	}
	defer p.Close()
	m, err := p.OpenMem(false)
	if err != nil {
		return err
	}
	defer m.Close()
	rd.written = map[string]uint64{}
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
		holes, err := rd.region(m, r, buf)
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.Name(), r.Path, err)
		}
		if len(holes) > 0 {
			reportHoles(rd.env, r, holes)
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
func (rd *reader) region(m *procfs.Mem, r procfs.Region, buf []byte) ([]hole, error) {
	var sinks []func(addr uint64, data []byte) error
	var finish []func() error

	if rd.outfile == "" && rd.png == "" {
		fmt.Fprintln(rd.stdout, report.RegionLine(r))
		h := report.NewHexdump(rd.stdout, rd.width)
		sinks = append(sinks, func(addr uint64, data []byte) error { return h.Write(addr, data) })
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
			finish = append(finish, f.Close)
		}
		// Unreadable stretches become zeros in a plain file, so every
		// region keeps its length; a sparse file leaves them as holes.
		next := r.Start
		sinks = append(sinks, func(addr uint64, data []byte) error {
			var err error
			if rd.sparse {
				if addr > 1<<63-1 {
					return fmt.Errorf("address 0x%x does not fit a file offset", addr)
				}
				_, err = f.WriteAt(data, int64(addr))
				if errors.Is(err, syscall.EFBIG) {
					return fmt.Errorf("%s cannot hold offset 0x%x: its filesystem limits file size (tmpfs does not; or use --split)", name, addr)
				}
			} else {
				if gap := addr - next; gap > 0 {
					if _, err = f.Write(make([]byte, gap)); err != nil {
						return err
					}
				}
				_, err = f.Write(data)
			}
			next = addr + uint64(len(data))
			rd.note(name, uint64(len(data)))
			return err
		})
		if !rd.sparse {
			finish = append(finish, func() error {
				if next < r.End {
					_, err := f.Write(make([]byte, r.End-next))
					return err
				}
				return nil
			})
		}
		if rd.sparse {
			finish = append(finish, func() error {
				// Extend the file over a trailing hole too.
				st, err := f.Stat()
				if err == nil && st.Size() < int64(r.End) {
					err = f.Truncate(int64(r.End))
				}
				return err
			})
		}
	}
	if rd.png != "" {
		if r.Size() > maxPNG {
			return nil, fmt.Errorf("region of %s is too large for --png (at most %s)", report.Size(r.Size()), report.Size(maxPNG))
		}
		img := image.NewGray(image.Rect(0, 0, 1024, int((r.Size()+1023)/1024)))
		name := fmt.Sprintf("%s-%016x.png", rd.png, r.Start)
		sinks = append(sinks, func(addr uint64, data []byte) error {
			copy(img.Pix[addr-r.Start:], data)
			return nil
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

	holes, err := scanMemory(rd.ctx, m, r.Start, r.End, buf, func(addr uint64, data []byte) error {
		for _, sink := range sinks {
			if err := sink(addr, data); err != nil {
				return err
			}
		}
		return nil
	})
	for _, f := range finish {
		if ferr := f(); err == nil {
			err = ferr
		}
	}
	return holes, err
}

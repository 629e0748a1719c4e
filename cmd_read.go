package main

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

var readVerb = verb{
	name:  "read",
	args:  "[-r RANGE] [-W N] [-o FILE [--split | --sparse]] [--png FILE] [region filters]",
	short: "hexdump or save memory",
	long:  rangeHelp + "\n\nPages that hold no data are not read: they are zeros in the hexdump and holes in -o files.",
	setup: setupRead,
}

// rangeHelp says how a RANGE is written, for read and watch.
const rangeHelp = "RANGE is hex: ADDR (one byte), ADDR:END, ADDR:+LEN or ADDR:-LEN (the LEN bytes before ADDR)."

// chunkSize is how much one read of memory asks for: large enough that the
// system call costs nothing next to the copy, small enough to stay in
// cache.
const chunkSize = 1 << 20

const maxPNG = 256 << 20

func setupRead(flags *pflag.FlagSet) func(*env, []string) error {
	var filter regionFilter
	filter.declare(flags)
	rangeFlag := flags.StringP("range", "r", "", "read only `RANGE` (see below)")
	width := flags.IntP("width", "W", 16, "hexdump `N` bytes per row")
	outfile := flags.StringP("outfile", "o", "", "write the raw bytes to `FILE` instead of a hexdump")
	split := flags.Bool("split", false, "with -o: one file per region, named FILE-%016x after its start address")
	sparse := flags.Bool("sparse", false, "with -o: put each region at its own address in a sparse FILE")
	pngFile := flags.String("png", "", "render each region as a grayscale image, 1024 bytes per row, named `FILE`-%016x.png")
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
		regions, err := filter.regions(e.proc)
		if err != nil {
			return err
		}
		if *rangeFlag != "" {
			rng, err := parseRange(*rangeFlag)
			if err != nil {
				return err
			}
			if regions = clip(regions, rng); len(regions) == 0 {
				return fmt.Errorf("0x%x-0x%x is not mapped (in the selected regions) in process %d", rng.start, rng.end, e.pid())
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
	out           *rawFile // the single -o file, when not split
	written       notes
}

// output is one destination of a region's bytes.
type output interface {
	data(addr uint64, b []byte) error
	zeros(addr, n uint64) error
	finish() error // after the region's last byte, also after a failure
}

func (rd *reader) run(regions []procfs.Region) (err error) {
	mem, err := openMemory(rd.env, false)
	if err != nil {
		return err
	}
	defer mem.Close()
	if rd.outfile != "" && !rd.split {
		if rd.out, err = createRaw(rd.outfile, rd.sparse, &rd.written); err != nil {
			return err
		}
		defer func() {
			if cerr := rd.out.f.Close(); err == nil {
				err = cerr
			}
		}()
	}
	buf := make([]byte, chunkSize)
	failed := 0
	for _, r := range regions {
		unread, err := rd.region(mem, r, buf)
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.Name(), r.Path, err)
		}
		if len(unread) > 0 {
			reportUnread(rd.env, r, unread)
			failed++
		}
	}
	rd.written.print(rd.stdout)
	if failed > 0 {
		stderrf(rd.env, "%d of %d regions could not be read completely", failed, len(regions))
		return errSilent
	}
	return nil
}

// outputs opens what one region is written to.
func (rd *reader) outputs(r procfs.Region) ([]output, error) {
	var outs []output
	if rd.outfile == "" && rd.png == "" {
		fmt.Fprintln(rd.stdout, report.RegionLine(r))
		outs = append(outs, newHexdumpOutput(rd.env, rd.width))
	}
	if rd.outfile != "" {
		f := rd.out
		if rd.split {
			var err error
			if f, err = createRaw(fmt.Sprintf("%s-%016x", rd.outfile, r.Start), false, &rd.written); err != nil {
				return outs, err
			}
		}
		outs = append(outs, f.region(r, rd.split))
	}
	if rd.png != "" {
		if r.Size() > maxPNG {
			return outs, fmt.Errorf("region of %s is too large for --png (at most %s)", report.Size(r.Size()), report.Size(maxPNG))
		}
		outs = append(outs, newImage(fmt.Sprintf("%s-%016x.png", rd.png, r.Start), r, &rd.written))
	}
	return outs, nil
}

// region reads one region into every output the flags ask for.
func (rd *reader) region(mem *memory.Reader, r procfs.Region, buf []byte) (unread []memory.Unread, err error) {
	outs, err := rd.outputs(r)
	defer func() {
		for _, o := range outs {
			if ferr := o.finish(); err == nil {
				err = ferr
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	g := mem.Region(r)
	defer g.Close()
	return g.Stream(rd.ctx, r.Start, r.End, buf, memory.Sink{
		Data: func(addr uint64, b []byte) error {
			for _, o := range outs {
				if err := o.data(addr, b); err != nil {
					return err
				}
			}
			return nil
		},
		Zeros: func(addr, n uint64) error {
			for _, o := range outs {
				if err := o.zeros(addr, n); err != nil {
					return err
				}
			}
			return nil
		},
	})
}

func reportUnread(e *env, r procfs.Region, unread []memory.Unread) {
	for _, h := range unread {
		cause := h.Err
		if u := errors.Unwrap(cause); u != nil {
			cause = u
		}
		stderrf(e, "%s %s: cannot read 0x%x-0x%x: %v", r.Name(), r.Path, h.Start, h.End, cause)
	}
}

// notes counts what went to each output file, in the order the files were
// first written, for the closing "wrote" lines.
type notes struct {
	order []string
	bytes map[string]uint64
}

func (n *notes) add(name string, size uint64) {
	if n.bytes == nil {
		n.bytes = map[string]uint64{}
	}
	if _, ok := n.bytes[name]; !ok {
		n.order = append(n.order, name)
	}
	n.bytes[name] += size
}

func (n *notes) print(w io.Writer) {
	for _, name := range n.order {
		fmt.Fprintf(w, "wrote %s to %s\n", report.Size(n.bytes[name]), name)
	}
}

// hexdumpOutput prints a region as hexdump rows.
type hexdumpOutput struct{ h *report.Hexdump }

func newHexdumpOutput(e *env, width int) hexdumpOutput {
	return hexdumpOutput{report.NewHexdump(e.stdout, width)}
}

func (o hexdumpOutput) data(addr uint64, b []byte) error { return o.h.Write(addr, b) }
func (o hexdumpOutput) zeros(addr, n uint64) error       { return o.h.Zeros(addr, n) }
func (o hexdumpOutput) finish() error                    { return o.h.Flush() }

// rawFile is an -o file. Stretches without data, and pages that cannot be
// read, are left unwritten: zeros to whoever reads the file, no disk used.
// A plain file keeps every region at its length, one after the other; a
// sparse one puts each at its own address.
type rawFile struct {
	f      *os.File
	sparse bool
	base   int64 // where the next region starts in a plain file
	notes  *notes
}

func createRaw(name string, sparse bool, n *notes) (*rawFile, error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	return &rawFile{f: f, sparse: sparse, notes: n}, nil
}

// region returns the output of one region into the file; closing says
// whether the file is closed after it (--split).
func (f *rawFile) region(r procfs.Region, closing bool) output {
	return &rawRegion{file: f, r: r, closing: closing}
}

type rawRegion struct {
	file    *rawFile
	r       procfs.Region
	closing bool
}

// pos is the file offset of addr.
func (o *rawRegion) pos(addr uint64) (int64, error) {
	if !o.file.sparse {
		return o.file.base + int64(addr-o.r.Start), nil
	}
	if addr > 1<<63-1 {
		return 0, fmt.Errorf("address 0x%x does not fit a file offset", addr)
	}
	return int64(addr), nil
}

func (o *rawRegion) data(addr uint64, b []byte) error {
	off, err := o.pos(addr)
	if err != nil {
		return err
	}
	_, err = o.file.f.WriteAt(b, off)
	if errors.Is(err, syscall.EFBIG) {
		return fmt.Errorf("%s cannot hold offset 0x%x: its filesystem limits file size (tmpfs does not; or use --split)", o.file.f.Name(), off)
	}
	o.file.notes.add(o.file.f.Name(), uint64(len(b)))
	return err
}

func (o *rawRegion) zeros(addr, n uint64) error {
	o.file.notes.add(o.file.f.Name(), n)
	return nil
}

// finish extends the file over a trailing hole.
func (o *rawRegion) finish() error {
	end, err := o.pos(o.r.End)
	if err == nil {
		if !o.file.sparse {
			o.file.base = end
		}
		var st os.FileInfo
		if st, err = o.file.f.Stat(); err == nil && st.Size() < end {
			err = o.file.f.Truncate(end)
		}
	}
	if o.closing {
		if cerr := o.file.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// imageOutput renders a region as a grayscale PNG, 1024 bytes per row.
type imageOutput struct {
	name  string
	r     procfs.Region
	img   *image.Gray
	notes *notes
}

func newImage(name string, r procfs.Region, n *notes) *imageOutput {
	img := image.NewGray(image.Rect(0, 0, 1024, int((r.Size()+1023)/1024)))
	return &imageOutput{name: name, r: r, img: img, notes: n}
}

func (o *imageOutput) data(addr uint64, b []byte) error {
	copy(o.img.Pix[addr-o.r.Start:], b)
	return nil
}

func (o *imageOutput) zeros(addr, n uint64) error { return nil } // the image starts black

func (o *imageOutput) finish() error {
	f, err := os.Create(o.name)
	if err != nil {
		return err
	}
	if err := png.Encode(f, o.img); err != nil {
		f.Close()
		return err
	}
	o.notes.add(o.name, o.r.Size())
	return f.Close()
}

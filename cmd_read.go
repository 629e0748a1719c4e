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
	"github.com/procmem/procmem/userfiles"
)

var readVerb = verb{
	name:  "read",
	args:  "[-r RANGE] [-W N] [-o FILE [--split | --sparse]] [--png FILE] [region filters]",
	short: "hexdump or save memory",
	long: rangeHelp + "\n\nPages that hold no data are not read: they are zeros in the hexdump and holes in -o files." +
		"\n-o - (or a pipe) streams the raw bytes, zeros included; --sparse and --split need a FILE.",
	setup:    setupRead,
	captures: true,
}

// rangeHelp says how a RANGE is written, for read and watch.
const rangeHelp = "RANGE is ADDR (one byte), ADDR:END, ADDR:+LEN or ADDR:-LEN (the LEN bytes before ADDR), in hex.\n" + exprHelp

// exprHelp says how an ADDR may be written.
const exprHelp = "ADDR may be an address expression: hex numbers, mapped file names (their load base), regions as maps names\n" +
	"them ([heap], [stack], [anon:NAME]: their start), [stack:N] (the top of thread N's stack, 0 the main thread) and\n" +
	"[EXPR] (the pointer stored at EXPR) joined by + and -, such as '[[game+4010]+8]+c', which finds a value again after\n" +
	"a restart. Every address procmem prints (game+4010, [heap]+2c0, [stack:0]-1f8) pastes back as the same byte."

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
		case *outfile == "-" && (*split || *sparse):
			return usagef("read: -o - streams the bytes: --split and --sparse need a FILE")
		}
		var rng addrRange
		if *rangeFlag != "" {
			var err error
			if rng, err = resolveRange(e, *rangeFlag); err != nil {
				return err
			}
		}
		regions, err := filter.regions(e)
		if err != nil {
			return err
		}
		parts := regions
		if *rangeFlag != "" {
			if parts = clip(regions, rng); len(parts) == 0 {
				return fmt.Errorf("0x%x-0x%x is not mapped%s in process %d", rng.start, rng.end, filter.among(), e.pid())
			}
		}
		if len(parts) == 0 {
			return fmt.Errorf("no region selected")
		}
		rd := &reader{env: e, whole: regions, width: *width, outfile: *outfile, split: *split, sparse: *sparse, png: *pngFile}
		err = rd.run(parts)
		if *rangeFlag != "" && err == nil {
			// What of the range is not mapped: said as for a range none of
			// which is, after what is.
			for _, gap := range gaps(parts, rng) {
				stderrf(e, "0x%x-0x%x is not mapped%s in process %d", gap.start, gap.end, filter.among(), e.pid())
				err = errSilent
			}
		}
		return err
	}
}

// gaps returns the parts of rng that no region (clipped to rng, in
// order) covers.
func gaps(parts []procfs.Region, rng addrRange) []addrRange {
	var out []addrRange
	at := rng.start
	for _, r := range parts {
		if r.Start > at {
			out = append(out, addrRange{at, r.Start})
		}
		at = max(at, r.End)
	}
	if at < rng.end {
		out = append(out, addrRange{at, rng.end})
	}
	return out
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
	whole         []procfs.Region // the selected regions, whole: read -r names them
	width         int
	outfile, png  string
	split, sparse bool
	out           *rawFile // the single -o file, when not split
	written       notes
	progress      *progress
}

// output is one destination of a region's bytes.
type output interface {
	data(addr uint64, b []byte) error
	zeros(addr, n uint64) error
	// finish ends the region: after its last byte (ok), or after a
	// failure (not ok), when nothing more is written for it.
	finish(ok bool) error
}

func (rd *reader) run(regions []procfs.Region) (err error) {
	mem, err := openMemory(rd.env, false)
	if err != nil {
		return err
	}
	defer mem.Close()
	// A command that fails leaves no partial file behind (one with pages
	// that could not be read, said on stderr, is kept): what it wrote is
	// never renamed into place, and what it already renamed (--split,
	// --png) is removed. What is no regular file (/dev/null, a pipe) was
	// written in place and stays.
	defer func() {
		if err != nil && err != errSilent {
			rd.written.removeCommitted()
		}
	}()
	if rd.outfile != "" && !rd.split {
		if rd.out, err = createRaw(rd.env, rd.outfile, rd.sparse, &rd.written); err != nil {
			return err
		}
		defer func() {
			if cerr := rd.out.close(err == nil || err == errSilent); err == nil {
				err = cerr
			}
		}()
	}
	buf := make([]byte, chunkSize)
	failed := 0
	if rd.outfile != "" && rd.outfile != stdoutName {
		var total uint64
		for _, r := range regions {
			total += r.Size()
		}
		rd.progress = newProgress(rd.env, total, "reading")
		defer rd.progress.finish()
	}
	for _, r := range regions {
		unread, err := rd.region(mem, r, buf)
		if err != nil {
			return fmt.Errorf("%s: %w", r.Label(), err)
		}
		if len(unread) > 0 {
			reportUnread(rd.env, r, unread)
			failed++
		}
	}
	// On stderr: standard output may be where the bytes went.
	rd.written.print(rd.env)
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
		// The region the bytes are in, whole, even when a range is read.
		whole, ok := procfs.RegionAt(rd.whole, r.Start)
		if !ok {
			whole = r
		}
		fmt.Fprintln(rd.stdout, report.RegionLine(whole))
		outs = append(outs, newHexdumpOutput(rd.env, rd.width))
	}
	if rd.outfile != "" {
		f := rd.out
		if rd.split {
			var err error
			if f, err = createRaw(rd.env, fmt.Sprintf("%s-%016x", rd.outfile, r.Start), false, &rd.written); err != nil {
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
			if ferr := o.finish(err == nil); err == nil {
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
			rd.progress.add(uint64(len(b)))
			for _, o := range outs {
				if err := o.data(addr, b); err != nil {
					return err
				}
			}
			return nil
		},
		Zeros: func(addr, n uint64) error {
			rd.progress.add(n)
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
		stderrf(e, "%s: cannot read 0x%x-0x%x: %v", r.Label(), h.Start, h.End, cause)
	}
}

// notes counts what went to each output file, in the order the files were
// first written, for the closing "wrote" lines, and remembers the regular
// files renamed into place, to remove them if the command fails.
type notes struct {
	order     []string
	bytes     map[string]uint64
	committed []string
}

// commit renames a finished file into place.
func (n *notes) commit(f *userfiles.File) error {
	st, err := f.Stat()
	if err != nil {
		f.Abort()
		return err
	}
	if err := f.Commit(); err != nil {
		return err
	}
	if st.Mode().IsRegular() { // not /dev/null, a pipe, a terminal
		n.committed = append(n.committed, f.Path())
	}
	return nil
}

// removeCommitted removes the files commit renamed into place.
func (n *notes) removeCommitted() {
	for _, name := range n.committed {
		os.Remove(name)
	}
	n.committed = nil
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

func (n *notes) print(e *env) {
	for _, name := range n.order {
		to := name
		if name == stdoutName {
			to = "standard output"
		}
		stderrf(e, "wrote %s to %s", report.Size(n.bytes[name]), to)
	}
}

// hexdumpOutput prints a region as hexdump rows.
type hexdumpOutput struct{ h *report.Hexdump }

func newHexdumpOutput(e *env, width int) hexdumpOutput {
	return hexdumpOutput{report.NewHexdump(e.stdout, width)}
}

func (o hexdumpOutput) data(addr uint64, b []byte) error { return o.h.Write(addr, b) }
func (o hexdumpOutput) zeros(addr, n uint64) error       { return o.h.Zeros(addr, n) }
func (o hexdumpOutput) finish(bool) error                { return o.h.Flush() }

// rawFile is an -o file. Stretches without data, and pages that cannot be
// read, are left unwritten: zeros to whoever reads the file, no disk used.
// A plain file keeps every region at its length, one after the other; a
// sparse one puts each at its own address. Standard output ("-") and
// what is no regular file (a pipe, /dev/null) get a stream instead, zeros
// written out.
type rawFile struct {
	f      *userfiles.File // nil for standard output
	name   string
	sparse bool
	stream io.Writer // for outputs that cannot seek; nil otherwise
	base   int64     // where the next region starts in a plain file
	notes  *notes
}

// stdoutName is how -o names standard output.
const stdoutName = "-"

func createRaw(e *env, name string, sparse bool, n *notes) (*rawFile, error) {
	if name == stdoutName {
		return &rawFile{name: name, stream: e.stdout, notes: n}, nil
	}
	f, err := userfiles.Create(name, 0o644)
	if err != nil {
		return nil, err
	}
	out := &rawFile{f: f, name: name, sparse: sparse, notes: n}
	// Only a regular file holds regions at offsets: a pipe or a terminal
	// cannot seek, and /dev/null seeks but cannot be truncated.
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		if sparse {
			f.Abort()
			return nil, usagef("read: --sparse needs a regular FILE, and %s is none", name)
		}
		out.stream = f
	}
	n.add(name, 0)
	return out, nil
}

// close renames a complete file into place (ok), or drops what was
// written to it.
func (f *rawFile) close(ok bool) error {
	if f.f == nil {
		return nil
	}
	if !ok {
		f.f.Abort()
		return nil
	}
	return f.notes.commit(f.f)
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
	o.file.notes.add(o.file.name, uint64(len(b)))
	if o.file.stream != nil {
		_, err := o.file.stream.Write(b)
		return err
	}
	off, err := o.pos(addr)
	if err != nil {
		return err
	}
	_, err = o.file.f.WriteAt(b, off)
	if errors.Is(err, syscall.EFBIG) {
		return fmt.Errorf("%s cannot hold offset 0x%x: its filesystem limits file size (tmpfs does not; or use --split)", o.file.name, off)
	}
	return err
}

// zeroPage is what a stream writes for a stretch without data.
var zeroPage [64 << 10]byte

func (o *rawRegion) zeros(addr, n uint64) error {
	o.file.notes.add(o.file.name, n)
	for o.file.stream != nil && n > 0 {
		k := min(n, uint64(len(zeroPage)))
		if _, err := o.file.stream.Write(zeroPage[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// finish extends the file over a trailing hole, and closes a --split
// file.
func (o *rawRegion) finish(ok bool) error {
	if o.file.stream != nil {
		return o.closeSplit(ok, nil)
	}
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
	return o.closeSplit(ok, err)
}

// closeSplit closes a --split file after its region, complete or not.
func (o *rawRegion) closeSplit(ok bool, err error) error {
	if o.closing {
		if cerr := o.file.close(ok && err == nil); err == nil {
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

// finish writes the image of a region read to its end, and notes its size
// on disk: what was written, not the size of the region it shows.
func (o *imageOutput) finish(ok bool) error {
	if !ok {
		return nil
	}
	f, err := userfiles.Create(o.name, 0o644)
	if err != nil {
		return err
	}
	n := &countingWriter{w: f}
	if err := png.Encode(n, o.img); err != nil {
		f.Abort()
		return err
	}
	if err := o.notes.commit(f); err != nil {
		return err
	}
	o.notes.add(o.name, n.n)
	return nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n uint64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += uint64(n)
	return n, err
}

package report

import (
	"bufio"
	"fmt"
	"io"
)

// Hexdump writes memory as rows of a 16-digit address, the bytes in hex in
// groups of eight, and the bytes as printable ASCII between bars. Runs of
// rows that are all zero collapse into one "  -- skipped zeroes: N" line
// (N rows). Data arrives in pieces with Write; a piece that does not
// continue the previous one (a hole was skipped) starts a new row at its
// own address.
type Hexdump struct {
	w        *bufio.Writer
	width    int
	row      []byte // bytes of the row being filled
	rowAddr  uint64
	next     uint64 // address the next Write continues at
	started  bool
	zeroRows int
	line     []byte
}

// NewHexdump returns a hexdump writing rows of width bytes to w.
func NewHexdump(w io.Writer, width int) *Hexdump {
	if width < 1 {
		width = 16
	}
	return &Hexdump{w: bufio.NewWriterSize(w, 64*1024), width: width, row: make([]byte, 0, width)}
}

// Write adds data found at addr.
func (h *Hexdump) Write(addr uint64, data []byte) error {
	if h.started && addr != h.next {
		h.flushRow()
		h.flushZeroes()
	}
	if !h.started || len(h.row) == 0 {
		h.rowAddr = addr
	}
	h.started = true
	h.next = addr + uint64(len(data))
	for len(data) > 0 {
		if len(h.row) == 0 && len(data) >= h.width {
			// Whole rows straight from data, without copying.
			h.emit(h.rowAddr, data[:h.width])
			h.rowAddr += uint64(h.width)
			data = data[h.width:]
			continue
		}
		n := min(h.width-len(h.row), len(data))
		h.row = append(h.row, data[:n]...)
		data = data[n:]
		if len(h.row) == h.width {
			h.emit(h.rowAddr, h.row)
			h.rowAddr += uint64(h.width)
			h.row = h.row[:0]
		}
	}
	return nil
}

// Zeros adds n zero bytes at addr without asking for them in memory: a
// stretch that holds no data. Whole zero rows only add to the count.
func (h *Hexdump) Zeros(addr, n uint64) error {
	var zero [64]byte
	for n > 0 && (len(h.row) > 0 || !h.started || addr != h.next) {
		k := min(n, uint64(len(zero)))
		if len(h.row) > 0 || !h.started || addr != h.next {
			k = min(k, uint64(h.width-len(h.row)))
		}
		h.Write(addr, zero[:k])
		addr, n = addr+k, n-k
	}
	rows := n / uint64(h.width)
	if rows > 0 {
		h.zeroRows += int(rows)
		h.rowAddr += rows * uint64(h.width)
		addr += rows * uint64(h.width)
		h.next = addr
		n -= rows * uint64(h.width)
	}
	for n > 0 {
		k := min(n, uint64(len(zero)))
		h.Write(addr, zero[:k])
		addr, n = addr+k, n-k
	}
	return nil
}

// Flush writes the last partial row and any pending run of zero rows.
func (h *Hexdump) Flush() error {
	h.flushRow()
	h.flushZeroes()
	h.started = false
	return h.w.Flush()
}

func (h *Hexdump) flushRow() {
	if len(h.row) > 0 {
		h.emit(h.rowAddr, h.row)
		h.rowAddr += uint64(len(h.row))
		h.row = h.row[:0]
	}
}

func (h *Hexdump) flushZeroes() {
	if h.zeroRows > 0 {
		fmt.Fprintf(h.w, "  -- skipped zeroes: %d\n", h.zeroRows)
		h.zeroRows = 0
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

func (h *Hexdump) emit(addr uint64, row []byte) {
	if len(row) == h.width && allZero(row) {
		h.zeroRows++
		return
	}
	h.flushZeroes()
	h.line = FormatRow(h.line[:0], addr, row, h.width)
	h.w.Write(h.line)
}

// FormatRow appends one hexdump row (with its newline) to dst. A row
// shorter than width is padded so the ASCII column stays aligned.
func FormatRow(dst []byte, addr uint64, row []byte, width int) []byte {
	dst = fmt.Appendf(dst, "%016x  ", addr)
	for i := 0; i < width; i++ {
		if i > 0 {
			dst = append(dst, ' ')
			if i%8 == 0 {
				dst = append(dst, ' ')
			}
		}
		if i < len(row) {
			dst = append(dst, hexDigits[row[i]>>4], hexDigits[row[i]&15])
		} else {
			dst = append(dst, ' ', ' ')
		}
	}
	dst = append(dst, " "+" |"...)
	for i := 0; i < width; i++ {
		switch {
		case i >= len(row):
			dst = append(dst, ' ')
		case row[i] >= 0x20 && row[i] < 0x7f:
			dst = append(dst, row[i])
		default:
			dst = append(dst, '.')
		}
	}
	return append(dst, "|\n"...)
}

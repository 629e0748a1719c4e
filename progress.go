package main

import (
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how far long work has come (bytes done, total, rate, time
// left) on a terminal's stderr, and nothing anywhere else: never in a pipe,
// a file or a test's buffer.
type progress struct{ bar *progressbar.ProgressBar }

// newProgress starts a progress line for total bytes, or returns nil when
// stderr is no terminal; a nil progress does nothing.
func newProgress(e *env, total uint64, what string) *progress {
	if e.stderr != os.Stderr || !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return &progress{progressbar.NewOptions64(int64(total),
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { os.Stderr.WriteString("\n") }),
	)}
}

// add counts n more bytes done.
func (p *progress) add(n uint64) {
	if p != nil {
		p.bar.Add64(int64(n))
	}
}

// clear takes the line off the terminal, for other output; the next add
// draws it again.
func (p *progress) clear() {
	if p != nil {
		p.bar.Clear()
	}
}

// finish ends the line, whether or not all was done.
func (p *progress) finish() {
	if p != nil {
		p.bar.Finish()
	}
}

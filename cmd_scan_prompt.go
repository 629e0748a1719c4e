package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/term"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/scan"
	"github.com/procmem/procmem/userfiles"
)

// prompt reads commands until quit, the end of the input, or SIGTERM. On a
// terminal it edits lines and keeps a history across sessions; Ctrl-C
// stops the command at work, and at the prompt quits. Elsewhere (a pipe,
// a script) it reads one command a line, without a prompt. Every command
// saves the session as it ends.
func (ss *scanRun) prompt() error {
	// Signals: SIGINT ends the command at work, not the session; SIGTERM
	// and SIGHUP end both, and the session is saved.
	ss.signals()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	var mu sync.Mutex
	cancel := context.CancelFunc(func() {})
	quit := make(chan struct{})
	go func() {
		for s := range sigs {
			mu.Lock()
			cancel()
			mu.Unlock()
			if s != os.Interrupt {
				close(quit)
				return
			}
		}
	}()

	lines := ss.lineReader()
	defer lines.close()
	fmt.Fprintf(ss.stderr, "procmem: scanning process %d for %s; type help for the commands\n", ss.pid(), ss.sess.Spec())
	for {
		select {
		case <-quit:
			return ss.closeSession()
		default:
		}
		line, err := lines.read(ss.promptText())
		if err != nil {
			if !errors.Is(err, io.EOF) {
				stderrf(ss.env, "%v", err)
			}
			return ss.closeSession()
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		cmd, err := scan.ParseCommand(line)
		if err == nil {
			err = ss.sess.Validate(cmd)
		}
		if err != nil {
			stderrf(ss.env, "%s", syntaxMsg(err))
			continue
		}
		if cmd.Name == "quit" {
			return ss.closeSession()
		}
		mu.Lock()
		ctx, c := context.WithCancel(context.Background())
		cancel = c
		mu.Unlock()
		err = ss.do(ctx, cmd)
		interrupted := ctx.Err() != nil
		c()
		switch {
		case interrupted:
			stderrf(ss.env, "stopped; the matches are as before")
		case memory.Classify(err) == memory.Gone:
			stderrf(ss.env, "%s", message(err))
			return ss.closeSession()
		case err != nil:
			var ue usageError
			if errors.As(err, &ue) {
				err = errors.New(ue.msg)
			}
			stderrf(ss.env, "%s", message(err))
		}
	}
}

// freeze starts writing a value to every match, until unfreeze: at the
// prompt only, where something runs to stop it.
func (r *scanRun) freeze(cmd scan.Command) error {
	_, value, err := r.sess.Spec().SetArgs(cmd)
	if err != nil {
		return usagef("scan: %s", syntaxMsg(err))
	}
	writes, _, err := r.sess.Writes(value, maxWrites)
	if err != nil {
		return err
	}
	if err := r.mayWrite(writes, false); err != nil {
		return err
	}
	r.unfreeze()
	mem, err := r.memory(true)
	if err != nil {
		return err
	}
	f := &freezer{env: r.env, mem: mem, interval: r.interval}
	for _, w := range writes {
		f.holds = append(f.holds, hold{addr: w.Addr, value: w.Bytes, text: fmt.Sprintf("%016x", w.Addr)})
	}
	if err := f.writeAll(true); err != nil {
		mem.Close()
		return err
	}
	r.freezer = f.start()
	fmt.Fprintf(r.stdout, "holding %s at %s every %v: unfreeze stops\n", value, matches(uint64(len(writes))), r.interval)
	return nil
}

func (r *scanRun) unfreeze() {
	if r.freezer != nil {
		r.freezer.stop()
		r.freezer = nil
		fmt.Fprintln(r.stdout, "released")
	}
}

// closeSession ends what the prompt runs.
func (r *scanRun) closeSession() error {
	if r.freezer != nil {
		r.freezer.stop()
		r.freezer = nil
	}
	return nil
}

// promptText shows the process, the type and the match count.
func (ss *scanRun) promptText() string {
	what := "no scan yet"
	if cur := ss.sess.Current(); cur != nil {
		what = matches(cur.Matches)
	}
	return fmt.Sprintf("[%d %s: %s]> ", ss.pid(), ss.sess.Spec(), what)
}

// lineReader reads the prompt's commands.
type lineReader interface {
	read(prompt string) (string, error)
	close()
}

func (ss *scanRun) lineReader() lineReader {
	in, ok := ss.stdin.(*os.File)
	out, okOut := ss.stdout.(*os.File)
	if !ok || !okOut || !term.IsTerminal(int(in.Fd())) || !term.IsTerminal(int(out.Fd())) {
		return &plainLines{sc: bufio.NewScanner(ss.stdin)}
	}
	t := &termLines{fd: int(in.Fd()), t: term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{in, out}, "")}
	t.loadHistory()
	return t
}

// plainLines reads lines from a pipe or file: no prompt, no echo.
type plainLines struct{ sc *bufio.Scanner }

func (p *plainLines) read(string) (string, error) {
	if p.sc.Scan() {
		return p.sc.Text(), nil
	}
	if err := p.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

func (p *plainLines) close() {}

// termLines edits lines on a terminal, which is raw only while a line is
// read: during a command Ctrl-C is a signal.
type termLines struct {
	fd      int
	t       *term.Terminal
	history *os.File // appended to; nil if there is none
}

// historyMax is how many lines of history are kept.
const historyMax = 1000

// loadHistory fills the terminal's history from the file in procmem's
// cache directory, and opens it to add to; without a safe cache directory
// there is no history.
func (l *termLines) loadHistory() {
	dir, err := userfiles.MakeCacheDir()
	if err != nil {
		return
	}
	path := filepath.Join(dir, "scan_history")
	if f, err := userfiles.Open(path); err == nil {
		b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
		f.Close()
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > historyMax {
			lines = lines[len(lines)-historyMax:]
			if out, err := userfiles.Create(path, 0o600); err == nil {
				out.WriteString(strings.Join(lines, "\n") + "\n")
				out.Commit()
			}
		}
		for _, line := range lines {
			if line != "" {
				l.t.History.Add(line)
			}
		}
	}
	l.history, _ = userfiles.OpenAppend(path)
}

func (l *termLines) read(prompt string) (string, error) {
	old, err := term.MakeRaw(l.fd)
	if err != nil {
		return "", err
	}
	l.t.SetPrompt(prompt)
	line, err := l.t.ReadLine()
	term.Restore(l.fd, old)
	if err == nil && l.history != nil && strings.TrimSpace(line) != "" {
		fmt.Fprintln(l.history, line)
	}
	return line, err
}

func (l *termLines) close() {
	if l.history != nil {
		l.history.Close()
	}
}

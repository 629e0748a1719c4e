//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestMountHexedit edits memory in place with hexedit, driven under tmux as
// a person would: type two bytes over the first two, save with Ctrl-X.
func TestMountHexedit(t *testing.T) {
	requireTool(t, "hexedit", "tmux")
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	page := tg.addr["page"]
	mid := tg.region(tg.addr["fence"] + page)
	file := m.path(itoa(tg.pid), mid.Name())

	socket := fmt.Sprintf("procmem-test-%d", tg.pid)
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", socket}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { tmux("kill-server") })
	if out, err := tmux("new-session", "-d", "-s", "edit", "-x", "120", "-y", "30", "env", "TERM=xterm", "hexedit", file); err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	// hexedit draws the rows first, then the status line with the name.
	waitFor(t, "hexedit showing the region and naming it in its status line", func() (string, bool) {
		out, err := tmux("capture-pane", "-p", "-t", "edit")
		return out, err == nil && strings.Contains(out, "00000000   11 11 11 11") && strings.Contains(out, mid.Name())
	})
	tmux("send-keys", "-t", "edit", "4", "1", "4", "2")
	waitFor(t, "hexedit showing the edit", func() (string, bool) {
		out, _ := tmux("capture-pane", "-p", "-t", "edit")
		return out, strings.Contains(out, "00000000   41 42 11 11")
	})
	tmux("send-keys", "-t", "edit", "C-x")
	waitFor(t, "hexedit to save and exit", func() (string, bool) {
		out, err := tmux("has-session", "-t", "edit")
		if err == nil {
			// Some versions ask before saving.
			if screen, _ := tmux("capture-pane", "-p", "-t", "edit"); strings.Contains(screen, "Save changes") {
				tmux("send-keys", "-t", "edit", "y")
			}
		}
		return out, err != nil
	})
	if got := tg.peek(mid.Start, 4); !bytes.Equal(got, []byte{0x41, 0x42, 0x11, 0x11}) {
		t.Errorf("target sees % x after hexedit saved, want 41 42 11 11", got)
	}
	if got := tg.peek(mid.Start+4, int(page)-4); !bytes.Equal(got, bytes.Repeat([]byte{0x11}, int(page)-4)) {
		t.Errorf("hexedit changed more than the two bytes")
	}
}

// TestMountBvi edits memory in place with bvi under tmux: replace the
// first two bytes, then :wq. bvi writes its whole buffer back, so (unlike
// hexedit) it reverts what the process changed while it was open; the
// README says so.
func TestMountBvi(t *testing.T) {
	requireTool(t, "bvi", "tmux")
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	page := tg.addr["page"]
	mid := tg.region(tg.addr["fence"] + page)
	file := m.path(itoa(tg.pid), mid.Name())

	socket := fmt.Sprintf("procmem-bvi-%d", tg.pid)
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", socket}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { tmux("kill-server") })
	if out, err := tmux("new-session", "-d", "-s", "edit", "-x", "120", "-y", "30", "env", "TERM=xterm", "bvi", file); err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	waitFor(t, "bvi showing the region", func() (string, bool) {
		out, err := tmux("capture-pane", "-p", "-t", "edit")
		if strings.Contains(out, "Hit return") { // a message of bvi's before the buffer
			tmux("send-keys", "-t", "edit", "Enter")
		}
		return out, err == nil && strings.Contains(out, "00000000  11 11 11 11")
	})
	tmux("send-keys", "-t", "edit", "R", "4142", "Escape")
	waitFor(t, "bvi showing the edit", func() (string, bool) {
		out, _ := tmux("capture-pane", "-p", "-t", "edit")
		return out, strings.Contains(out, "00000000  41 42 11 11")
	})
	tmux("send-keys", "-t", "edit", ":wq", "Enter")
	waitFor(t, "bvi to save and exit", func() (string, bool) {
		if _, err := tmux("has-session", "-t", "edit"); err != nil {
			return "", true
		}
		screen, _ := tmux("capture-pane", "-p", "-t", "edit")
		if strings.Contains(screen, "Hit return") {
			tmux("send-keys", "-t", "edit", "Enter")
		}
		return screen, false
	})
	if got := tg.peek(mid.Start, 4); !bytes.Equal(got, []byte{0x41, 0x42, 0x11, 0x11}) {
		t.Errorf("target sees % x after bvi saved, want 41 42 11 11", got)
	}
}

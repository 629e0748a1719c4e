//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestMmaptracker runs mmaptracker.gdb with gdb -batch on a program that
// maps memory from make_region(), and checks the log holds the backtrace
// through make_region and the address mmap returned, a region of the
// program's maps.
func TestMmaptracker(t *testing.T) {
	requireTool(t, "gdb", "cc")
	dir := t.TempDir()
	bin := filepath.Join(dir, "mmapper")
	if out, err := exec.Command("cc", "-g", "-O0", "-o", bin, "testdata/mmapper.c").CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	script, err := filepath.Abs("../mmaptracker.gdb")
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"gdb variable", "environment"} {
		t.Run(how, func(t *testing.T) {
			logPath := filepath.Join(dir, strings.ReplaceAll(how, " ", "-")+".log")
			mapsPath := filepath.Join(dir, "maps")
			args := []string{"-batch", "-nx", "-x", script, "--args", bin, mapsPath}
			env := os.Environ()
			if how == "gdb variable" {
				args = append([]string{"-batch", "-nx", "-ex", fmt.Sprintf("set $mmaptracker_log = %q", logPath)}, args[2:]...)
			} else {
				env = append(env, "MMAPTRACKER_LOG="+logPath)
			}
			cmd := exec.Command("gdb", args...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("gdb: %v\n%s", err, out)
			}
			mapped := regexp.MustCompile(`mapped (0x[0-9a-f]+)`).FindStringSubmatch(string(out))
			if mapped == nil {
				t.Fatalf("the program did not run to the end under gdb:\n%s", out)
			}
			log, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			// The entry of make_region's call: its arguments, a backtrace
			// through make_region, and the returned address.
			entry := regexp.MustCompile(`(?s)mmap\(addr=0x0, length=20480, [^\n]*\n(#[^\n]*\n)*?#\d+ [^\n]* in make_region [^\n]*\n(#[^\n]*\n)*=> (0x[0-9a-f]+)\n`).FindSubmatch(log)
			if entry == nil {
				t.Fatalf("no logged mmap through make_region in:\n%s", log)
			}
			if string(entry[3]) != mapped[1] {
				t.Errorf("log says mmap returned %s, the program got %s", entry[3], mapped[1])
			}
			addr, _ := strconv.ParseUint(strings.TrimPrefix(string(entry[3]), "0x"), 16, 64)
			maps, err := os.ReadFile(mapsPath)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, line := range strings.Split(string(maps), "\n") {
				var start, end uint64
				if _, err := fmt.Sscanf(line, "%x-%x", &start, &end); err == nil && start <= addr && addr < end {
					found = true
				}
			}
			if !found {
				t.Errorf("returned address %#x is not in the program's maps", addr)
			}
			if n := strings.Count(string(log), "\nmmap(") + 1; n < 5 {
				t.Errorf("only %d mmap calls logged; the loader alone makes more", n)
			}
		})
	}
}

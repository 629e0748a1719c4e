package procfs

import (
	"errors"
	"os"
	"testing"
)

func TestParseSyscall(t *testing.T) {
	for _, c := range []struct {
		text string
		want ThreadState
	}{
		{"running\n", ThreadState{Running: true}},
		{"-1 0x7ffc10 0x7f3761665503\n", ThreadState{Nr: -1, SP: 0x7ffc10, PC: 0x7f3761665503}},
		{"230 0x0 0x0 0x7fff44020e70 0x7fff44020eb0 0x0 0x0 0x7fff44020e58 0x7f3761665503\n",
			ThreadState{InCall: true, Nr: 230, Args: [6]uint64{0, 0, 0x7fff44020e70, 0x7fff44020eb0, 0, 0}, SP: 0x7fff44020e58, PC: 0x7f3761665503}},
	} {
		got, err := parseSyscall(c.text)
		if err != nil || got != c.want {
			t.Errorf("parseSyscall(%q) = %+v, %v; want %+v", c.text, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "runnin", "1 0x0 0x0", "-1 0x1", "x 0x1 0x2", "-1 1 2", "230 0x0 0x0 0x0 0x0 0x0 0x0 0x1"} {
		if _, err := parseSyscall(bad); !errors.Is(err, ErrParse) {
			t.Errorf("parseSyscall(%q): %v, want ErrParse", bad, err)
		}
	}
}

func TestOwnThreads(t *testing.T) {
	p, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tids, err := p.Threads()
	if err != nil || len(tids) < 1 || tids[0] != os.Getpid() {
		t.Fatalf("Threads: %v, %v", tids, err)
	}
	if st, err := p.TaskStat(tids[len(tids)-1]); err != nil || st.PID != tids[len(tids)-1] || st.StartTime < p.StartTime {
		t.Errorf("TaskStat(%d): %+v, %v", tids[len(tids)-1], st, err)
	}
	if f, err := p.DumpFilter(); err != nil || f&DumpAnonPrivate == 0 {
		t.Errorf("DumpFilter: %#x, %v", f, err)
	}
	a, err := p.Auxv()
	if err != nil {
		t.Fatal(err)
	}
	if pg, ok := a.Value(6); !ok || pg != uint64(os.Getpagesize()) { // AT_PAGESZ
		t.Errorf("auxv AT_PAGESZ: %d, %v", pg, ok)
	}
}

func FuzzParseSyscall(f *testing.F) {
	fuzzSeeds(f, "syscall")
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseSyscall(string(b))
		if err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
		if err == nil && st.Running && (st.InCall || st.SP != 0) {
			t.Fatalf("a running thread with registers: %+v", st)
		}
	})
}

func FuzzParseDumpFilter(f *testing.F) {
	fuzzSeeds(f, "coredump_filter")
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseDumpFilter(string(b)); err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
	})
}

func FuzzParseAuxv(f *testing.F) {
	fuzzSeeds(f, "auxv")
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseAuxv(b)
		if err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
		if err == nil && (len(a)%16 != 0 || len(a) > len(b)) {
			t.Fatalf("auxv of %d bytes from %d", len(a), len(b))
		}
		a.Value(3)
	})
}

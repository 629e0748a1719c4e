package scan

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Op is what a scan keeps.
type Op uint8

const (
	OpEq        Op = iota + 1 // = V
	OpNe                      // != V
	OpGt                      // > V
	OpLt                      // < V
	OpRange                   // V..W, both included
	OpChanged                 // the value differs from the last scan's
	OpUnchanged               // it does not
	OpIncreased               // it is greater than at the last scan
	OpDecreased               // it is less
	OpUp                      // + N: it grew by exactly N
	OpDown                    // - N: it shrank by exactly N
	OpSnapshot                // every value: a first scan for a value not known
	OpUpdate                  // every match, with the value it holds now
)

// Cond is the test a scan applies to each value.
type Cond struct {
	Op   Op
	A, B Value
}

// NeedsPrevious reports whether the test compares with the values of a
// previous scan, so it cannot be a first scan.
func (c Cond) NeedsPrevious() bool { return c.Op >= OpChanged && c.Op <= OpDown || c.Op == OpUpdate }

// String is the command that gives the test.
func (c Cond) String() string {
	switch c.Op {
	case OpEq:
		return "= " + c.A.Text
	case OpNe:
		return "!= " + c.A.Text
	case OpGt:
		return "> " + c.A.Text
	case OpLt:
		return "< " + c.A.Text
	case OpRange:
		return c.A.Text + ".." + c.B.Text
	case OpUp:
		return "+ " + c.A.Text
	case OpDown:
		return "- " + c.A.Text
	}
	for w, op := range wordOps {
		if op == c.Op {
			return w
		}
	}
	return "?"
}

var wordOps = map[string]Op{
	"changed": OpChanged, "unchanged": OpUnchanged, "increased": OpIncreased, "decreased": OpDecreased,
	"snapshot": OpSnapshot, "update": OpUpdate,
}

// test reports whether the value cur (whose last value was old, when the
// test needs it) passes.
func (c Cond) test(t Type, cur, old []byte) bool {
	switch c.Op {
	case OpSnapshot, OpUpdate:
		return true
	case OpChanged:
		return !bytes.Equal(cur[:t.Size], old[:t.Size])
	case OpUnchanged:
		return bytes.Equal(cur[:t.Size], old[:t.Size])
	}
	v := t.load(cur)
	switch c.Op {
	case OpEq:
		return t.equals(v, c.A)
	case OpNe:
		return !t.equals(v, c.A)
	case OpGt:
		return t.compare(v, c.A.n) > 0
	case OpLt:
		return t.compare(v, c.A.n) < 0
	case OpRange:
		return t.compare(v, c.A.n) >= 0 && t.compare(v, c.B.n) <= 0
	case OpIncreased:
		return t.compare(v, t.load(old)) > 0
	case OpDecreased:
		return t.compare(v, t.load(old)) < 0
	case OpUp:
		return t.changedBy(v, t.load(old), c.A, 1)
	case OpDown:
		return t.changedBy(v, t.load(old), c.A, -1)
	}
	return false
}

// Command is one line typed at the scan prompt, or given to scan as its
// arguments.
type Command struct {
	Name  string // scan, list, count, set, freeze, unfreeze, undo, reset, help, quit
	Cond  Cond   // scan
	N     int    // list: how many matches (0: the default)
	Addr  string // set ADDR V: the address as typed (an address expression)
	Value Value  // set, freeze
}

// ParseCommand parses one command for values of type t.
func ParseCommand(line string, t Type) (Command, error) {
	f := strings.Fields(splitOperator(strings.TrimSpace(line)))
	bad := func(format string, a ...any) (Command, error) {
		return Command{}, fmt.Errorf("%w: %s", ErrSyntax, fmt.Sprintf(format, a...))
	}
	if len(f) == 0 {
		return bad("empty command: type help")
	}
	args := f[1:]
	value := func(s string) (Value, error) { return t.ParseValue(s) }
	want := func(n int, usage string) error {
		if len(args) != n {
			return fmt.Errorf("%w: %s takes %s", ErrSyntax, f[0], usage)
		}
		return nil
	}
	cmd := Command{Name: "scan"}
	var err error
	switch op := ops[f[0]]; {
	case op != 0:
		if err = want(1, "one value"); err == nil {
			cmd.Cond.Op = op
			cmd.Cond.A, err = value(args[0])
		}
	case wordOps[f[0]] != 0:
		cmd.Cond.Op = wordOps[f[0]]
		err = want(0, "no argument")
	case f[0] == "list":
		cmd.Name = "list"
		if len(args) > 1 {
			return bad("list takes at most one number")
		}
		if len(args) == 1 {
			if cmd.N, err = strconv.Atoi(args[0]); err != nil || cmd.N <= 0 {
				return bad("list %q: want a count above 0", args[0])
			}
		}
	case f[0] == "set":
		cmd.Name = "set"
		switch len(args) {
		case 1:
			cmd.Value, err = value(args[0])
		case 2:
			cmd.Addr = args[0]
			cmd.Value, err = value(args[1])
		default:
			return bad("set takes a value, or an address and a value")
		}
	case f[0] == "freeze":
		cmd.Name = "freeze"
		if err = want(1, "the value to hold"); err == nil {
			cmd.Value, err = value(args[0])
		}
	case f[0] == "count", f[0] == "undo", f[0] == "reset", f[0] == "help", f[0] == "unfreeze":
		cmd.Name = f[0]
		err = want(0, "no argument")
	case f[0] == "quit", f[0] == "exit", f[0] == "q":
		cmd.Name = "quit"
		err = want(0, "no argument")
	default:
		if len(args) > 0 {
			return bad("unknown command %q: type help", f[0])
		}
		cmd.Cond, err = parseBare(f[0], t)
	}
	if err != nil {
		return Command{}, err
	}
	return cmd, nil
}

var ops = map[string]Op{"=": OpEq, "==": OpEq, "!=": OpNe, ">": OpGt, "<": OpLt, "+": OpUp, "-": OpDown}

// splitOperator puts a space after an operator written against its value
// ("=5", ">5", "+5"). A minus sign against a number is the number's own:
// "-5" is the value -5, "- 5" a decrease by 5.
func splitOperator(s string) string {
	for _, op := range []string{"!=", "==", "=", ">", "<", "+"} {
		if rest, ok := strings.CutPrefix(s, op); ok && rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			return op + " " + rest
		}
	}
	return s
}

// parseBare parses a value alone (= V) or a range V..W.
func parseBare(s string, t Type) (Cond, error) {
	lo, hi, isRange := strings.Cut(s, "..")
	if !isRange {
		v, err := t.ParseValue(s)
		if err != nil {
			return Cond{}, fmt.Errorf("%w (or unknown command: type help)", err)
		}
		return Cond{Op: OpEq, A: v}, nil
	}
	a, err := t.ParseValue(lo)
	if err != nil {
		return Cond{}, err
	}
	b, err := t.ParseValue(hi)
	if err != nil {
		return Cond{}, err
	}
	if t.compare(a.n, b.n) > 0 {
		return Cond{}, fmt.Errorf("%w: range %s: %s is above %s", ErrSyntax, s, lo, hi)
	}
	return Cond{Op: OpRange, A: a, B: b}, nil
}

// Help describes the commands, for the prompt's help and the verb's.
const Help = `Commands (a first value command scans every selected page that holds data;
each one after it narrows the matches, reading only them):
  V, = V        the value is V (floats: as precise as typed, = 3.14 matches 3.1400001)
  != V, > V, < V
  V..W          between V and W, both included
  snapshot      remember every value: a first scan for a value you do not know
  changed, unchanged, increased, decreased
                compared with the value at the last scan
  + N, - N      changed by exactly N since the last scan (-N alone is the value -N)
  update        keep every match, remember the values it holds now
  list [N]      the first N matches (20): address, region+offset, value now, value at the last scan
  count         how many matches
  set V         write V to every match; set ADDR V writes one address
  freeze V      keep writing V to every match until unfreeze (at the prompt only)
  unfreeze      stop writing
  undo          back to the matches before the last command that changed them (again: redo)
  reset         forget the matches; the next value command scans anew
  help, quit`

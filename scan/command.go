package scan

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Op is what a scan keeps.
type Op uint8

const (
	OpAny       Op = iota // a group's value that may be anything (*)
	OpEq                  // = V
	OpNe                  // != V
	OpGt                  // > V
	OpLt                  // < V
	OpRange               // V..W, both included
	OpChanged             // the value differs from the last scan's
	OpUnchanged           // it does not
	OpIncreased           // it is greater than at the last scan
	OpDecreased           // it is less
	OpUp                  // + N: it grew by exactly N
	OpDown                // - N: it shrank by exactly N
	OpSnapshot            // every value: a first scan for a value not known
	OpUpdate              // every match, with the value it holds now
)

// Cond is the test of a scan command as typed. Its values are checked
// against what the session scans for when the command runs (Spec.compile):
// the command is parsed before the session is read, so that a malformed
// one touches nothing.
type Cond struct {
	Op     Op
	A, B   string // the values as typed; for text, A is the rest of the line
	Since  string // compare with the snapshot of that name, not the last scan
	Parts  []Part // group: one test per value, the first at the match's address
	Window int    // group: the bytes all values lie within (0: as before, or the default)
	bare   bool   // a value typed alone, without =
}

// Part is one value of a group scan.
type Part struct {
	Op    Op     // OpEq, a comparison with the last scan, or OpAny
	Value string // OpEq: the value as typed
	Type  string // the value's type, if given (V:TYPE)
}

// NeedsPrevious reports whether the test compares with the values of a
// previous scan (or a snapshot), so it cannot be a first scan.
func (c Cond) NeedsPrevious() bool {
	return c.Op >= OpChanged && c.Op <= OpDown || c.Op == OpUpdate
}

// String is the command that gives the test.
func (c Cond) String() string {
	var s string
	switch c.Op {
	case OpEq:
		s = "= " + c.A
	case OpNe:
		s = "!= " + c.A
	case OpGt:
		s = "> " + c.A
	case OpLt:
		s = "< " + c.A
	case OpRange:
		s = c.A + ".." + c.B
	case OpUp:
		s = "+ " + c.A
	case OpDown:
		s = "- " + c.A
	default:
		s = opWord(c.Op)
	}
	if c.Parts != nil {
		words := []string{"group"}
		for _, p := range c.Parts {
			w := opWord(p.Op)
			if p.Op == OpEq {
				w = p.Value
				if p.Type != "" {
					w += ":" + p.Type
				}
			}
			words = append(words, w)
		}
		if c.Window > 0 {
			words = append(words, "within", strconv.Itoa(c.Window))
		}
		s = strings.Join(words, " ")
	}
	if c.Since != "" {
		s += " since " + c.Since
	}
	return s
}

func opWord(op Op) string {
	if op == OpAny {
		return "*"
	}
	for w, o := range wordOps {
		if o == op {
			return w
		}
	}
	return "?"
}

var wordOps = map[string]Op{
	"changed": OpChanged, "unchanged": OpUnchanged, "increased": OpIncreased, "decreased": OpDecreased,
	"snapshot": OpSnapshot, "update": OpUpdate,
}

var ops = map[string]Op{"=": OpEq, "==": OpEq, "!=": OpNe, ">": OpGt, "<": OpLt, "+": OpUp, "-": OpDown}

// Command is one line typed at the scan prompt, or given to scan as its
// arguments.
type Command struct {
	// Name is scan, snapshot (snapshot NAME), list, count, set, freeze,
	// unfreeze, undo, redo, reset, history, snapshots, forget, help or quit.
	Name     string
	Cond     Cond     // scan
	N        int      // list: how many matches (0: the default)
	Force    bool     // set --force: regions without write permission too
	Value    string   // set, freeze: the rest of the line, as typed
	Words    []string // set: the words of the value (set ADDR V is two)
	Snapshot string   // snapshot NAME, forget NAME
}

// snapshotName is what a snapshot may be called: a word that is no
// number, so it reads as a name after since.
var snapshotName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)

// ParseCommand parses one command. Values stay as typed: what they must
// be depends on what the session scans for (Spec.Compile checks them).
func ParseCommand(line string) (Command, error) {
	bad := func(format string, a ...any) (Command, error) {
		return Command{}, fmt.Errorf("%w: %s", ErrSyntax, fmt.Sprintf(format, a...))
	}
	line = splitOperator(strings.TrimSpace(line))
	toks, err := lex(line)
	if err != nil {
		return Command{}, err
	}
	if len(toks) == 0 {
		return bad("empty command: type help")
	}
	word, args := toks[0].text, toks[1:]
	if toks[0].quoted {
		word = ""
	}
	noArgs := func(cmd Command) (Command, error) {
		if len(args) > 0 {
			return bad("%s takes no argument", word)
		}
		return cmd, nil
	}
	switch op := ops[word]; {
	case op != 0:
		cond := Cond{Op: op}
		if op == OpUp || op == OpDown {
			if cond.Since, args, err = since(args); err != nil {
				return Command{}, err
			}
			if len(args) != 1 {
				return bad("%s takes one value", word)
			}
		}
		if len(args) == 0 {
			return bad("%s takes one value", word)
		}
		if cond.A = rest(line, args); cond.Since != "" {
			cond.A = args[0].text
		}
		return Command{Name: "scan", Cond: cond}, nil
	case word == "snapshot" && len(args) > 0:
		if len(args) != 1 || !snapshotName.MatchString(args[0].text) {
			return bad("snapshot NAME: want a name of letters, digits, _ . and -, starting with a letter")
		}
		return Command{Name: "snapshot", Snapshot: args[0].text}, nil
	case wordOps[word] != 0:
		cond := Cond{Op: wordOps[word]}
		if cond.NeedsPrevious() && cond.Op != OpUpdate {
			if cond.Since, args, err = since(args); err != nil {
				return Command{}, err
			}
		}
		return noArgs(Command{Name: "scan", Cond: cond})
	case word == "group":
		cond, err := parseGroup(args)
		return Command{Name: "scan", Cond: cond}, err
	case word == "list":
		cmd := Command{Name: "list"}
		if len(args) > 1 {
			return bad("list takes at most one number")
		}
		if len(args) == 1 {
			if cmd.N, err = strconv.Atoi(args[0].text); err != nil || cmd.N <= 0 {
				return bad("list %q: want a count above 0", args[0].text)
			}
		}
		return cmd, nil
	case word == "set":
		cmd := Command{Name: "set"}
		if len(args) > 0 && args[0].text == "--force" && !args[0].quoted {
			cmd.Force, args = true, args[1:]
		}
		if len(args) == 0 {
			return bad("set takes a value, or an address and a value")
		}
		cmd.Value = rest(line, args)
		for _, a := range args {
			cmd.Words = append(cmd.Words, a.text)
		}
		return cmd, nil
	case word == "freeze":
		if len(args) == 0 {
			return bad("freeze takes the value to hold")
		}
		cmd := Command{Name: "freeze", Value: rest(line, args)}
		for _, a := range args {
			cmd.Words = append(cmd.Words, a.text)
		}
		return cmd, nil
	case word == "forget":
		if len(args) != 1 || !snapshotName.MatchString(args[0].text) {
			return bad("forget takes the name of a snapshot")
		}
		return Command{Name: "forget", Snapshot: args[0].text}, nil
	case word == "count", word == "undo", word == "redo", word == "reset", word == "help", word == "unfreeze",
		word == "history", word == "snapshots":
		return noArgs(Command{Name: word})
	case word == "quit", word == "exit", word == "q":
		return noArgs(Command{Name: "quit"})
	}
	// A value alone: = V, or a range V..W.
	if len(toks) == 1 && !toks[0].quoted {
		if lo, hi, ok := strings.Cut(word, ".."); ok {
			if lo == "" || hi == "" {
				return bad("range %q: want V..W", word)
			}
			return Command{Name: "scan", Cond: Cond{Op: OpRange, A: lo, B: hi}}, nil
		}
	}
	return Command{Name: "scan", Cond: Cond{Op: OpEq, A: rest(line, toks), bare: true}}, nil
}

// since takes a trailing "since NAME" off args.
func since(args []token) (string, []token, error) {
	n := len(args)
	if n >= 1 && args[n-1].text == "since" && !args[n-1].quoted {
		return "", nil, fmt.Errorf("%w: since takes the name of a snapshot", ErrSyntax)
	}
	if n < 2 || args[n-2].text != "since" || args[n-2].quoted {
		return "", args, nil
	}
	if !snapshotName.MatchString(args[n-1].text) {
		return "", nil, fmt.Errorf("%w: since %q: want the name of a snapshot", ErrSyntax, args[n-1].text)
	}
	return args[n-1].text, args[:n-2], nil
}

// parseGroup parses the words after group: values (V or V:TYPE), * for a
// value that may be anything, or a comparison with the last scan, then
// "within N" if given.
func parseGroup(args []token) (Cond, error) {
	bad := func(format string, a ...any) (Cond, error) {
		return Cond{}, fmt.Errorf("%w: group: %s", ErrSyntax, fmt.Sprintf(format, a...))
	}
	c := Cond{Op: OpEq}
	if n := len(args); n >= 2 && args[n-2].text == "within" {
		w, err := strconv.ParseUint(args[n-1].text, 0, 32)
		if err != nil || w == 0 || w > MaxWindow {
			return bad("within %q: want a number of bytes from 1 to %d", args[n-1].text, MaxWindow)
		}
		c.Window, args = int(w), args[:n-2]
	}
	if len(args) < 2 || len(args) > maxParts {
		return bad("want 2 to %d values, such as group 100 50:int16 within 64", maxParts)
	}
	for _, a := range args {
		p := Part{Op: OpEq}
		switch op := wordOps[a.text]; {
		case a.text == "*":
			p.Op = OpAny
		case op != 0 && op != OpSnapshot && op != OpUpdate:
			p.Op = op
		default:
			p.Value, p.Type, _ = strings.Cut(a.text, ":")
			if p.Value == "" {
				return bad("%q: want a value, V:TYPE, * or changed, unchanged, increased, decreased", a.text)
			}
		}
		c.Parts = append(c.Parts, p)
	}
	return c, nil
}

// token is one word of a command: quoted ("a b") or not.
type token struct {
	text   string
	quoted bool
	at     int // where it starts in the line
}

// lex splits a line into words; a word in double quotes may hold spaces
// and Go's escapes (\n, \x00, \u00e9, \").
func lex(line string) ([]token, error) {
	var toks []token
	for i := 0; i < len(line); {
		if line[i] == ' ' || line[i] == '\t' {
			i++
			continue
		}
		start := i
		if line[i] != '"' {
			for i < len(line) && line[i] != ' ' && line[i] != '\t' {
				i++
			}
			toks = append(toks, token{text: line[start:i], at: start})
			continue
		}
		for i++; i < len(line) && line[i] != '"'; i++ {
			if line[i] == '\\' {
				i++
			}
		}
		if i >= len(line) {
			return nil, fmt.Errorf("%w: a quote that does not end: %s", ErrSyntax, line[start:])
		}
		i++
		s, err := strconv.Unquote(line[start:i])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: a quoted string as in Go (\\n, \\x00, \\\")", ErrSyntax, line[start:i])
		}
		toks = append(toks, token{text: s, quoted: true, at: start})
	}
	return toks, nil
}

// rest is the line from the first of toks on, as typed; one quoted word
// is its text.
func rest(line string, toks []token) string {
	if len(toks) == 1 && toks[0].quoted {
		return toks[0].text
	}
	return strings.TrimSpace(line[toks[0].at:])
}

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

// Help describes the commands, for the prompt's help and the verb's.
const Help = `Commands (a first value command scans every selected page that holds data;
each one after it narrows the matches, reading only them):
  V, = V        the value is V (floats: as precise as typed, = 3.14 matches 3.1400001;
                strings: the rest of the line, or "quoted" with Go escapes;
                bytes: hex pairs, ?? any byte, 9? or ?9 one nibble: 48 8b ?? 9?)
  != V, > V, < V
  V..W          between V and W, both included
  snapshot      remember every value: a first scan for a value you do not know
  changed, unchanged, increased, decreased [since NAME]
                compared with the value at the last scan, or in snapshot NAME
  + N, - N [since NAME]
                changed by exactly N (-N alone is the value -N)
  update        keep every match, remember the values it holds now
  group V1 V2[:TYPE] ... [within N]
                values close together: V1 at the match's address, each next one after the
                one before, all in N bytes (64); later: group V1 V2 ... with * for any value
                and changed, unchanged, increased or decreased for each; other commands test V1
  list [N]      the first N matches (20): address, region+offset, value now, value at the last scan
  count         how many matches
  set V         write V to every match (anyint: at the widest width that holds it);
                set ADDR V writes one address; set --force also into regions without w
  freeze V      keep writing V to every match until unfreeze (at the prompt only)
  unfreeze      stop writing
  undo, redo    back to the matches before the last command that changed them, and forth
  history       the steps undo and redo go through, with their sizes
  snapshot NAME keep memory as it is now under NAME, for since NAME (the matches stay)
  snapshots     the snapshots kept; forget NAME removes one
  reset         forget the matches; the next value command scans anew (undo brings them back)
  help, quit`

// SetArgs splits the words of set into an address ("" for every match)
// and the value: text is the whole rest of the line.
func (s Spec) SetArgs(cmd Command) (addr, value string, err error) {
	switch {
	case s.Text():
		return "", cmd.Value, nil
	case len(cmd.Words) == 1:
		return "", cmd.Words[0], nil
	case cmd.Name == "freeze":
		return "", "", fmt.Errorf("%w: freeze takes the value to hold", ErrSyntax)
	case len(cmd.Words) == 2:
		return cmd.Words[0], cmd.Words[1], nil
	}
	return "", "", fmt.Errorf("%w: set takes a value, or an address and a value", ErrSyntax)
}

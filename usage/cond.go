package usage

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// Conditions, as core --when takes them:
//
//	cond   := and { ("or" | "||") and }
//	and    := unary { ("and" | "&&") unary }
//	unary  := "(" cond ")" | atom
//	atom   := metric CMP SIZE                 rss > 2G, heap.pss >= 500M
//	        | metric "grows" SIZE "in" DURATION    heap grows 100M in 60s
//	        | "cpu" CMP PERCENT ["over" DURATION]  cpu > 90% over 10s
//	        | "cgroup" CMP (PERCENT | SIZE)        cgroup > 90%, cgroup > 1.5G
//	        | "signal" ("USR1" | "USR2")           signal USR2
//	metric := rss | pss | swap | size | dirty | KIND["."FIELD]
//	CMP    := > | >= | < | <=
//
// A KIND alone is its rss; rss, pss, swap, size and dirty alone are the
// process's totals. Sizes take B, K, M, G, T (powers of 1024; KiB, KB and
// lower case are the same), durations ms, s, m, h.

// Condition is a parsed condition.
type Condition interface {
	// String is the condition in the syntax Parse takes, canonical.
	String() string
	// eval reports whether the condition holds on the history, and if so
	// the atoms that made it hold, and what they saw.
	eval(h *history) (bool, []held)
	// atoms calls f on every atom.
	atoms(f func(atom))
}

// atom is a condition without and, or and parentheses.
type atom interface {
	Condition
	// slug is the atom in a few characters for a file name.
	slug() string
}

// DefaultCPUWindow is what "cpu > N%" is measured over when no "over" is
// given.
const DefaultCPUWindow = 10 * time.Second

// ParseCondition parses a condition; the error says where it went wrong.
func ParseCondition(s string) (Condition, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &condParser{toks: toks, src: s}
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEnd {
		return nil, p.fail(t, "unexpected %q", t.text)
	}
	return c, nil
}

type tokKind int

const (
	tokEnd tokKind = iota
	tokWord
	tokNumber
	tokOp
	tokOpen
	tokClose
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
			continue
		case c == '(' || c == ')':
			kind := tokOpen
			if c == ')' {
				kind = tokClose
			}
			toks = append(toks, token{kind, s[i : i+1], i})
			i++
			continue
		case c == '>' || c == '<':
			n := 1
			if i+1 < len(s) && s[i+1] == '=' {
				n = 2
			}
			toks = append(toks, token{tokOp, s[i : i+n], i})
			i += n
			continue
		case strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||"):
			word := "and"
			if c == '|' {
				word = "or"
			}
			toks = append(toks, token{tokWord, word, i})
			i += 2
			continue
		}
		start := i
		kind := tokWord
		switch {
		case c >= '0' && c <= '9' || c == '.':
			kind = tokNumber
			for i < len(s) && (isAlnum(s[i]) || s[i] == '.' || s[i] == '%') {
				i++
			}
		case isAlnum(c):
			for i < len(s) && (isAlnum(s[i]) || s[i] == '.' || s[i] == '_') {
				i++
			}
		default:
			return nil, fmt.Errorf("bad condition %q: unexpected %q at offset %d", s, s[i:i+1], i)
		}
		toks = append(toks, token{kind, s[start:i], start})
	}
	return append(toks, token{tokEnd, "", len(s)}), nil
}

func isAlnum(c byte) bool {
	return c < unicode.MaxASCII && (unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)))
}

type condParser struct {
	toks []token
	pos  int
	src  string
}

func (p *condParser) peek() token { return p.toks[p.pos] }

func (p *condParser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEnd {
		p.pos++
	}
	return t
}

func (p *condParser) fail(t token, format string, a ...any) error {
	return fmt.Errorf("bad condition %q: %s at offset %d (want such as 'rss > 2G', 'heap grows 100M in 60s', "+
		"'cpu > 90%% over 10s', 'cgroup > 90%%', 'signal USR2', joined by and, or)", p.src, fmt.Sprintf(format, a...), t.pos)
}

// maxDepth bounds nested parentheses, so no input exhausts the stack.
const maxDepth = 64

func (p *condParser) or() (Condition, error) {
	c, err := p.and()
	for err == nil && p.peek().kind == tokWord && p.peek().text == "or" {
		p.next()
		var d Condition
		if d, err = p.and(); err == nil {
			c = orCond{c, d}
		}
	}
	return c, err
}

func (p *condParser) and() (Condition, error) {
	c, err := p.unary(0)
	for err == nil && p.peek().kind == tokWord && p.peek().text == "and" {
		p.next()
		var d Condition
		if d, err = p.unary(0); err == nil {
			c = andCond{c, d}
		}
	}
	return c, err
}

func (p *condParser) unary(depth int) (Condition, error) {
	if p.peek().kind != tokOpen {
		return p.atom()
	}
	open := p.next()
	if depth > maxDepth || strings.Count(p.src[:open.pos], "(") > maxDepth {
		return nil, p.fail(open, "parentheses nested too deep")
	}
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.next(); t.kind != tokClose {
		return nil, p.fail(t, "want ) to close the ( at offset %d", open.pos)
	}
	return paren{c}, nil
}

func (p *condParser) atom() (Condition, error) {
	t := p.next()
	if t.kind != tokWord {
		return nil, p.fail(t, "want a measure (rss, heap, cpu, cgroup, signal, ...), got %q", t.text)
	}
	switch t.text {
	case "signal":
		return p.signal()
	case "cpu":
		return p.cpu()
	case "cgroup":
		return p.cgroup()
	}
	m, ok := parseMetric(t.text)
	if !ok {
		return nil, p.fail(t, "unknown measure %q", t.text)
	}
	if w := p.peek(); w.kind == tokWord && w.text == "grows" {
		p.next()
		by, err := p.size()
		if err != nil {
			return nil, err
		}
		if in := p.next(); in.kind != tokWord || in.text != "in" {
			return nil, p.fail(in, "want \"in\" and a duration after the growth")
		}
		window, err := p.duration()
		if err != nil {
			return nil, err
		}
		return growth{m, by, window}, nil
	}
	op, err := p.op()
	if err != nil {
		return nil, err
	}
	v, err := p.size()
	if err != nil {
		return nil, err
	}
	return threshold{m, op, v}, nil
}

func (p *condParser) op() (string, error) {
	t := p.next()
	if t.kind != tokOp {
		return "", p.fail(t, "want >, >=, < or <=, got %q", t.text)
	}
	return t.text, nil
}

func (p *condParser) signal() (Condition, error) {
	t := p.next()
	name := strings.TrimPrefix(strings.ToUpper(t.text), "SIG")
	switch {
	case t.kind == tokWord && name == "USR1":
		return signalCond{syscall.SIGUSR1}, nil
	case t.kind == tokWord && name == "USR2":
		return signalCond{syscall.SIGUSR2}, nil
	}
	return nil, p.fail(t, "want USR1 or USR2 after signal, got %q", t.text)
}

func (p *condParser) cpu() (Condition, error) {
	op, err := p.op()
	if err != nil {
		return nil, err
	}
	t := p.next()
	pct, ok := parsePercent(t)
	if !ok {
		return nil, p.fail(t, "want a percentage of one CPU after cpu %s, such as 90%%", op)
	}
	c := cpuCond{op, pct, DefaultCPUWindow}
	if w := p.peek(); w.kind == tokWord && w.text == "over" {
		p.next()
		if c.window, err = p.duration(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (p *condParser) cgroup() (Condition, error) {
	op, err := p.op()
	if err != nil {
		return nil, err
	}
	if pct, ok := parsePercent(p.peek()); ok {
		p.next()
		return cgroupCond{op: op, percent: pct, isPercent: true}, nil
	}
	v, err := p.size()
	if err != nil {
		return nil, err
	}
	return cgroupCond{op: op, bytes: v}, nil
}

func parsePercent(t token) (float64, bool) {
	num, ok := strings.CutSuffix(t.text, "%")
	if t.kind != tokNumber || !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(num, 64)
	return v, err == nil && v >= 0 && v <= 1e6
}

// sizeUnits are the multipliers of sizes, by lower-case unit.
var sizeUnits = map[string]uint64{"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}

// size reads a size: a number with its unit, or a number then a unit.
func (p *condParser) size() (uint64, error) {
	t := p.next()
	if t.kind != tokNumber {
		return 0, p.fail(t, "want a size such as 2G or 500M, got %q", t.text)
	}
	text := t.text
	if u := p.peek(); u.kind == tokWord && sizeUnits[strings.ToLower(u.text)] > 1 && !strings.ContainsAny(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ%") {
		text += p.next().text
	}
	i := strings.IndexFunc(text, func(r rune) bool { return unicode.IsLetter(r) || r == '%' })
	if i < 0 {
		i = len(text)
	}
	mult, ok := sizeUnits[strings.ToLower(text[i:])]
	v, err := strconv.ParseFloat(text[:i], 64)
	if !ok || err != nil || v < 0 || v*float64(mult) >= math.MaxUint64/2 {
		return 0, p.fail(t, "bad size %q: want a number and B, K, M, G or T", text)
	}
	return uint64(math.Round(v * float64(mult))), nil
}

func (p *condParser) duration() (time.Duration, error) {
	t := p.next()
	d, err := time.ParseDuration(t.text)
	if t.kind != tokNumber || err != nil || d <= 0 || d > 7*24*time.Hour {
		return 0, p.fail(t, "want a duration such as 500ms, 60s or 5m (at most a week), got %q", t.text)
	}
	return d, nil
}

// Metric is a figure of the process's total or of one kind.
type Metric struct {
	Kind  Kind // numKinds for the total
	Field Field
}

func parseMetric(s string) (Metric, bool) {
	name, field, dotted := strings.Cut(s, ".")
	m := Metric{Kind: numKinds, Field: Rss}
	if f, ok := ParseField(name); ok && !dotted {
		m.Field = f
		return m, true
	}
	if name != "total" {
		k, ok := ParseKind(name)
		if !ok {
			return Metric{}, false
		}
		m.Kind = k
	}
	if dotted {
		f, ok := ParseField(field)
		if !ok {
			return Metric{}, false
		}
		m.Field = f
	}
	return m, true
}

func (m Metric) String() string {
	switch {
	case m.Kind == numKinds:
		return m.Field.String()
	case m.Field == Rss:
		return m.Kind.String()
	}
	return m.Kind.String() + "." + m.Field.String()
}

// FormatSize writes a byte count in the largest binary unit that holds it
// exactly, as ParseCondition reads it back.
func FormatSize(v uint64) string {
	for _, u := range []struct {
		name  string
		shift uint
	}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}} {
		if v != 0 && v%(1<<u.shift) == 0 {
			return strconv.FormatUint(v>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatUint(v, 10)
}

func formatPercent(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) + "%" }

func compare(v float64, op string, limit float64) bool {
	switch op {
	case ">":
		return v > limit
	case ">=":
		return v >= limit
	case "<":
		return v < limit
	}
	return v <= limit
}

// opSlug names a comparison in a file name.
var opSlug = map[string]string{">": "gt", ">=": "ge", "<": "lt", "<=": "le"}

type orCond struct{ a, b Condition }
type andCond struct{ a, b Condition }
type paren struct{ c Condition }

func (c orCond) String() string  { return c.a.String() + " or " + c.b.String() }
func (c andCond) String() string { return c.a.String() + " and " + c.b.String() }
func (c paren) String() string   { return "(" + c.c.String() + ")" }

func (c orCond) eval(h *history) (bool, []held) {
	// Both sides are looked at, so a signal is taken whichever holds.
	a, why := c.a.eval(h)
	b, whyB := c.b.eval(h)
	return a || b, append(why, whyB...)
}

func (c andCond) eval(h *history) (bool, []held) {
	a, why := c.a.eval(h)
	b, whyB := c.b.eval(h)
	if a && b {
		return true, append(why, whyB...)
	}
	return false, nil
}

func (c paren) eval(h *history) (bool, []held) { return c.c.eval(h) }

func (c orCond) atoms(f func(atom))  { c.a.atoms(f); c.b.atoms(f) }
func (c andCond) atoms(f func(atom)) { c.a.atoms(f); c.b.atoms(f) }
func (c paren) atoms(f func(atom))   { c.c.atoms(f) }

type threshold struct {
	m     Metric
	op    string
	limit uint64
}

func (c threshold) String() string { return fmt.Sprintf("%s %s %s", c.m, c.op, FormatSize(c.limit)) }
func (c threshold) slug() string {
	return c.m.String() + "-" + opSlug[c.op] + "-" + FormatSize(c.limit)
}
func (c threshold) atoms(f func(atom)) { f(c) }

type growth struct {
	m      Metric
	by     uint64
	window time.Duration
}

func (c growth) String() string {
	return fmt.Sprintf("%s grows %s in %s", c.m, FormatSize(c.by), c.window)
}
func (c growth) slug() string {
	return c.m.String() + "-grew-" + FormatSize(c.by) + "-in-" + c.window.String()
}
func (c growth) atoms(f func(atom)) { f(c) }

type cpuCond struct {
	op      string
	percent float64
	window  time.Duration
}

func (c cpuCond) String() string {
	return fmt.Sprintf("cpu %s %s over %s", c.op, formatPercent(c.percent), c.window)
}
func (c cpuCond) slug() string {
	return "cpu-" + opSlug[c.op] + "-" + strings.TrimSuffix(formatPercent(c.percent), "%") + "pct"
}
func (c cpuCond) atoms(f func(atom)) { f(c) }

type cgroupCond struct {
	op        string
	percent   float64
	bytes     uint64
	isPercent bool
}

func (c cgroupCond) String() string {
	if c.isPercent {
		return "cgroup " + c.op + " " + formatPercent(c.percent)
	}
	return "cgroup " + c.op + " " + FormatSize(c.bytes)
}

func (c cgroupCond) slug() string {
	if c.isPercent {
		return "cgroup-" + opSlug[c.op] + "-" + strings.TrimSuffix(formatPercent(c.percent), "%") + "pct"
	}
	return "cgroup-" + opSlug[c.op] + "-" + FormatSize(c.bytes)
}
func (c cgroupCond) atoms(f func(atom)) { f(c) }

type signalCond struct{ sig syscall.Signal }

func (c signalCond) String() string {
	if c.sig == syscall.SIGUSR1 {
		return "signal USR1"
	}
	return "signal USR2"
}
func (c signalCond) slug() string       { return strings.ReplaceAll(c.String(), " ", "-") }
func (c signalCond) atoms(f func(atom)) { f(c) }

// Signals lists the signals the condition waits for, for the caller to
// have them delivered (signal.Notify).
func Signals(c Condition) []syscall.Signal {
	var sigs []syscall.Signal
	c.atoms(func(a atom) {
		if s, ok := a.(signalCond); ok {
			sigs = append(sigs, s.sig)
		}
	})
	return sigs
}

// ParseMeasure parses a measure as conditions name them: rss, pss, swap,
// size, dirty (the process's totals), a KIND (its rss) or KIND.FIELD.
func ParseMeasure(s string) (Metric, error) {
	m, ok := parseMetric(s)
	if !ok {
		return Metric{}, fmt.Errorf("unknown measure %q: want rss, pss, swap, size, dirty, a kind (%s) or KIND.FIELD",
			s, strings.Join(kindNames[:], ", "))
	}
	return m, nil
}

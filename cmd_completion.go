package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/scan"
)

// This file has what the verb table gives besides help: completion scripts
// for the shells, the manual page, and the version.

// completionVerb and manVerb are functions, not variables like the other
// verbs: they read the verb table, which holds them.
func completionVerb() verb {
	return verb{
		name:     "completion",
		args:     "bash|zsh|fish",
		short:    "print a shell completion script",
		long:     "Load it with: source <(procmem completion bash), or in ~/.zshrc: source <(procmem completion zsh), or: procmem completion fish > ~/.config/fish/completions/procmem.fish",
		setup:    setupCompletion,
		noTarget: true,
	}
}

func manVerb() verb {
	return verb{
		name:     "man",
		args:     "",
		short:    "print the manual page (roff): procmem man | man -l -",
		setup:    setupMan,
		noTarget: true,
	}
}

func setupCompletion(flags *pflag.FlagSet) func(*env, []string) error {
	return func(e *env, args []string) error {
		if len(args) != 1 {
			return usagef("completion: want one of bash, zsh, fish")
		}
		switch args[0] {
		case "bash":
			return bashCompletion(e.stdout)
		case "zsh":
			fmt.Fprintln(e.stdout, "#compdef procmem\nautoload -U +X bashcompinit && bashcompinit")
			return bashCompletion(e.stdout)
		case "fish":
			return fishCompletion(e.stdout)
		}
		return usagef("completion: unknown shell %q: want bash, zsh or fish", args[0])
	}
}

// verbFlags lists a verb's flags as --name (and -x) words.
func verbFlags(v verb) []*pflag.Flag {
	flags := pflag.NewFlagSet(v.name, pflag.ContinueOnError)
	v.setup(flags)
	var out []*pflag.Flag
	flags.VisitAll(func(f *pflag.Flag) { out = append(out, f) })
	return out
}

func flagWords(flags []*pflag.Flag) string {
	var words []string
	for _, f := range flags {
		words = append(words, "--"+f.Name)
		if f.Shorthand != "" {
			words = append(words, "-"+f.Shorthand)
		}
	}
	return strings.Join(words, " ")
}

// flagValues are the words a flag of a verb takes, to complete instead of
// file names; nil for a flag that takes others.
func flagValues(verb, flag string) []string {
	switch {
	case verb == "scan" && flag == "type":
		return scan.SpecNames()
	case flag == "type" && (verb == "freeze" || verb == "search"):
		return scan.TypeNames()
	case flag == "endian":
		return []string{"little", "big"}
	}
	return nil
}

func globalFlagList() []*pflag.Flag {
	var out []*pflag.Flag
	globalFlags(&globals{}).VisitAll(func(f *pflag.Flag) { out = append(out, f) })
	return out
}

func bashCompletion(w io.Writer) error {
	var names []string
	for _, v := range verbs() {
		names = append(names, v.name)
	}
	var b strings.Builder
	b.WriteString("# bash completion for procmem\n_procmem() {\n")
	b.WriteString("    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} verb= pid= i\n")
	b.WriteString("    for ((i = 1; i < COMP_CWORD; i++)); do\n        case ${COMP_WORDS[i]} in\n")
	b.WriteString("            -p|--pid) pid=${COMP_WORDS[i+1]}; ((i++)) ;;\n            -P|--process) ((i++)) ;;\n            -*) ;;\n            *) verb=${COMP_WORDS[i]}; break ;;\n        esac\n    done\n")
	// Before the verb -P is a process name; after it, a region's pathname
	// (-P, --pathname), offered from the maps of the process -p names.
	b.WriteString("    if [[ -z $verb ]]; then\n        case $prev in\n")
	b.WriteString("            -p|--pid) COMPREPLY=($(compgen -W \"self $(ls /proc | grep '^[0-9]')\" -- \"$cur\")); return ;;\n")
	b.WriteString("            -P|--process) COMPREPLY=($(compgen -W \"$(cat /proc/[0-9]*/comm 2>/dev/null | sort -u)\" -- \"$cur\")); return ;;\n        esac\n")
	b.WriteString("    elif [[ $prev == -P || $prev == --pathname ]]; then\n        local IFS=$'\\n'\n")
	b.WriteString("        COMPREPLY=($(compgen -W \"$([[ -n $pid ]] && cut -c74- /proc/$pid/maps 2>/dev/null | sort -u)\" -- \"$cur\")); return\n    fi\n")
	b.WriteString("    case $verb in\n")
	fmt.Fprintf(&b, "        \"\") COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", strings.Join(names, " ")+" help "+flagWords(globalFlagList()))
	for _, v := range verbs() {
		words := flagWords(verbFlags(v))
		switch v.name {
		case "mount":
			fmt.Fprintf(&b, "        mount) COMPREPLY=($(compgen -d -W %q -- \"$cur\")) ;;\n", words)
		case "completion":
			b.WriteString("        completion) COMPREPLY=($(compgen -W \"bash zsh fish\" -- \"$cur\")) ;;\n")
		default:
			b.WriteString("        " + v.name + ") case $prev in\n")
			for _, f := range verbFlags(v) {
				if values := flagValues(v.name, f.Name); values != nil {
					fmt.Fprintf(&b, "            %s) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", strings.ReplaceAll(flagWords([]*pflag.Flag{f}), " ", "|"), strings.Join(values, " "))
				}
			}
			fmt.Fprintf(&b, "            *) COMPREPLY=($(compgen -f -W %q -- \"$cur\")) ;;\n        esac ;;\n", words)
		}
	}
	fmt.Fprintf(&b, "        help) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", strings.Join(names, " "))
	b.WriteString("    esac\n}\ncomplete -F _procmem procmem\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func fishCompletion(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# fish completion for procmem\n")
	fish := func(cond string, f *pflag.Flag, values []string) {
		fmt.Fprintf(&b, "complete -c procmem -n %q -l %s", cond, f.Name)
		if f.Shorthand != "" {
			fmt.Fprintf(&b, " -s %s", f.Shorthand)
		}
		if values != nil {
			fmt.Fprintf(&b, " -x -a %q", strings.Join(values, " "))
		} else if f.Value.Type() != "bool" {
			b.WriteString(" -r")
		}
		fmt.Fprintf(&b, " -d %q\n", firstSentence(f.Usage))
	}
	for _, f := range globalFlagList() {
		fish("__fish_use_subcommand", f, nil)
	}
	for _, v := range verbs() {
		fmt.Fprintf(&b, "complete -c procmem -f -n __fish_use_subcommand -a %s -d %q\n", v.name, v.short)
		for _, f := range verbFlags(v) {
			fish("__fish_seen_subcommand_from "+v.name, f, flagValues(v.name, f.Name))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func firstSentence(s string) string {
	s, _, _ = strings.Cut(s, "; ")
	return strings.ReplaceAll(s, "`", "")
}

func setupMan(flags *pflag.FlagSet) func(*env, []string) error {
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		return manPage(e.stdout)
	}
}

// roff escapes text for the manual page.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// manPage writes procmem(1) from the verb table: what help says, in roff.
func manPage(w io.Writer) error {
	var b strings.Builder
	b.WriteString(".TH PROCMEM 1 \"\" \"procmem\" \"User Commands\"\n.SH NAME\nprocmem \\- read, write and mount the memory of live Linux processes\n")
	b.WriteString(".SH SYNOPSIS\n.B procmem\n[\\fB\\-p\\fR \\fIPID\\fR|\\fBself\\fR | \\fB\\-P\\fR \\fINAME\\fR] [\\fB\\-S\\fR] \\fIVERB\\fR [\\fIverb flags\\fR]\n")
	b.WriteString(".SH DESCRIPTION\nprocmem prints a process's memory regions, reads, writes, searches and watches its memory, and mounts the memory of every process as a filesystem of one file per region.\n")
	b.WriteString("Pages that hold no data are not read: reading never changes the process.\n")
	b.WriteString(".SH GLOBAL FLAGS\n")
	writeFlags(&b, globalFlagList())
	b.WriteString(".SH VERBS\n")
	for _, v := range verbs() {
		fmt.Fprintf(&b, ".SS %s\n.B procmem %s\n%s\n.PP\n%s.\n", v.name, v.name, roff(v.args), roff(v.short))
		if v.long != "" {
			fmt.Fprintf(&b, ".PP\n%s\n", roff(v.long))
		}
		writeFlags(&b, verbFlags(v))
	}
	b.WriteString(".SH EXIT STATUS\n0 on success, 1 on a failure (said in one line on stderr), 2 on a usage error.\n")
	b.WriteString(".SH SEE ALSO\n.BR proc (5),\n.BR fusermount3 (1)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFlags(b *strings.Builder, flags []*pflag.Flag) {
	for _, f := range flags {
		b.WriteString(".TP\n")
		if f.Shorthand != "" {
			fmt.Fprintf(b, "\\fB\\-%s\\fR, ", f.Shorthand)
		}
		fmt.Fprintf(b, "\\fB\\-\\-%s\\fR", roff(f.Name))
		if name, _ := pflag.UnquoteUsage(f); name != "" {
			fmt.Fprintf(b, " \\fI%s\\fR", roff(name))
		}
		_, usage := pflag.UnquoteUsage(f)
		fmt.Fprintf(b, "\n%s\n", roff(usage))
	}
}

// version is procmem's version: the module's, or for a build from a
// checkout the commit, its time and whether the tree had changes.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "procmem (unknown version)"
	}
	v := info.Main.Version
	var rev, at, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", with uncommitted changes"
			}
		}
	}
	out := "procmem " + v
	if rev != "" {
		out += fmt.Sprintf(" (commit %s of %s%s)", rev, at, modified)
	}
	return out + ", " + info.GoVersion
}

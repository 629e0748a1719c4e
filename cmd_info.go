package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

var infoVerb = verb{
	name:     "info",
	args:     "[-v | -R] [-a ADDR] [-P PATHNAME] [-w] [--no-default-filter]",
	short:    "print the memory regions",
	long:     "With -a ADDR, the region holding ADDR and how far into it ADDR is.",
	setup:    setupInfo,
	captures: true,
}

func setupInfo(flags *pflag.FlagSet) func(*env, []string) error {
	var filter regionFilter
	filter.declare(flags)
	verbose := flags.BoolP("verbose", "v", false, "add every smaps field of each region and its VmFlags")
	raw := flags.BoolP("raw", "R", false, "print /proc/PID/smaps as the kernel writes it, for the selected regions")
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if *verbose && *raw {
			return usagef("info: -v and -R exclude each other")
		}
		if err := filter.parse(e); err != nil {
			return err
		}
		var regions []procfs.Region
		switch {
		case *raw || *verbose:
			text, err := smapsText(e)
			if err != nil {
				return err
			}
			mappings, blocks, err := procfs.SmapsBlocks(text)
			if err != nil {
				return err
			}
			all := make([]procfs.Region, len(mappings))
			for i, m := range mappings {
				all[i] = m.Region
			}
			if regions, err = filter.choose(e.pid(), all); err != nil {
				return err
			}
			var kept []procfs.Mapping
			var out strings.Builder
			for i, m := range mappings {
				if len(filter.apply(all[i:i+1])) == 1 {
					kept = append(kept, m)
					out.WriteString(blocks[i])
				}
			}
			if *raw {
				_, err = fmt.Fprint(e.stdout, out.String())
			} else {
				err = report.InfoVerbose(e.stdout, kept)
			}
			if err != nil {
				return err
			}
		default:
			var err error
			if regions, err = filter.regions(e); err != nil {
				return err
			}
			if e.capture != nil {
				err = e.capture.Info(e.stdout, regions)
			} else {
				err = report.Info(e.stdout, regions)
			}
			if err != nil {
				return err
			}
		}
		if filter.hasAddr && len(regions) == 1 {
			r := regions[0]
			_, err := fmt.Fprintf(e.stdout, "0x%x is 0x%x bytes into %s\n", filter.addr, filter.addr-r.Start, r.Label())
			return err
		}
		return nil
	}
}

// smapsText is the target's smaps: read now, or as a core written by
// procmem keeps it (other cores have none).
func smapsText(e *env) ([]byte, error) {
	if e.capture == nil {
		return e.proc.ReadFile("smaps")
	}
	if text := e.capture.Smaps(); text != nil {
		return text, nil
	}
	return nil, fmt.Errorf("%s has no smaps: only cores procmem writes keep them (info without -v and -R lists its regions)", e.capture.Path())
}

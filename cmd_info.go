package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

var infoVerb = verb{
	name:  "info",
	args:  "[-v | -R] [-a ADDR] [-P PATHNAME] [-w] [--no-default-filter]",
	short: "print the memory regions",
	long:  "With -a ADDR, the region holding ADDR and how far into it ADDR is.",
	setup: setupInfo,
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
		if err := filter.parse(e.proc); err != nil {
			return err
		}
		var regions []procfs.Region
		switch {
		case *raw || *verbose:
			text, err := e.proc.ReadFile("smaps")
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
			if regions, err = filter.regions(e.proc); err != nil {
				return err
			}
			if err := report.Info(e.stdout, regions); err != nil {
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

package main

import (
	"github.com/spf13/pflag"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

var infoVerb = verb{
	name:  "info",
	args:  "[-v | -R] [-P PATHNAME] [-w] [--no-default-filter]",
	short: "print the memory regions",
	setup: setupInfo,
}

func setupInfo(flags *pflag.FlagSet) func(*env, []string) error {
	var filter regionFilter
	filter.declare(flags)
	verbose := flags.BoolP("verbose", "v", false, "add every smaps field of each region and its VmFlags")
	raw := flags.BoolP("raw", "R", false, "print /proc/PID/smaps as the kernel writes it")
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		switch {
		case *raw:
			b, err := e.proc.ReadFile("smaps")
			if err != nil {
				return err
			}
			_, err = e.stdout.Write(b)
			return err
		case *verbose:
			mappings, err := e.proc.Smaps()
			if err != nil {
				return err
			}
			var kept []procfs.Mapping
			for _, m := range mappings {
				if len(filter.apply([]procfs.Region{m.Region})) == 1 {
					kept = append(kept, m)
				}
			}
			return report.InfoVerbose(e.stdout, kept)
		}
		regions, err := filter.regions(e.proc)
		if err != nil {
			return err
		}
		return report.Info(e.stdout, regions)
	}
}

package main

import (
	"github.com/spf13/pflag"

	"github.com/procmem/procmem/report"
)

var statmVerb = verb{name: "statm", short: "print memory usage", setup: setupStatm}

func setupStatm(flags *pflag.FlagSet) func(*env, []string) error {
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		s, err := e.proc.Statm()
		if err != nil {
			return err
		}
		return report.Statm(e.stdout, s)
	}
}

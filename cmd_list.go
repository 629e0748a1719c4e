package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

var listVerb = verb{name: "list", short: "list processes with their PIDs", setup: setupList, noTarget: true}

func setupList(flags *pflag.FlagSet) func(*env, []string) error {
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		list, err := processes()
		if err != nil {
			return err
		}
		var b strings.Builder
		for _, p := range list {
			fmt.Fprintf(&b, "%5d  %s\n", p.pid, p.comm)
		}
		_, err = fmt.Fprint(e.stdout, b.String())
		return err
	}
}

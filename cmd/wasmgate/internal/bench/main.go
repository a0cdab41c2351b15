// Command bench is the part of the Envoy benchmark (build/bench.sh) that no
// standard tool does: it derives each scenario's Envoy configuration from
// the shipped ones, checks that a running scenario does its job, and turns
// the records of the load tools and the /proc samples into the report.
//
//	bench config -template envoy.yaml [wasmgate envoy-config's flags] [-tokens N | -no-limit] [-limit-key HEADER]
//	bench check  -url http://127.0.0.1:PORT -job full|floor|limit [-users N] [-tokens N]
//	bench report -results FILE
//
// config prints the configuration as `wasmgate envoy-config` derives it
// (the same function, the same flags), with the rate limits changed; check
// exits non-zero naming the first thing the scenario got wrong; report
// prints markdown tables.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const usage = "usage: bench config|check|report [flags] (-h for each)"

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmds := map[string]func([]string, io.Writer) error{
		"config": configCommand, "check": checkCommand, "report": reportCommand,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q; %s", args[0], usage)
	}
	return cmd(args[1:], stdout)
}

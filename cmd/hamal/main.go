// Command hamal is Hamal's daemon and operator tool: one process runs one
// replication channel (source → parallel applier → sink).
//
//	hamal run     --config FILE   replicate until SIGTERM/SIGINT
//	hamal check   --config FILE   preflight the source and the target
//	hamal status  [--addr HOST:PORT | --config FILE] [--json]
//	hamal failover-report --config FILE [--json]
//	hamal migrate start|check|status|verify|cutover|cancel|complete|resume --plan FILE
//	hamal version
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `hamal — cross-datacenter replication daemon

Usage:
  hamal run     --config FILE   run a channel until SIGTERM/SIGINT (drains, persists, exits 0)
  hamal check   --config FILE   preflight: connectivity, binlog settings, privileges,
                                server_id, source.start, target tables and columns
                                (with start: snapshot, what the snapshot will create)
  hamal status  [--addr HOST:PORT | --config FILE] [--json]
                                show a running channel's state, positions and lag
  hamal failover-report --config FILE [--json]
                                after a failed source site is back: list the rows it
                                committed past the channel's checkpoint that the target lacks
  hamal migrate SUBCOMMAND --plan FILE
                                online resharding: start, check, status, verify,
                                cutover, cancel, complete, resume (docs/migrate.md)
  hamal version                 print the version

Run "hamal COMMAND --help" for a command's flags.
Config reference: configs/reference.yaml and the README.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "failover-report":
		return cmdFailoverReport(args[1:], stdout, stderr)
	case "migrate":
		return cmdMigrate(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		return cmdVersion(stdout)
	case "help", "--help", "-h", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "hamal: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

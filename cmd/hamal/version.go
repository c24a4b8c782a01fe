package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

func cmdVersion(w io.Writer) int {
	fmt.Fprintf(w, "hamal %s\n", version)
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(w, "go %s\n", bi.GoVersion)
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.time" || s.Key == "vcs.modified" {
				fmt.Fprintf(w, "%s %s\n", s.Key, s.Value)
			}
		}
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/go-mysql-org/go-mysql", "github.com/cockroachdb/pebble/v2":
				fmt.Fprintf(w, "%s %s\n", d.Path, d.Version)
			}
		}
	}
	return 0
}

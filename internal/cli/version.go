package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// WriteVersion writes what the running binary was built from: module and version, VCS revision
// and time, and the Go version, as runtime/debug.ReadBuildInfo reports them.
func WriteVersion(w io.Writer, prog string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	io.WriteString(w, FormatVersion(prog, bi))
}

// RunVersion is a binary's `version` command, described by help: it takes no arguments and writes
// WriteVersion's text for prog.
func RunVersion(help *Command, prog string, args []string, stdout, stderr io.Writer) error {
	fs := help.FlagSet(stdout, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fs.Fail("unexpected arguments %q", fs.Args())
	}
	WriteVersion(stdout, prog)
	return nil
}

// FormatVersion renders build information for WriteVersion; bi may be nil (a binary built without
// module support). Missing VCS details are said to be missing rather than left out, so that a
// build made with -buildvcs=false is recognisable.
func FormatVersion(prog string, bi *debug.BuildInfo) string {
	var b strings.Builder
	module, version := "unknown", "unknown"
	goVersion := runtime.Version()
	settings := map[string]string{}
	if bi != nil {
		if bi.Main.Path != "" {
			module = bi.Main.Path
		}
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
	}
	revision := "unknown (built without VCS information)"
	if r := settings["vcs.revision"]; r != "" {
		revision = r
		if settings["vcs.modified"] == "true" {
			revision += " (modified)"
		}
	}
	at := settings["vcs.time"]
	if at == "" {
		at = "unknown"
	}
	fmt.Fprintf(&b, "%s %s\n", prog, version)
	fmt.Fprintf(&b, "  module    %s\n", module)
	fmt.Fprintf(&b, "  revision  %s\n", revision)
	fmt.Fprintf(&b, "  time      %s\n", at)
	fmt.Fprintf(&b, "  go        %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	return b.String()
}

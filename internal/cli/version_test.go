package cli

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want []string
	}{
		{"vcs build", &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "github.com/scimflow/scimflow", Version: "v1.2.3"},
			Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "4b70400e"}, {Key: "vcs.time", Value: "2026-11-23T09:12:00Z"}, {Key: "vcs.modified", Value: "true"},
			},
		}, []string{
			"worker v1.2.3\n", "  module    github.com/scimflow/scimflow\n", "  revision  4b70400e (modified)\n",
			"  time      2026-11-23T09:12:00Z\n", "  go        go1.26.8 " + runtime.GOOS + "/" + runtime.GOARCH + "\n",
		}},
		{"built with -buildvcs=false", &debug.BuildInfo{
			GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/scimflow/scimflow", Version: "(devel)"},
		}, []string{"worker (devel)\n", "  revision  unknown (built without VCS information)\n", "  time      unknown\n"}},
		{"no build information", nil, []string{"worker unknown\n", "  module    unknown\n", "  go        " + runtime.Version()}},
	} {
		got := FormatVersion("worker", tc.bi)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: lacks %q:\n%s", tc.name, w, got)
			}
		}
	}
}

func TestRunVersion(t *testing.T) {
	t.Parallel()
	help := &Command{Name: "tool version", Summary: "print what this binary was built from", Usage: "tool version"}
	var out, errOut bytes.Buffer
	if err := RunVersion(help, "tool", nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "tool ") || !strings.Contains(out.String(), "\n  go        ") {
		t.Errorf("version text:\n%s", out.String())
	}
	out.Reset()
	err := RunVersion(help, "tool", []string{"extra"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), `unexpected arguments ["extra"]`) {
		t.Errorf("an argument: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("an argument still printed the version:\n%s", out.String())
	}
}

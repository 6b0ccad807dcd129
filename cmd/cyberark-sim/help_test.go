package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cli"
)

func runArgs(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := runWithEnv(context.Background(), args, func(string) string { return "" }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestHelp: -h and --help print a description, the flags, the environment and examples to
// stdout, and the program exits 0.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"-h", "--help"} {
		out, errOut, err := runArgs(flag)
		require.NoError(t, err)
		assert.Empty(t, errOut, "help goes to stdout")
		for _, want := range []string{
			"usage: cyberark-sim [flags]", "/oauth2/token/<app-id>", "\nflags:\n  --app-id",
			"\nenvironment:\n  SIM_CLIENT_SECRET", "SIM_PASSWORD", "SIM_STATIC_TOKEN",
			"\nexamples:\n  cyberark-sim ",
		} {
			assert.Contains(t, out, want, flag)
		}
	}
	_, errOut, err := runArgs("--nope")
	assert.Equal(t, 2, cli.ExitCode("cyberark-sim", err, &bytes.Buffer{}))
	assert.Contains(t, errOut, "Run 'cyberark-sim -h' for help.")
}

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	out, _, err := runArgs("-version")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "cyberark-sim "), out)
	assert.Contains(t, out, "\n  module    ")
	assert.Contains(t, out, "\n  go        "+runtime.Version())
	assert.NotContains(t, out, "listening on", "-version does not start the server")
}

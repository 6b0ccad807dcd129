package main

import (
	"bytes"
	"context"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cli"
)

func runArgs(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func status(err error) int { return cli.ExitCode("publisher", err, &bytes.Buffer{}) }

// TestEveryCommandHasHelp: -h and --help print a description, flags, environment and examples to
// stdout and exit 0; `publisher help <command>` prints the same.
func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"publish", "generate", "version"} {
		for _, flag := range []string{"-h", "--help"} {
			out, errOut, err := runArgs(c, flag)
			assert.Equal(t, 0, status(err), "%s %s: %v", c, flag, err)
			assert.Empty(t, errOut, c)
			assert.Contains(t, out, "usage: publisher "+c, c)
			assert.Regexp(t, `(?s)\nexamples:\n(.*\n)?  publisher `+regexp.QuoteMeta(c), out, c)
			if c != "version" {
				assert.Contains(t, out, "\nflags:\n", c)
			}
			// A description paragraph between the usage line and the flags or examples.
			assert.Regexp(t, `usage: publisher [^\n]*\n\n[A-Z][^\n]+\n`, out, "%s has a description", c)
			help, _, err := runArgs("help", c)
			require.NoError(t, err)
			assert.Equal(t, out, help, "publisher help %s", c)
		}
	}
	out, _, _ := runArgs("publish", "-h")
	assert.Contains(t, out, "\nenvironment:\n  ${NAME}", "publish reads ${NAME} references of --config's nats section")
	assert.Contains(t, out, "--wait")

	out, _, err := runArgs("help")
	require.NoError(t, err)
	assert.Contains(t, out, "\n  version ")
	_, _, err = runArgs("publish", "--nope")
	assert.Equal(t, 2, status(err))
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	out, _, err := runArgs("version")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "publisher "), out)
	assert.Contains(t, out, "\n  revision  ")
	assert.Contains(t, out, "\n  go        "+runtime.Version())
}

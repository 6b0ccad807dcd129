package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryCommandHasHelp: -h and --help on every command print a description, the flags, the
// environment the command reads and examples to stdout, and exit 0; `worker help <command>` prints
// the same.
func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	readsConfig := map[string]bool{"run": true, "check": true, "plan": true, "demo": true}
	for _, c := range []string{"run", "check", "plan", "model import", "demo", "outcomes", "version"} {
		words := strings.Fields(c)
		for _, flag := range []string{"-h", "--help"} {
			out, errOut, err := runCmd(t, append(words, flag)...)
			assert.Equal(t, 0, exitCode(err, &bytes.Buffer{}), "%s %s: %v", c, flag, err)
			assert.Empty(t, errOut, "%s %s: help goes to stdout", c, flag)
			assert.Contains(t, out, "usage: worker "+c, c)
			assert.Regexp(t, `(?s)\nexamples:\n(.*\n)?  worker `+regexp.QuoteMeta(c), out, c)
			if c != "version" {
				assert.Contains(t, out, "\nflags:\n", c)
			}
			if readsConfig[c] {
				assert.Contains(t, out, "\nenvironment:\n", c)
				assert.Contains(t, out, "SCIMFLOW_CLIENT_SECRET", c)
				assert.Contains(t, out, "${NAME}", c)
				assert.Contains(t, out, "--config FILE", c)
			}
			help, _, err := runCmd(t, append([]string{"help"}, words...)...)
			require.NoError(t, err, c)
			assert.Equal(t, out, help, "worker help %s", c)
		}
	}
	out, _, err := runCmd(t, "help")
	require.NoError(t, err)
	for _, c := range []string{"outcomes", "version", "model import"} {
		assert.Contains(t, out, "\n  "+c+" ", "the usage lists %s", c)
	}
	model, _, err := runCmd(t, "help", "model")
	require.NoError(t, err)
	assert.Contains(t, model, "usage: worker model import", "model has one subcommand: its help")
	_, errOut, err := runCmd(t, "help", "frobnicate")
	assert.Equal(t, 2, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, errOut, `unknown command "frobnicate"`)
}

// TestModelImportHasNoConfigFlag: model import reads no configuration, so it offers no --config.
func TestModelImportHasNoConfigFlag(t *testing.T) {
	t.Parallel()
	out, _, err := runCmd(t, "model", "import", "-h")
	require.Equal(t, 0, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, out, "--omada FILE")
	assert.NotContains(t, out, "config")
	_, errOut, err := runCmd(t, "model", "import", "--config", "x.yaml", "--omada", "x.xml")
	assert.Equal(t, 2, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, errOut, "flag provided but not defined: -config")
}

// TestUsageErrorsExit2 keeps the other side of -h: a bad or missing flag is status 2 with a hint.
func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	_, errOut, err := runCmd(t, "check", "--frobnicate")
	assert.Equal(t, 2, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, errOut, "Run 'worker check -h' for help.")
	_, errOut, err = runCmd(t, "plan", "--config", "x.yaml")
	assert.Equal(t, 2, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, errOut, "worker plan: --event is required")
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, errOut, err := runCmd(t, args...)
		require.NoError(t, err)
		assert.Empty(t, errOut)
		assert.True(t, strings.HasPrefix(out, "worker "), out)
		for _, field := range []string{"\n  module    ", "\n  revision  ", "\n  time      ", "\n  go        " + runtime.Version()} {
			assert.Contains(t, out, field)
		}
	}
}

// TestMissingConfigSuggestsTheFlag: without --config and without ./scimflow.yaml, the message names
// the file and the folder it looked in, and says how to name a configuration.
func TestMissingConfigSuggestsTheFlag(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, c := range []string{"run", "check"} {
		_, _, err := runCmd(t, c)
		require.Error(t, err)
		msg := err.Error()
		assert.Contains(t, msg, "scimflow.yaml not found", c)
		assert.Contains(t, msg, dir, c)
		assert.Contains(t, msg, "pass --config FILE, e.g. --config deploy/examples/config.yaml", c)
	}
	missing := filepath.Join(dir, "nope.yaml")
	_, _, err := runCmd(t, "run", "--config", missing)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "configuration file "+missing+" not found")
	assert.Contains(t, err.Error(), "--config")
}

// TestEveryRegisteredCommandHasHelp: every command of the worker's table (not a chosen few), a
// group of commands and a subcommand documented on its command's page answer -h and
// `worker help ...` with their help on stdout and exit 0 (issue 7 item 9: `worker deletes -h` and
// `worker help deletes` exited 2 with a usage error).
func TestEveryRegisteredCommandHasHelp(t *testing.T) {
	t.Parallel()
	for _, c := range commands.Commands {
		words := strings.Fields(strings.TrimPrefix(c.Name, "worker "))
		require.NotEmpty(t, c.Description, "%s has no description", c.Name)
		require.NotEmpty(t, c.Examples, "%s has no examples", c.Name)
		for _, args := range [][]string{append(words, "-h"), append(words, "--help"), append([]string{"help"}, words...)} {
			out, errOut, err := runCmd(t, args...)
			assert.Equal(t, 0, exitCode(err, &bytes.Buffer{}), "worker %s: %v\n%s", strings.Join(args, " "), err, errOut)
			assert.Empty(t, errOut, "worker %s: help goes to stdout", strings.Join(args, " "))
			assert.Contains(t, out, "usage: "+c.Name, "worker %s", strings.Join(args, " "))
			assert.Contains(t, out, "\nexamples:\n", "worker %s", strings.Join(args, " "))
			if c != helpVersion && c != helpModelImport { // the two read no environment
				assert.Contains(t, out, "\nenvironment:\n", "worker %s", strings.Join(args, " "))
			}
		}
	}
	for _, words := range [][]string{{"dlq"}, {"deletes", "list"}, {"inventory", "schedule"}, {"window", "schedule"}, {"parked", "retry"}} {
		for _, args := range [][]string{append(words, "-h"), append([]string{"help"}, words...)} {
			out, errOut, err := runCmd(t, args...)
			assert.Equal(t, 0, exitCode(err, &bytes.Buffer{}), "worker %s: %v\n%s", strings.Join(args, " "), err, errOut)
			assert.Contains(t, out, "usage: worker "+words[0], "worker %s", strings.Join(args, " "))
		}
	}
}

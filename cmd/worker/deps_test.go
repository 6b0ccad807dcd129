package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBinariesLinkNoTestCode: the three product binaries depend on neither the testing packages
// nor the repository's test helpers (natstest, cyberarksim/simtest, auth/authtest). The simulator's
// httptest servers once put testing and net/http/httptest into the worker.
func TestBinariesLinkNoTestCode(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	cmd := exec.Command(goTool, "list", "-deps", "./cmd/worker", "./cmd/publisher", "./cmd/cyberark-sim")
	cmd.Dir = repo(t)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/scimflow/scimflow/internal/cyberarksim", "the list is the binaries' dependencies")
	for _, banned := range []string{
		"testing", "net/http/httptest",
		"github.com/scimflow/scimflow/internal/natstest",
		"github.com/scimflow/scimflow/internal/cyberarksim/simtest",
		"github.com/scimflow/scimflow/internal/auth/authtest",
		"github.com/stretchr/testify/require",
	} {
		assert.NotContains(t, deps, banned)
	}
}

// TestMakeTestRunsStaticcheck: CI runs `make test` (.ci/run), so staticcheck runs there, as in
// `make lint`; the Makefile pins its version.
func TestMakeTestRunsStaticcheck(t *testing.T) {
	t.Parallel()
	makeTool, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make on PATH")
	}
	for _, target := range []string{"test", "lint"} {
		cmd := exec.Command(makeTool, "-n", target) // print the commands, run none
		cmd.Dir = repo(t)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Regexp(t, `go run honnef.co/go/tools/cmd/staticcheck@v\d+\.\d+\.\d+ \./\.\.\.`, string(out), "make %s", target)
	}
}

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

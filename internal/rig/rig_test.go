package rig

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWaitHTTPWaitsFor200(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	require.NoError(t, WaitHTTP(context.Background(), srv.URL, nil, 5*time.Second))
	assert.Equal(t, int32(3), calls.Load(), "503 twice, then 200")

	err := WaitHTTP(context.Background(), srv.URL+"/x", func() error { return errors.New("sim exited: exit status 2") }, 5*time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sim exited: exit status 2", "a process gone ends the wait with how it ended")

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	err = WaitHTTP(context.Background(), down.URL, nil, 200*time.Millisecond)
	assert.ErrorContains(t, err, "did not answer 200 within 200ms")
}

func TestFindRepoAndFreePort(t *testing.T) {
	repo, err := FindRepo("run it from the repository")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(repo, "go.mod"))
	require.NoError(t, err)
	assert.Equal(t, "rig", filepath.Base(mustGetwd(t)))

	t.Chdir(t.TempDir())
	_, err = FindRepo("run it from the repository (make x)")
	assert.ErrorContains(t, err, "no go.mod above the working directory: run it from the repository (make x)")

	p, err := FreePort()
	require.NoError(t, err)
	assert.Greater(t, p, 0)
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	return wd
}

func TestProcStartsLogsAndStops(t *testing.T) {
	sh, err := exec.LookPath("sh")
	require.NoError(t, err)
	log := filepath.Join(t.TempDir(), "p.log")
	var out syncBuilder
	p, err := Start("p", sh, []string{"-c", "echo ready; echo oops >&2; exec sleep 30"}, []string{"RIG_TEST=1"}, log, &out)
	require.NoError(t, err)
	assert.NoError(t, p.ExitErr(), "running")
	assert.Greater(t, p.PID(), 0)
	require.Eventually(t, func() bool { b, _ := os.ReadFile(log); return strings.Contains(string(b), "\noops\n") }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return out.String() == "ready\n" }, 5*time.Second, 10*time.Millisecond)
	assert.True(t, p.Stop(5*time.Second), "sleep ends on SIGTERM")
	assert.True(t, p.Exited())
	require.Error(t, p.ExitErr())
	assert.Contains(t, p.ExitErr().Error(), "p exited (signal: terminated); its log: "+log)
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Regexp(t, `^=== \S+ start \S*sh -c echo ready; echo oops >&2; exec sleep 30\n`, string(b))
	assert.Regexp(t, `\n=== \S+ exit signal: terminated\n$`, string(b))
	assert.Contains(t, string(b), "\nready\n", "standard output in the log, through the pipe")
	assert.Contains(t, string(b), "\noops\n", "standard error in the log")
	assert.Equal(t, "ready\n", out.String(), "standard output only")

	var none *Proc
	assert.True(t, none.Stop(time.Second))
	assert.NoError(t, none.ExitErr())
}

type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWorkspaceIsTheRepositoryAndANewFolder(t *testing.T) {
	repo, dir, err := Workspace("run it from the repository", "rig-test-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	assert.FileExists(t, filepath.Join(repo, "go.mod"))
	assert.DirExists(t, dir)
	assert.True(t, strings.HasPrefix(filepath.Base(dir), "rig-test-"), dir)
}

package rig

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

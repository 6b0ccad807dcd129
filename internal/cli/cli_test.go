package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if got := ExitCode("w", nil, &buf); got != 0 || buf.Len() != 0 {
		t.Fatalf("nil: %d %q", got, buf.String())
	}
	if got := ExitCode("w", fmt.Errorf("check: %w", ExitError(2)), &buf); got != 2 || buf.Len() != 0 {
		t.Fatalf("wrapped ExitError: %d %q", got, buf.String())
	}
	if got := ExitCode("w", errors.New("boom"), &buf); got != 1 || buf.String() != "w: boom\n" {
		t.Fatalf("plain error: %d %q", got, buf.String())
	}
}

// SCIMFLOW_CPUPROFILE writes, beside the CPU profile, what the run allocated and where it waited:
// a wait of a few milliseconds on a channel is in the block profile.
func TestStartProfileWritesEveryProfile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(ProfileEnv, dir)
	stop := StartProfile("probe")
	ch := make(chan struct{})
	time.AfterFunc(5*time.Millisecond, func() { close(ch) })
	<-ch
	stop()
	runtime.SetBlockProfileRate(0)
	runtime.SetMutexProfileFraction(0)
	for _, name := range []string{"pprof", "allocs.pprof", "block.pprof", "mutex.pprof"} {
		fi, err := os.Stat(filepath.Join(dir, fmt.Sprintf("probe-%d.%s", os.Getpid(), name)))
		if assert.NoError(t, err, name) {
			assert.NotZero(t, fi.Size(), name)
		}
	}
	var buf bytes.Buffer
	require.NoError(t, pprof.Lookup("block").WriteTo(&buf, 1))
	assert.Contains(t, buf.String(), "TestStartProfileWritesEveryProfile", "the channel wait is in the block profile")
}

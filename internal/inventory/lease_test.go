package inventory

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLeaseIsExclusive(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{})
	a, err := f.store.AcquireLease(f.ctx, "a", time.Second)
	require.NoError(t, err)
	_, err = f.store.AcquireLease(f.ctx, "b", time.Second)
	require.ErrorIs(t, err, ErrLeaseHeld)
	a.Release(f.ctx)
	b, err := f.store.AcquireLease(f.ctx, "b", time.Second)
	require.NoError(t, err)
	assert.Greater(t, b.Token(), a.Token(), "the fencing token grows with every holder")
	require.NoError(t, b.Check())
	b.Release(f.ctx)
}

// A runner that loses its lease in the middle of a run writes nothing more: no drift, no
// snapshot switch, no job record. The replica that took over reports the drift, once.
func TestLeaseHandoverMidRun(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{PageSize: 5, Concurrency: 1})
	seedUsers(t, f, 30)
	require.Equal(t, StatusBaseline, f.run().Status)
	before, _, err := f.store.Current(f.ctx)
	require.NoError(t, err)
	f.do("DELETE", "Users/"+f.userID("u001@x"), nil)

	a, err := f.store.AcquireLease(f.ctx, "a", 600*time.Millisecond)
	require.NoError(t, err)
	defer a.Release(f.ctx)
	h := &hookLister{Lister: f.client, before: func(n int) {
		if n != 3 {
			return
		}
		// Replica a is cut off; its lease expires and b takes it over.
		raw, _ := json.Marshal(leaseValue{Holder: "b", Token: a.Token() + 1, ExpiresAt: time.Now().Add(time.Minute)})
		_, err := f.store.kv.Put(f.ctx, keyLease, raw)
		require.NoError(t, err)
		time.Sleep(400 * time.Millisecond) // a's next renewal finds it gone
	}}
	f.runner.o.Lister = h
	j, err := f.runner.Run(f.ctx, RunOptions{Trigger: "schedule", Token: a.Token(), Fence: a.Check})
	require.True(t, errors.Is(err, ErrLeaseLost), "%v", err)
	assert.Equal(t, StatusLeaseLost, j.Status)
	after, _, err := f.store.Current(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, before, after)
	assert.Empty(t, f.drift())
	jobs, err := f.store.Jobs(f.ctx, 0)
	require.NoError(t, err)
	assert.Len(t, jobs, 1, "the cut-off runner recorded nothing")

	f.runner.o.Lister = f.client
	j, err = f.runner.Run(f.ctx, RunOptions{Trigger: "schedule", Token: a.Token() + 1})
	require.NoError(t, err)
	assert.Equal(t, StatusSucceeded, j.Status)
	assert.Len(t, f.drift(), 1)
}

// Two replicas on one schedule: each tick runs once; a schedule stored at run time takes effect.
func TestSchedulerRunsEachTickOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{Schedule: "@every 1s"})
	seedUsers(t, f, 3)
	ctx, cancel := testContext(t)
	done := make(chan struct{}, 2)
	for _, name := range []string{"a", "b"} {
		s := NewScheduler(f.runner, f.store, f.cfg, name, zerolog.Nop())
		go func() {
			_ = s.Run(ctx)
			done <- struct{}{}
		}()
		if name == "a" {
			require.Eventually(t, func() bool { spec, _ := s.Next(); return spec == "@every 1s" }, 5*time.Second, 10*time.Millisecond)
			defer func() {
				require.NoError(t, f.store.SetSchedule(f.ctx, "@every 1h", "test"))
				require.Eventually(t, func() bool { spec, _ := s.Next(); return spec == "@every 1h" }, 5*time.Second, 10*time.Millisecond)
				cancel()
				<-done
				<-done
			}()
		}
	}
	require.Eventually(t, func() bool {
		jobs, err := f.store.Jobs(f.ctx, 0)
		return err == nil && len(jobs) >= 3
	}, 10*time.Second, 50*time.Millisecond)
	jobs, err := f.store.Jobs(f.ctx, 0)
	require.NoError(t, err)
	for i := 1; i < len(jobs); i++ {
		assert.Greater(t, jobs[i-1].StartedAt.Sub(jobs[i].StartedAt), 500*time.Millisecond, "one run per tick")
		assert.Equal(t, "@every 1s", jobs[i].Schedule)
	}
}

package inventory

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/provision"
)

// hookLister calls before(n) ahead of the n-th page read (from 1), then reads through the real
// connector.
type hookLister struct {
	Lister
	pages  atomic.Int64
	before func(n int)
}

func (h *hookLister) ListRaw(ctx context.Context, resource string, start, count int, fn func(raw []byte) error) (provision.PageInfo, error) {
	if h.before != nil {
		h.before(int(h.pages.Add(1)))
	}
	return h.Lister.ListRaw(ctx, resource, start, count, fn)
}

func seedUsers(t *testing.T, f *fixture, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, f.sim.Seed("Users", map[string]any{"userName": fmt.Sprintf("u%03d@x", i), "title": "T"}))
	}
}

// An outage in the middle of a run fails it and leaves the snapshot in force; the next run
// reports what changed, once.
func TestOutageMidRunKeepsTheSnapshot(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{PageSize: 5, Concurrency: 1})
	seedUsers(t, f, 30)
	require.Equal(t, StatusBaseline, f.run().Status)
	before, _, err := f.store.Current(f.ctx)
	require.NoError(t, err)

	f.do("DELETE", "Users/"+f.userID("u003@x"), nil)
	h := &hookLister{Lister: f.client, before: func(n int) {
		if n == 3 {
			f.sim.SetFaults(cyberarksim.Faults{OutageFrom: time.Now().Add(-time.Second)})
		}
	}}
	f.runner.o.Lister = h
	j, err := f.runner.Run(f.ctx, RunOptions{Trigger: "test"})
	require.Error(t, err)
	assert.Equal(t, StatusFailed, j.Status)
	assert.NotEmpty(t, j.Errors)
	assert.Zero(t, j.Published)
	after, _, err := f.store.Current(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, before, after, "the snapshot in force is unchanged")
	assert.Empty(t, f.drift())
	jobs, err := f.store.Jobs(f.ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, StatusFailed, jobs[0].Status, "the failed run is recorded")

	f.sim.SetFaults(cyberarksim.Faults{})
	f.runner.o.Lister = f.client
	time.Sleep(250 * time.Millisecond) // the breaker's open timeout
	j = f.run()
	assert.Equal(t, StatusSucceeded, j.Status, "%v", j.Errors)
	require.Len(t, f.drift(), 1)
	assert.Equal(t, ChangeDeleted, f.drift()[0].Change)
}

// A read that collapses (far fewer objects than the snapshot holds) is suspect: nothing deleted
// is reported and the snapshot stays.
func TestCollapsedReadIsSuspect(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{PageSize: 10})
	seedUsers(t, f, 20)
	require.Equal(t, StatusBaseline, f.run().Status)
	before, _, err := f.store.Current(f.ctx)
	require.NoError(t, err)
	for i := range 15 {
		f.do("DELETE", "Users/"+f.userID(fmt.Sprintf("u%03d@x", i)), nil)
	}
	f.do("POST", "Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "new@x", "password": "Secret-Pass-123!"})
	j := f.run()
	assert.Equal(t, StatusSuspect, j.Status)
	assert.Contains(t, j.Suspect, "User: read 6, the snapshot in force holds 20")
	assert.Zero(t, j.Drift[ClassUnmanaged+"-deleted"])
	for _, d := range f.drift() {
		assert.NotEqual(t, ChangeDeleted, d.Change, "a suspect run reports no deletion")
	}
	assert.Len(t, f.drift(), 1, "the new user is still reported")
	after, _, err := f.store.Current(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

// Objects deleted while the listing is paged shift later pages left: the pager re-reads from
// further back and misses nothing that exists. Objects it saw before they went count as present
// this run and are reported deleted by the next.
func TestShiftedPagesAreReRead(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{PageSize: 10, Concurrency: 1})
	seedUsers(t, f, 60)
	require.Equal(t, StatusBaseline, f.run().Status)
	name := func(i int) string { return fmt.Sprintf("u%03d@x", i) }
	h := &hookLister{Lister: f.client, before: func(n int) {
		if n == 2 { // after the first page (u000..u009), before the second
			for i := 2; i < 14; i++ {
				f.do("DELETE", "Users/"+f.userID(name(i)), nil)
			}
		}
	}}
	f.runner.o.Lister = h
	j := f.run()
	require.Equal(t, StatusSucceeded, j.Status, "%v", j.Errors)
	assert.Positive(t, j.Rereads)
	assert.Equal(t, 10+46, j.Objects["User"], "the first page as read, then every user left from u014 on")
	var gone []string
	for _, d := range f.drift() {
		require.Equal(t, ChangeDeleted, d.Change)
		gone = append(gone, d.Key["userName"].(string))
	}
	assert.ElementsMatch(t, []string{name(10), name(11), name(12), name(13)}, gone, "only what was gone before it was read")

	f.runner.o.Lister = f.client
	j = f.run()
	assert.Equal(t, 48, j.Objects["User"])
	assert.Equal(t, 8, j.Changes[ChangeDeleted], "the rest is reported by the next run")
	assert.Len(t, f.drift(), 12)
}

package guard

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/natstest"
)

// replicaTally is what one worker replica has: its own connection to the shared bucket.
func replicaTally(t *testing.T, url string) *KVTally {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), KVTallyConfig(KVTallyBucket, 1))
	require.NoError(t, err)
	return NewKVTally(kv)
}

// Three replicas deleting at once share one window: the pool as a whole stays within the limit.
func TestKVTallyKeepsTheLimitAcrossReplicas(t *testing.T) {
	t.Parallel()
	srv := natstest.MustStart(t)
	ctx := context.Background()
	var tallies []*KVTally
	var guards []*Guard
	for range 3 {
		tl := replicaTally(t, srv.URL)
		tallies = append(tallies, tl)
		guards = append(guards, mustGuard(t, Config{MaxDeletes: 20, MaxPercent: NoLimit}, Options{Tally: tl}))
	}
	storm(t, func(i int) *Guard { return guards[i%len(guards)] }, 90, 20)
	total, per, err := tallies[0].Counts(ctx, window0)
	require.NoError(t, err)
	assert.Equal(t, 20, total, "20 for the pool, not 20 per replica")
	assert.Equal(t, map[string]int{"Users": 20}, per)

	d := check(t, guards[1], deleteOf("late", window0))
	assert.Equal(t, "deletion guard: 21st delete in this window exceeds maxDeletes 20", d.Reason)
	assert.Equal(t, Allow, check(t, guards[2], deleteOf("next", window0.Add(time.Hour))).Verdict, "a new window starts from zero")
}

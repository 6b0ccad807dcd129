package events

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/natstest"
)

// A consumer that disappears without the server telling the worker (no "consumer deleted" status
// reached its pull: here the server was restarted without it, as when no pull was waiting at the
// deletion) is recreated all the same: the worker's pulls go unanswered, and it looks the consumer
// up when they do.
func TestConsumerRecreatesAConsumerThatVanishedSilently(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	s := natstest.MustStartIn(t, t.TempDir())
	require.NoError(t, topo.Ensure(context.Background(), s.JS))
	outcomes := collectOutcomes(t, s.JS)
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	c, _, _ := runConsumer(t, s.JS, topo, ConsumerConfig{}, h)
	require.Eventually(t, func() bool { return c.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
	dir := filepath.Join(s.StoreDir(), "jetstream", "$G", "streams", EventsStream, "obs", c.ConsumerName(0))
	s.Restart(t, func() { require.NoError(t, os.RemoveAll(dir)) })
	require.Eventually(t, func() bool {
		_, err := s.JS.Consumer(context.Background(), EventsStream, c.ConsumerName(0))
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "the consumer was not recreated")
	for i := range 5 {
		publishUser(t, s.JS, fmt.Sprintf("v-%d", i), fmt.Sprintf("v%d", i))
	}
	assert.Len(t, outcomes(5, 15*time.Second), 5, "events after the recreation are consumed")
}

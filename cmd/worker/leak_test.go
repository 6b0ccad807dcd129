package main

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats.go v1.55.0: newAsyncReply starts this goroutine, and cleanupReplySub can set the
		// status channel it is about to read to nil first; it then waits on a nil channel forever.
		// The object store's Put (inventory snapshots) publishes asynchronously and meets it.
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"))
}

package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names (DESIGN.md §1).
const (
	EventsStream   = "IDM_EVENTS"
	OutcomesStream = "IDM_OUTCOMES"
	DLQStream      = "IDM_DLQ"
	// HistoryStream keeps every outcome again under its key, the last HistoryPerKey of each: the
	// per-object provisioning log (worker explain).
	HistoryStream = "IDM_HISTORY"
)

// Topology describes the streams scimflow uses. The zero value is the documented default.
type Topology struct {
	// Partitions is the number of partitions of the events stream, fixed when the stream is
	// created. Default 32.
	Partitions int
	// Replicas of every stream: 1 for the embedded server, 3 in the shipped cluster deployments.
	// Default 1.
	Replicas int
	// EventsMaxAge is how long events are retained for replay. Default 7 days.
	EventsMaxAge time.Duration
	// OutcomesMaxAge is how long outcomes are retained. Default 7 days.
	OutcomesMaxAge time.Duration
	// DLQMaxAge is how long dead letters are retained; default 0, kept until purged.
	DLQMaxAge time.Duration
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values to drop duplicate events
	// and duplicate final outcomes. Default 1 hour.
	DuplicateWindow time.Duration
	// HistoryPerKey is how many outcomes the provisioning log keeps per key (default 50), for
	// HistoryMaxAge (default 30 days).
	HistoryPerKey int
	HistoryMaxAge time.Duration
}

// DefaultPartitions is how many partitions the events stream has unless configured.
const DefaultPartitions = 32

func (t Topology) withDefaults() Topology {
	t.Partitions = cmp.Or(t.Partitions, DefaultPartitions)
	t.Replicas = cmp.Or(t.Replicas, 1)
	t.EventsMaxAge = cmp.Or(t.EventsMaxAge, 7*24*time.Hour)
	t.OutcomesMaxAge = cmp.Or(t.OutcomesMaxAge, 7*24*time.Hour)
	t.DuplicateWindow = cmp.Or(t.DuplicateWindow, time.Hour)
	t.HistoryPerKey = cmp.Or(t.HistoryPerKey, 50)
	t.HistoryMaxAge = cmp.Or(t.HistoryMaxAge, 30*24*time.Hour)
	return t
}

// Validate names the first field that is out of range.
func (t Topology) Validate() error {
	t = t.withDefaults()
	if t.Partitions < 1 || t.Partitions > 1024 {
		return fmt.Errorf("nats.partitions: %d is out of range 1..1024", t.Partitions)
	}
	if t.Replicas < 1 || t.Replicas > 5 {
		return fmt.Errorf("nats.replicas: %d is out of range 1..5", t.Replicas)
	}
	return nil
}

// PartitionCount is the number of partitions with defaults applied.
func (t Topology) PartitionCount() int { return t.withDefaults().Partitions }

// partitionTransform is the events stream's subject transform: it hashes the key token into one of
// n partitions and keeps object and key token in the stored subject.
func partitionTransform(n int) *jetstream.SubjectTransformConfig {
	return &jetstream.SubjectTransformConfig{
		Source:      EventsPrefix + ".*.*",
		Destination: PartitionedPrefix + ".{{partition(" + strconv.Itoa(n) + ",2)}}.{{wildcard(1)}}.{{wildcard(2)}}",
	}
}

// StreamConfigs returns the configurations of the events, outcomes and dead-letter streams.
func (t Topology) StreamConfigs() []jetstream.StreamConfig {
	t = t.withDefaults()
	return []jetstream.StreamConfig{
		{
			Name:             EventsStream,
			Description:      "scimflow identity events, partitioned by object key",
			Subjects:         []string{EventsPrefix + ".*.*"},
			SubjectTransform: partitionTransform(t.Partitions),
			Retention:        jetstream.LimitsPolicy,
			Storage:          jetstream.FileStorage,
			Replicas:         t.Replicas,
			MaxAge:           t.EventsMaxAge,
			Duplicates:       t.DuplicateWindow,
			Discard:          jetstream.DiscardOld,
		},
		{
			Name:        OutcomesStream,
			Description: "scimflow outcomes: one final outcome per event",
			Subjects:    []string{OutcomesPrefix + ".>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			MaxAge:      t.OutcomesMaxAge,
			Duplicates:  t.DuplicateWindow,
		},
		{
			Name:        DLQStream,
			Description: "scimflow dead letters: the original event with its reason",
			Subjects:    []string{DLQPrefix + ".>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			MaxAge:      t.DLQMaxAge,
			Duplicates:  t.DuplicateWindow,
		},
		{
			Name:              HistoryStream,
			Description:       "scimflow provisioning log: the last outcomes of every key",
			Subjects:          []string{HistoryPrefix + ".>"},
			Retention:         jetstream.LimitsPolicy,
			Storage:           jetstream.FileStorage,
			Replicas:          t.Replicas,
			MaxAge:            t.HistoryMaxAge,
			MaxMsgsPerSubject: int64(t.HistoryPerKey),
			Duplicates:        t.DuplicateWindow,
			Discard:           jetstream.DiscardOld,
			PersistMode:       t.historyPersistMode(),
		},
	}
}

// historyPersistMode is how the provisioning log is written. It is written off the events' path,
// so on one server its writes are flushed to disk in the background, not fsynced one by one
// whatever the server's sync_interval: a JetStream server that crashes may lose the log's last
// lines, never an outcome (IDM_OUTCOMES keeps the server's setting). A replicated stream keeps the
// default (JetStream refuses async persistence there; its Raft log is the durability). Servers
// before 2.12 ignore it.
func (t Topology) historyPersistMode() jetstream.PersistModeType {
	if t.Replicas > 1 {
		return jetstream.DefaultPersistMode
	}
	return jetstream.AsyncPersistMode
}

// Ensure creates the streams, or updates them to this topology, idempotently. The partition count
// of an existing events stream cannot change: a different count would move keys between partitions
// and break per-key order, so Ensure refuses it with an error naming both counts.
func (t Topology) Ensure(ctx context.Context, js jetstream.JetStream) error {
	if err := t.Validate(); err != nil {
		return err
	}
	t = t.withDefaults()
	for _, cfg := range t.StreamConfigs() {
		if cfg.Name == EventsStream {
			existing, err := js.Stream(ctx, cfg.Name)
			switch {
			case err == nil:
				cur := existing.CachedInfo().Config.SubjectTransform
				if cur != nil && cur.Destination != cfg.SubjectTransform.Destination {
					return fmt.Errorf("stream %s: partitions are fixed at creation: the stream partitions as %q, the config asks for %d partitions", cfg.Name, cur.Destination, t.Partitions)
				}
			case errors.Is(err, jetstream.ErrStreamNotFound):
			default:
				return fmt.Errorf("look up stream %s: %w", cfg.Name, err)
			}
		}
		if err := EnsureStream(ctx, js, cfg); err != nil {
			return err
		}
	}
	return nil
}

// EnsureStream creates or updates one stream (createOrUpdate). A stream's persist mode is fixed
// at creation, so an existing stream keeps its own whatever cfg asks.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	if cfg.PersistMode != jetstream.DefaultPersistMode {
		existing, err := js.Stream(ctx, cfg.Name)
		switch {
		case err == nil:
			cfg.PersistMode = existing.CachedInfo().Config.PersistMode
		case errors.Is(err, jetstream.ErrStreamNotFound):
		default:
			return fmt.Errorf("look up stream %s: %w", cfg.Name, err)
		}
	}
	return createOrUpdate(ctx, js, cfg)
}

// createOrUpdate creates or updates one stream. Replicas starting together on a fresh cluster race
// to create the same streams; the loser's request can time out while the cluster is busy with the
// winner's, so a timeout or a name clash is retried with backoff for up to 30 seconds.
func createOrUpdate(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	deadline := time.Now().Add(30 * time.Second)
	wait := 200 * time.Millisecond
	for {
		_, err := js.CreateOrUpdateStream(ctx, cfg)
		if err == nil {
			return nil
		}
		retry := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) ||
			errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat)
		if !retry || ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("create or update stream %s: %w", cfg.Name, ctx.Err())
		}
		wait = min(2*wait, 2*time.Second)
	}
}

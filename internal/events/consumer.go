package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Handler processes one valid event and says what became of it. It must honour ctx: when ctx is
// cancelled (the drain deadline of a shutdown passed) it returns a Result with Abandon set.
type Handler interface {
	Handle(ctx context.Context, d *Delivery) Result
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, d *Delivery) Result

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, d *Delivery) Result { return f(ctx, d) }

// Delivery is one delivery of a valid event to the handler. The same Delivery is passed again when
// the handler asked to resume (Result.Resume) and when a deferred event is tried in a later window.
type Delivery struct {
	Event     *Event
	Subject   string // the stored subject, idm.part.<partition>.<object>.<keytoken>
	Partition int
	StreamSeq uint64
	// Stored is when JetStream stored the event in IDM_EVENTS (for a parked event run again, when
	// it was parked if it was parked by a version that did not keep the time).
	Stored time.Time
	// Attempt counts the tries of this event, from 1: each sync window a deferred event is tried
	// in adds one.
	Attempt int
	// Redelivered says JetStream delivered this event before (to a worker that crashed, stopped or
	// handed its partition over): its effects may already have reached the target.
	Redelivered bool
	// State is the handler's own, kept across resumptions of this delivery (e.g. "created, its
	// references still to set").
	State any
	// Approved says an operator approved this event, a delete the deletion guard held.
	Approved bool
}

// Result is the handler's verdict. Outcome.Status decides what the consume loop does:
// succeeded, skipped or rejected: publish the outcome, ack; dead_lettered: publish the dead letter
// and the outcome, ack; deferred: publish the progress outcome and try again at RetryAt, holding
// the key's later events behind it.
type Result struct {
	Outcome Outcome
	// RetryAt is when a deferred event is tried again.
	RetryAt time.Time
	// Resume, when set, says the event is not finished and publishes nothing: the loop calls the
	// handler again with the same Delivery at that time, holding the key's later events behind it
	// and giving the worker slot to other keys meanwhile.
	Resume time.Time
	// Abandon says processing was interrupted: no outcome, the event is redelivered at once.
	Abandon bool
	// Pause says the event failed for a cause outside it (the target unreachable, refusing our
	// credentials, its breaker open): the loop publishes nothing, stops running events of any key,
	// and tries this one again at RetryAt as the probe; when the probe succeeds everything resumes.
	// Outcome.Reason and Outcome.Error say why, for the status page and readiness.
	Pause bool
	// Settle, when set, waits for what the handler still writes in the background (the applied
	// record, written while the outcome is published). The loop calls it once the outcome is
	// published and before the event is acknowledged, and in any case before it hands the event
	// back or lets its key go on. Calling it again returns at once.
	Settle func()
}

// ConsumerConfig configures the consume loop. The zero value is the documented default.
type ConsumerConfig struct {
	// Name prefixes the durable consumer of each partition: <Name>-p<partition>. Default "scimflow".
	Name string
	// Partitions this worker consumes; nil means every partition of the topology.
	Partitions []int
	// Observe, when set, is told of every outcome published: when its event arrived in JetStream
	// (zero when unknown) and how long this delivery's handler ran (metrics).
	Observe func(o *Outcome, stored time.Time, handler time.Duration)
	// ObserveWrite, when set, is told how long each JetStream round trip on an event's path took:
	// write is "outcome" (the outcome's publish, until the server stored it) or "ack" (the
	// confirmed acknowledgement).
	ObserveWrite func(write string, d time.Duration)
	// Note, when set, is told of what an operator did to a parked or held key (retry, approve,
	// reject), for the provisioning log.
	Note func(*HistoryNote)
	// Windows is the sync-window schedule in force, when it may change at run time: a parked key
	// never waits past its next window (a key parked under a longer schedule runs at the new
	// schedule's next window). Nil keeps the window each key was parked with.
	Windows interface{ Next(time.Time) time.Time }
	// Lanes is how many events are processed at once, each of a different key. Events of one object
	// key run one at a time, in stream order; a key that waits frees its lane. Default 256.
	Lanes int
	// AckWait is how long JetStream waits for an ack before redelivering; the loop keeps every event
	// it holds alive meanwhile, so AckWait only bounds how long the events of a worker that died
	// take to come back to another one. Default 30 seconds.
	AckWait time.Duration
	// MaxAckPending bounds the events a partition's consumer holds unacknowledged. Default 1000.
	MaxAckPending int
	// PullBatch is how many events each partition buffers. Default 64.
	PullBatch int
	// DrainTimeout bounds how long a shutdown waits for in-flight events. Default 30 seconds.
	DrainTimeout time.Duration
	// Worker names this worker in outcomes.
	Worker string
	// Pool, when set and Partitions is nil, decides the partitions this worker consumes: its share
	// of the pool's partitions, following the membership.
	Pool *Pool
	// Park, when set, parks deferred and held keys in IDM_PARKED (see ParkStore) instead of holding
	// their events in memory until the next window.
	Park   *ParkStore
	Logger zerolog.Logger
}

// Defaults of ConsumerConfig (and of the worker configuration that fills it).
const (
	DefaultConsumerName  = "scimflow"
	DefaultLanes         = 256
	DefaultAckWait       = 30 * time.Second
	DefaultMaxAckPending = 1000
	DefaultPullBatch     = 64
	DefaultDrainTimeout  = 30 * time.Second
)

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	c.Name = cmp.Or(c.Name, DefaultConsumerName)
	c.Lanes = cmp.Or(c.Lanes, DefaultLanes)
	c.AckWait = cmp.Or(c.AckWait, DefaultAckWait)
	c.MaxAckPending = cmp.Or(c.MaxAckPending, DefaultMaxAckPending)
	c.PullBatch = cmp.Or(c.PullBatch, DefaultPullBatch)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, DefaultDrainTimeout)
	return c
}

// ConsumerStats counts what the loop did since it started and what it holds now.
type ConsumerStats struct {
	Received  int64            `json:"received"`
	InFlight  int64            `json:"inFlight"`
	ByStatus  map[Status]int64 `json:"byStatus"`
	Abandoned int64            `json:"abandoned"`
	// PublishErr counts outcomes or dead letters that could not be published (the event is
	// redelivered).
	PublishErr int64 `json:"publishErrors"`
	// Held is how many events the loop holds (running, queued behind their key, or waiting).
	Held int `json:"held"`
	// Keys is how many object keys have held events; WaitingKeys how many of them wait (for a
	// reference, or for the next sync window).
	Keys        int `json:"keys"`
	WaitingKeys int `json:"waitingKeys"`
	// Partitions are the partitions whose consumers are bound now.
	Partitions []int `json:"partitions"`
	// OwnershipMoves counts partitions this worker took or handed over after it started.
	OwnershipMoves int64 `json:"ownershipMoves"`
	// ParkedKeys is how many keys of this worker's partitions are parked now; Parked counts the
	// events this worker parked.
	ParkedKeys int `json:"parkedKeys"`
	// HeldKeys is how many of ParkedKeys hold a delete the deletion guard keeps for an operator.
	HeldKeys int   `json:"heldKeys"`
	Parked   int64 `json:"parked"`
	// Paused says why intake is paused (a failure no event can fix), empty when it runs.
	Paused      string    `json:"paused,omitempty"`
	PausedSince time.Time `json:"pausedSince,omitzero"`
	// Pool is the membership this worker sees (empty without a pool).
	Pool *PoolStats `json:"pool,omitempty"`
}

// PoolStats is a worker's view of the pool.
type PoolStats struct {
	Member     string           `json:"member"`
	Members    []string         `json:"members"`
	Assignment map[string][]int `json:"assignment"`
	// Vanished are the members whose entries expired lately that this worker still counts in
	// (Pool.Vanished): after a JetStream outage longer than the TTL, the workers not reconnected yet.
	Vanished []string `json:"vanished,omitempty"`
	// Settling is set until this worker has read the pool, uninterrupted, for a whole TTL since it
	// started or its view was interrupted (Pool.Settled): meanwhile a partition that ran before
	// does not open on the absence of another worker's claim.
	Settling bool `json:"settling,omitempty"`
}

// Consumer consumes the events stream partition by partition, runs each event through the handler
// in its object key's order, and publishes one outcome per event before acknowledging it.
type Consumer struct {
	js   jetstream.JetStream
	topo Topology
	cfg  ConsumerConfig
	h    Handler
	pub  *Publisher
	log  zerolog.Logger
	keys *keyScheduler
	bg   sync.WaitGroup // recover goroutines

	received, inFlight, abandoned, publishErr, moves, parkedCount, duplicates atomic.Int64
	parking                                                                   parking
	mu                                                                        sync.Mutex
	byStatus                                                                  map[Status]int64
	bound                                                                     map[int]bool
	started                                                                   bool
	pauseReason                                                               string
	held                                                                      bool
	pausedSince                                                               time.Time
	// recoverWaits counts the times a recovering partition asked the server and had to keep
	// waiting (the previous owner still holds the pin or unacknowledged events).
	recoverWaits atomic.Int64
	// regates counts the times an open partition was shut because its pin moved (regate).
	regates atomic.Int64
	// pins is, per partition, the pin id of the last message JetStream delivered here: every
	// message of a pinned consumer carries the id the server pinned it to.
	pins map[int]string
	// suspect is, per partition, the last stream sequence another worker may have run when this
	// one took the partition from it (suspectRunElsewhere): a delivery up to it counts as a
	// redelivery, whatever the server's count of deliveries says.
	suspect map[int]uint64
	// lastDelivered is, per partition, the highest stream sequence delivered here; released, when
	// this worker let go of each partition it no longer holds (Member.Delivered).
	lastDelivered map[int]uint64
	released      map[int]time.Time
	// bindings is, per partition bound here, its consumer and the context of its recoveries (regate);
	// recovering is false once the shutdown waits for them (bg), after which none starts.
	bindings   map[int]binding
	recovering bool
}

// binding is a partition's consumer and the context its recoveries run in.
type binding struct {
	ctx  context.Context
	cons jetstream.Consumer
}

// releasedMemory is how long a worker keeps saying what it was delivered of a partition it let
// go of (Member.Delivered): the next owner reads it once the claim is gone, well within.
const releasedMemory = time.Minute

// noteDelivery records a message of partition p delivered here: the pin it carried (JetStream
// names it in every message of a pinned consumer) and its stream sequence. It says whether
// another worker may have run it before (suspect), and whether the pin is not the one the last
// message delivered here since the bind carried (moved: see regate).
func (c *Consumer) noteDelivery(p int, pin string, seq uint64) (suspected, moved bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pin != "" {
		moved = c.pins[p] != "" && c.pins[p] != pin
		c.pins[p] = pin
	}
	c.lastDelivered[p] = max(c.lastDelivered[p], seq)
	return seq != 0 && seq <= c.suspect[p], moved
}

// pinOf is the pin id of the last message of partition p delivered here ("" when none since the
// partition was bound).
func (c *Consumer) pinOf(p int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pins[p]
}

func (c *Consumer) forgetPin(p int) {
	c.mu.Lock()
	delete(c.pins, p)
	c.mu.Unlock()
}

// Hold pauses provisioning at an operator's request (true) or resumes it (false): no event starts
// while held, whatever its key; events keep arriving and are kept alive, in order, and events being
// handed over still go. Unlike a pause for the target, no probe ends it.
func (c *Consumer) Hold(on bool) {
	c.mu.Lock()
	changed := c.held != on
	c.held = on
	c.mu.Unlock()
	c.keys.hold(on)
	if changed {
		c.log.Info().Bool("held", on).Msg("provisioning paused by an operator: no event starts until resumed")
	}
}

// setPause records that intake is paused for reason, or resumed ("").
func (c *Consumer) setPause(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case reason == "" && c.pauseReason != "":
		c.log.Info().Dur("after", time.Since(c.pausedSince)).Msg("the probe succeeded: intake resumed")
		c.pauseReason, c.pausedSince = "", time.Time{}
	case reason != "" && c.pauseReason == "":
		c.log.Warn().Str("reason", reason).Msg("paused: a failure no event can fix; probing the target until it answers")
		c.pauseReason, c.pausedSince = reason, time.Now()
	case reason != "":
		c.pauseReason = reason
	}
}

// recentlyAcknowledged is how long at least the consume loop recognises an event it acknowledged,
// when JetStream delivers it again (the chaos suite saw such deliveries come back for minutes
// after a broker restart; at most 262,144 sequences are kept, a few MiB).
const recentlyAcknowledged = 30 * time.Minute

// NewConsumer returns a consume loop; Run starts it.
func NewConsumer(js jetstream.JetStream, topo Topology, cfg ConsumerConfig, h Handler) *Consumer {
	cfg = cfg.withDefaults()
	return &Consumer{
		js: js, topo: topo, cfg: cfg, h: h,
		pub:           NewPublisher(js),
		log:           cfg.Logger,
		keys:          newKeyScheduler(max(2*cfg.AckWait+2*time.Minute, recentlyAcknowledged), 1<<18),
		byStatus:      map[Status]int64{},
		bound:         map[int]bool{},
		pins:          map[int]string{},
		suspect:       map[int]uint64{},
		lastDelivered: map[int]uint64{},
		released:      map[int]time.Time{},
		bindings:      map[int]binding{},
		recovering:    true,
		parking:       parking{keys: map[string]*parkedKey{}},
	}
}

// Stats returns a copy of the counters.
func (c *Consumer) Stats() ConsumerStats {
	c.mu.Lock()
	by := make(map[Status]int64, len(c.byStatus))
	for k, v := range c.byStatus {
		by[k] = v
	}
	parts := c.boundPartitions()
	pausedReason, pausedSince := c.pauseReason, c.pausedSince
	c.mu.Unlock()
	ks := c.keys.stats()
	parked, held := c.parkedCounts()
	st := ConsumerStats{
		Received: c.received.Load(), InFlight: c.inFlight.Load(), ByStatus: by,
		Abandoned: c.abandoned.Load(), PublishErr: c.publishErr.Load(),
		Held: ks.Held, Keys: ks.Keys, WaitingKeys: ks.Waiting, Partitions: parts,
		OwnershipMoves: c.moves.Load(), ParkedKeys: parked, HeldKeys: held, Parked: c.parkedCount.Load(),
		Paused: pausedReason, PausedSince: pausedSince,
	}
	if c.cfg.Pool != nil && c.cfg.Partitions == nil {
		members := c.cfg.Pool.Members()
		st.Pool = &PoolStats{Member: c.cfg.Pool.Name(), Members: members, Assignment: Assign(members, c.topo.PartitionCount()),
			Vanished: c.cfg.Pool.Vanished(), Settling: !c.cfg.Pool.Settled()}
	}
	return st
}

// holds lists the partitions this worker holds (Member.Holds): those it consumes or binds, and
// those it still runs or holds events of after handing them over.
func (c *Consumer) holds() ([]int, map[int]uint64) {
	busy := c.keys.busyPartitions()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Collect(maps.Keys(c.bound))
	for _, p := range busy {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	delivered := map[int]uint64{}
	for _, p := range out {
		delete(c.released, p)
		if seq := c.lastDelivered[p]; seq > 0 {
			delivered[p] = seq
		}
	}
	for p, at := range c.released {
		if time.Since(at) > releasedMemory {
			delete(c.released, p)
			continue
		}
		if seq := c.lastDelivered[p]; seq > 0 {
			delivered[p] = seq
		}
	}
	return out, delivered
}

// announce writes this worker's pool entry now (Pool.Announce); a worker without a pool has
// nothing to announce.
func (c *Consumer) announce(ctx context.Context) error {
	if c.cfg.Pool == nil || c.cfg.Partitions != nil {
		return nil
	}
	return c.cfg.Pool.Announce(ctx)
}

func (c *Consumer) boundPartitions() []int {
	parts := make([]int, 0, len(c.bound))
	for p, ok := range c.bound {
		if ok {
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	return parts
}

// Ready returns nil when the consumer of every partition this worker consumes is bound, and an
// error naming the ones that are not otherwise.
func (c *Consumer) Ready() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		return errors.New("the consume loop has not started")
	}
	if c.pauseReason != "" {
		return fmt.Errorf("paused since %s: %s", c.pausedSince.UTC().Format(time.RFC3339), c.pauseReason)
	}
	var missing []int
	for p, ok := range c.bound {
		if !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("consumers of partitions %v are not bound (being recreated)", missing)
	}
	return nil
}

func (c *Consumer) setBound(p int, ok bool) {
	c.mu.Lock()
	c.bound[p] = ok
	c.mu.Unlock()
}

// ConsumerName is the durable name of a partition's consumer.
func (c *Consumer) ConsumerName(partition int) string {
	return c.cfg.Name + "-p" + strconv.Itoa(partition)
}

func (c *Consumer) partitions() []int {
	if c.cfg.Partitions != nil {
		return c.cfg.Partitions
	}
	all := make([]int, c.topo.PartitionCount())
	for p := range all {
		all[p] = p
	}
	return all
}

// PriorityGroup is the priority group of every partition consumer: the server pins each partition
// to one worker of the pool at a time (pinned-client priority, ADR-42).
const PriorityGroup = "scimflow"

// Defaults of the partition consumers' pinning.
const (
	// DefaultPinnedTTL is how long the server keeps a partition pinned to a worker that stopped
	// pulling (killed) before another may take it.
	DefaultPinnedTTL = 15 * time.Second
	// pullExpiry bounds each pull request, so that a live worker renews its pin well within
	// DefaultPinnedTTL.
	pullExpiry = 5 * time.Second
)

// partitionRun is a bound partition: the consume context pulling from it.
type partitionRun struct {
	cc jetstream.ConsumeContext
}

// consumerConfig is partition p's durable consumer: explicit acks, redelivered without limit,
// pinned to one client of the priority group at a time.
func (c *Consumer) consumerConfig(p int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        c.ConsumerName(p),
		Description:    fmt.Sprintf("scimflow worker, partition %d", p),
		FilterSubject:  PartitionSubject(p),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.cfg.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  c.cfg.MaxAckPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{PriorityGroup},
		PinnedTTL:      DefaultPinnedTTL,
	}
}

func (c *Consumer) bind(ctx context.Context, p int, route func(jetstream.Msg), lost chan<- int) (*partitionRun, error) {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, EventsStream, c.consumerConfig(p))
	if err != nil {
		return nil, fmt.Errorf("create consumer for partition %d: %w", p, err)
	}
	c.keys.reacquire(p)
	c.forgetPin(p)
	c.mu.Lock()
	delete(c.suspect, p)
	c.mu.Unlock()
	// Events delivered before (to a worker that stopped or died, to one still handing the partition
	// over, or to this one before a restart) and not acknowledged come back in no guaranteed order,
	// and newer events of their keys must not run before them: the partition runs nothing until they
	// are back (recover).
	gen := c.keys.gate(p)
	c.mu.Lock()
	c.bindings[p] = binding{ctx: ctx, cons: cons}
	c.mu.Unlock()
	c.startRecovery(ctx, cons, p, gen, false)
	var once sync.Once
	cc, err := cons.Consume(route,
		jetstream.PullMaxMessages(c.cfg.PullBatch),
		jetstream.PullExpiry(pullExpiry),
		jetstream.PullPriorityGroup(PriorityGroup),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) {
				once.Do(func() { lost <- p })
				return
			}
			if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat) {
				// Pulls that go unanswered: the consumer may be gone without the server having
				// said so, when no pull of ours was waiting as it was deleted, or when the server
				// restarted without it. Then no "consumer deleted" ever comes.
				go func() {
					gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
					defer cancel()
					if _, gerr := c.js.Consumer(gctx, EventsStream, c.ConsumerName(p)); errors.Is(gerr, jetstream.ErrConsumerNotFound) {
						once.Do(func() {
							select {
							case lost <- p:
							case <-ctx.Done(): // stopping: nothing is recreated
							}
						})
					}
				}()
			}
			if errors.Is(err, jetstream.ErrPinIDMismatch) {
				return // another worker holds the partition's pin; ours follows when it lets go
			}
			c.log.Warn().Err(err).Int("partition", p).Msg("consume")
		}))
	if err != nil {
		return nil, fmt.Errorf("consume partition %d: %w", p, err)
	}
	c.setBound(p, true)
	return &partitionRun{cc: cc}, nil
}

// release hands partition p over: it hands back every held event of p that is not running (in
// key order), waits for the running ones, then stops pulling and unpins the consumer so that the
// next owner is served at once.
//
// It keeps pulling, and so keeps the pin, while events of p still run here (up to DrainTimeout plus
// twice AckWait; whatever arrives meanwhile is handed back): the pin is what keeps the next owner
// from running the partition, and the count of unacknowledged events the next owner waits on can
// no longer be trusted to include them once a JetStream server restarted from an older consumer
// state (found by the chaos suite: a delete still retrying a 429 here, past the drain deadline,
// while the next owner ran the key's successor).
func (c *Consumer) release(ctx context.Context, p int, pr *partitionRun) {
	c.keys.releasePartition(p)
	deadline := time.Now().Add(c.cfg.DrainTimeout + 2*c.cfg.AckWait)
	// A shutdown (ctx) ends the wait: the shutdown's own drain deadline applies then.
	for c.keys.executingIn(p) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	c.stopPulling(pr.cc)
	<-pr.cc.Closed()
	deadline = time.Now().Add(c.cfg.DrainTimeout)
	for c.keys.heldIn(p) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c.unpin(ctx, p)
	c.dropParked(p)
	c.mu.Lock()
	delete(c.bound, p)
	delete(c.bindings, p)
	c.released[p] = time.Now()
	c.mu.Unlock()
}

// stopPulling ends a partition's pull; its Closed channel closes once the last call of route has
// returned. Connected, it drains: the events the client holds already are routed, and handed back
// with the rest in key order. Not connected, a drain would wait for a flush no server answers
// (ten seconds a partition in nats.go, found by TestReadyzSaysWhyWhenNATSIsDown): it stops at once
// instead, and the events the client held come back after AckWait like any unacknowledged event,
// which the next owner's recovery puts back in order.
func (c *Consumer) stopPulling(cc jetstream.ConsumeContext) {
	if c.js.Conn().IsConnected() {
		cc.Drain()
		return
	}
	cc.Stop()
}

// unpin lets go of partition p's pin, so that the next owner is served at once. Only a pin this
// worker holds is let go: unpinning blindly would take the partition from another worker that
// got it meanwhile (after a broker restart, say) and hand it to whoever pulls next.
func (c *Consumer) unpin(ctx context.Context, p int) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	mine := c.pinOf(p)
	c.forgetPin(p)
	if mine == "" {
		return // never served here since the bind: the pin, if any, is not ours
	}
	if !c.js.Conn().IsConnected() {
		// Each request would wait out its timeout: the server lets the pin go after PinnedTTL.
		c.log.Debug().Int("partition", p).Msg("not connected to NATS: the partition's pin is left to expire")
		return
	}
	st, err := c.js.Stream(uctx, EventsStream)
	var cons jetstream.Consumer
	if err == nil {
		cons, err = st.Consumer(uctx, c.ConsumerName(p))
	}
	var ci *jetstream.ConsumerInfo
	if err == nil {
		ci, err = cons.Info(uctx)
	}
	if err == nil && pinnedID(ci) != mine {
		return // someone else's now, or nobody's
	}
	if err == nil {
		err = st.UnpinConsumer(uctx, c.ConsumerName(p), PriorityGroup)
	}
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		c.log.Debug().Err(err).Int("partition", p).Msg("unpinning the partition")
	}
}

// Run consumes until ctx is cancelled, then shuts down in order: it stops pulling, lets the events
// that are running finish within DrainTimeout (after which they are abandoned), hands every other
// held event back to JetStream in key order, unpins its partitions and leaves the pool, and
// returns. It returns an error only when the consumers can't be created at the start; a consumer
// deleted later is recreated.
//
// With a Pool, the partitions this worker consumes follow the pool's membership: a partition
// another worker takes is handed over (release), one this worker is given is bound.
func (c *Consumer) Run(ctx context.Context) error {
	static := c.cfg.Partitions != nil || c.cfg.Pool == nil
	var owned []int
	if static {
		owned = c.partitions()
		if len(owned) == 0 {
			return errors.New("no partition to consume")
		}
	} else {
		owned = c.cfg.Pool.Owned(c.topo.PartitionCount())
	}
	// Work outlives ctx: in-flight events finish after a shutdown signal, until the drain deadline.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	var lanesDone sync.WaitGroup
	for range c.cfg.Lanes {
		lanesDone.Add(1)
		go func() {
			defer lanesDone.Done()
			c.lane(workCtx)
		}()
	}
	stopKeepAlive := c.keepAlive()
	route := func(msg jetstream.Msg) {
		c.received.Add(1)
		d := &Delivery{Subject: msg.Subject(), Attempt: 1}
		if md, err := msg.Metadata(); err == nil {
			d.StreamSeq, d.Stored = md.Sequence.Stream, md.Timestamp
			d.Redelivered = md.NumDelivered > 1
		}
		// A replayed event (worker replay, dlq replay) may well be in the target already.
		d.Redelivered = d.Redelivered || msg.Headers().Get(HeaderReplay) != ""
		p, _, _, _ := ParsePartitioned(d.Subject)
		suspected, moved := c.noteDelivery(p, msg.Headers().Get(pinHeader), d.StreamSeq)
		d.Redelivered = d.Redelivered || suspected
		if moved {
			c.regate(p)
		}
		t := &task{msg: msg, d: d, partition: p}
		switch c.keys.add(t) {
		case duplicateFinished:
			// Acknowledged here already (the server forgot it, e.g. restarted from an older consumer
			// state): its outcome is published, and running it again would undo its key's successors.
			c.duplicates.Add(1)
			logTask(c.log.Debug(), t).Uint64("seq", d.StreamSeq).Msg("delivered again after it was acknowledged: acknowledging it again")
			_ = msg.Ack()
		case duplicateParked:
			// Parked already, and its parked copy is held to run: left unacknowledged, it would come
			// back after AckWait and run again after its key's successors.
			c.duplicates.Add(1)
			logTask(c.log.Debug(), t).Uint64("seq", d.StreamSeq).Msg("delivered again after it was parked: acknowledging it")
			_ = msg.Ack()
		}
	}

	nparts := c.topo.PartitionCount()
	lost := make(chan int, nparts)
	running := map[int]*partitionRun{}
	// bindCtx ends the recover goroutines the binds start, also when the start fails.
	bindCtx, cancelBind := context.WithCancel(ctx)
	defer cancelBind()
	shutdown := func() {
		for _, pr := range running {
			c.stopPulling(pr.cc)
		}
		for _, pr := range running {
			<-pr.cc.Closed()
		}
		cancelBind()
		c.mu.Lock()
		c.recovering = false // no recovery starts from here on (regate)
		c.mu.Unlock()
		c.bg.Wait()
		c.keys.release()
		c.keys.close()
		lanesDone.Wait()
		stopKeepAlive()
		for p := range running {
			c.unpin(ctx, p)
		}
	}
	for _, p := range owned {
		c.setBound(p, false)
	}
	if !static {
		// Claim the partitions before binding them: a worker that still runs one (its handover
		// not done) sees the claim, and this worker waits for its (recover).
		c.cfg.Pool.Track(c.holds)
		if err := c.announce(ctx); err != nil {
			shutdown()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	for _, p := range owned {
		pr, err := c.bind(bindCtx, p, route, lost)
		if err != nil {
			shutdown()
			if ctx.Err() != nil {
				return nil // stopped while starting: not a failure
			}
			return err
		}
		running[p] = pr
	}
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
	var windowsDone sync.WaitGroup
	if c.cfg.Park != nil {
		windowsDone.Add(1)
		go func() {
			defer windowsDone.Done()
			c.windows(ctx)
		}()
		sub, err := c.js.Conn().Subscribe(ControlSubject, c.control)
		if err != nil {
			c.log.Warn().Err(err).Msg("subscribing to operator requests")
		} else {
			defer sub.Unsubscribe()
		}
	}
	c.log.Info().Ints("partitions", owned).Int("lanes", c.cfg.Lanes).Bool("pool", !static).Msg("consuming")

	changes := make(chan []int, 1)
	var poolDone sync.WaitGroup
	if !static {
		poolDone.Add(1)
		go func() {
			defer poolDone.Done()
			c.cfg.Pool.Run(ctx, nparts, func(want []int) {
				select {
				case <-changes: // a newer view replaces one not taken yet
				default:
				}
				changes <- want
			})
		}()
	}
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	want := owned
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case p := <-lost:
			c.setBound(p, false)
			c.log.Warn().Int("partition", p).Msg("the partition's consumer was deleted: recreating it")
			if pr := running[p]; pr != nil {
				pr.cc.Stop()
				delete(running, p)
			}
		case w := <-changes:
			want = w
		case <-retry.C:
		}
		if ctx.Err() != nil {
			break
		}
		// Converge on want: hand over what is no longer ours, bind what is (or failed to bind). A
		// handover or a bind can take seconds; a newer view of the pool that arrives meanwhile
		// replaces want at once, so that no partition is taken on a view that is out of date.
		newer := func() bool {
			select {
			case w := <-changes:
				want = w
				return true
			default:
				return false
			}
		}
	converge:
		for ctx.Err() == nil {
			for _, p := range slices.Sorted(maps.Keys(running)) {
				if slices.Contains(want, p) {
					continue
				}
				if newer() {
					continue converge
				}
				c.log.Info().Int("partition", p).Msg("handing the partition over")
				c.release(ctx, p, running[p])
				delete(running, p)
				c.moves.Add(1)
				// Let go of the claim now rather than at the next heartbeat, unless an event of
				// the partition still runs here past the drain deadline (holds keeps it then).
				if err := c.announce(ctx); err != nil {
					c.log.Debug().Err(err).Int("partition", p).Msg("announcing the handover")
				}
			}
			for _, p := range want {
				if running[p] != nil {
					continue
				}
				if newer() {
					continue converge
				}
				c.setBound(p, false)
				if err := c.announce(ctx); err != nil {
					c.log.Warn().Err(err).Int("partition", p).Msg("claiming the partition in the pool failed: retrying")
					continue
				}
				pr, err := c.bind(bindCtx, p, route, lost)
				if err != nil {
					c.log.Warn().Err(err).Int("partition", p).Msg("binding the partition failed: retrying")
					continue
				}
				running[p] = pr
				c.moves.Add(1)
				c.log.Info().Int("partition", p).Msg("partition taken")
			}
			break
		}
	}

	// The others take our partitions at once, but run none we still hold until we are gone.
	gone := func() {}
	if !static {
		gone = c.cfg.Pool.Leave(context.WithoutCancel(ctx))
	}
	poolDone.Wait()
	windowsDone.Wait()
	c.log.Info().Dur("deadline", c.cfg.DrainTimeout).Msg("draining: intake stopped, finishing in-flight events, handing the rest back")
	deadline := time.AfterFunc(c.cfg.DrainTimeout, cancelWork)
	defer deadline.Stop()
	shutdown()
	c.mu.Lock()
	c.bound = map[int]bool{}
	c.mu.Unlock()
	gone()
	if workCtx.Err() != nil {
		c.log.Warn().Int64("abandoned", c.abandoned.Load()).Msg("drain deadline passed: unfinished events were handed back for redelivery")
	}
	return nil
}

// recover holds partition p until every event of its consumer that is not acknowledged is in this
// worker's hands, then lets it run with each key's events in stream order. JetStream redelivers in
// no guaranteed order (a Nak'd event can go behind later ones, an event held by a worker that died
// comes back after AckWait), so this is what keeps a key's order across crashes, shutdowns and
// ownership moves.
//
// The count is trusted only once no other worker can be given more: when a message reached this
// worker since the bind (JetStream delivers to the pinned client only, so the pin is ours). Before
// that, the previous owner may still be pulling. A partition that nobody holds the pin of and
// that has nothing unacknowledged is let run on trust (its parked keys are replayed), but that
// proves nothing: JetStream pins a partition only when it delivers a message, so the previous
// owner, still pulling, may be the one given the next event, and hand it back. So the first
// message delivered here gates the partition again (keyScheduler.add), and recover waits for the
// proof as for any bind. gen is the gate's generation: a recovery outlived by a newer bind of p,
// or by p's handover, ends.
func (c *Consumer) recover(ctx context.Context, cons jetstream.Consumer, p int, gen uint64, regated bool) {
	log := c.log.With().Int("partition", p).Logger()
	started, warned := time.Now(), time.Now()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	// trusted: the partition ran before this recovery (on trust, or until its pin moved: regated),
	// and its parked keys were read then.
	trusted := regated
	// history: events of the partition were delivered before this worker bound it (to anybody).
	ci0 := cons.CachedInfo()
	history := ci0 == nil || ci0.Delivered.Stream > 0 || ci0.NumAckPending > 0
	// claimed: another worker said it held the partition while this one waited; theirs, the
	// highest stream sequence the others said they were delivered there.
	claimed, theirs := false, uint64(0)
	for {
		switch c.keys.gateOf(p, gen) {
		case gateStale, gateOpen:
			return
		case gateUnproven:
			// Running on trust: nothing to ask the server until a message is delivered here.
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			continue
		}
		// Count what is held before asking the server: an event delivered in between makes the
		// estimate of what is still elsewhere larger, never smaller.
		held, delivered := c.keys.deliveredHeld(p)
		ci, err := cons.Info(ctx)
		if err == nil {
			elsewhere := ci.NumAckPending - held
			// A message delivered here proves the pin ours only while the server still names the
			// pin that message carried: it may have moved since (a broker restart forgets pins,
			// another worker's pull may have taken it).
			ours := delivered && pinnedID(ci) != "" && pinnedID(ci) == c.pinOf(p)
			if elsewhere <= 0 && (ours || !pinned(ci)) {
				// The server's pin and count can be wrong after it restarted from an older
				// consumer state; the pool's entries, stored before they were acknowledged, are
				// not: another worker that says it holds the partition still runs or holds some
				// of its events.
				hctx, cancel := context.WithTimeout(ctx, parkedReadTimeout)
				holder, seq, herr := c.heldElsewhere(hctx, p)
				cancel()
				theirs = max(theirs, seq)
				// Nobody's claim proves nothing until this worker has watched the pool long
				// enough for every live member to have renewed its entry (Pool.Settled): a
				// worker that joins, or whose view was interrupted, just after a JetStream
				// server that was down longer than the TTL came back finds no entry, while a
				// worker that has not reconnected yet still runs events of the partition the
				// server delivered to it before, and now delivers here again (found by the
				// chaos suite with -broker-down 15s: a worker restarted during the outage ran
				// a key's delete again after its successor's create). A partition nothing of
				// which was delivered before the bind needs no wait, nor one that ran here until
				// its pin moved (regate): the worker pinned in between claimed it before it bound
				// it.
				settling := !regated && history && !c.poolSettled()
				if herr != nil || holder != "" || settling {
					claimed = claimed || holder != ""
					c.recoverWaits.Add(1)
					if time.Since(warned) > 30*time.Second {
						warned = time.Now()
						log.Warn().Err(herr).Str("holder", holder).Bool("settling", settling).Dur("waiting", time.Since(started)).
							Msg("still waiting for another worker to let go of the partition")
					}
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
					continue
				}
				if claimed {
					c.suspectRunElsewhere(p, theirs)
					claimed = false
				}
				// The parked keys are read now, not at the bind: until the previous owner let go it
				// could still park one. Once read, a partition let run on trust keeps the keys it
				// knows (it may be replaying them) and adds those parked elsewhere meanwhile.
				read := c.reloadParked
				if trusted {
					read = c.mergeParked
				}
				rctx, cancel := context.WithTimeout(ctx, parkedReadTimeout)
				err := read(rctx, p)
				cancel()
				if err != nil {
					log.Warn().Err(err).Msg("reading the partition's parked keys: trying again")
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
					continue
				}
				if ours {
					if time.Since(started) > time.Second || held > 0 && !trusted {
						log.Info().Int("recovered", held).Dur("after", time.Since(started)).Msg("events delivered earlier are back: running the partition")
					}
					c.keys.open(p)
					return
				}
				trusted = true
				c.keys.openUnproven(p)
				continue
			}
			c.recoverWaits.Add(1)
			if time.Since(warned) > 30*time.Second {
				warned = time.Now()
				log.Warn().Int("elsewhere", elsewhere).Bool("pinned", delivered).Dur("waiting", time.Since(started)).
					Msg("still waiting for events delivered earlier (to a worker that holds them, or until AckWait returns them)")
			}
		}
		select {
		case <-ctx.Done():
			// Shutting down (or stopped by a newer bind): the partition stays shut. The shutdown
			// hands its events back through the gate (keyScheduler.release); opening it here
			// would let the lanes run them first, with the parked keys unread and the events
			// delivered elsewhere not back.
			return
		case <-t.C:
		}
	}
}

// startRecovery runs recover for gate generation gen of partition p, unless the shutdown already
// waits for the recoveries: the partition then stays shut, and the shutdown hands its events back.
func (c *Consumer) startRecovery(ctx context.Context, cons jetstream.Consumer, p int, gen uint64, regated bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.recovering {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		c.recover(ctx, cons, p, gen, regated)
	}()
}

// regate shuts partition p while it runs, because a message was delivered here under another pin
// than the one before: the server pinned the partition anew, so it may have been pinned to another
// worker in between and delivered that worker some of p's events. A JetStream server restarted
// forgets its pins, and when it was down longer than the pool's TTL it also comes back without the
// pool's entries, so another worker may take the partition for a moment, be pinned, be delivered
// the next event and hand it back, while this one, still running the partition, is pinned again
// and delivered the event after it (found by the chaos suite with -broker-down 15s: a key's update
// skipped as superseded by its successor, run first). The events running finish, and nothing more
// of p starts until every event delivered elsewhere is back and nobody else holds p (recover, as
// at a bind).
func (c *Consumer) regate(p int) {
	c.mu.Lock()
	b, ok := c.bindings[p]
	c.mu.Unlock()
	if !ok {
		return
	}
	gen, ok := c.keys.regate(p)
	if !ok {
		return // gated already (its recovery sees the new pin), or being handed over
	}
	c.regates.Add(1)
	c.log.Debug().Int("partition", p).Msg("the partition's pin moved: waiting for the events delivered elsewhere before running more")
	c.startRecovery(b.ctx, b.cons, p, gen, true)
}

// parkedReadTimeout bounds a read of the pool's claims or of a partition's parked keys when it
// opens: a listing that stalls (JetStream restarting) fails and is tried again, rather than keep
// the partition shut.
const parkedReadTimeout = 10 * time.Second

// suspectRunElsewhere makes the events of partition p up to stream sequence upTo, the highest the
// worker that held p until now says it was delivered there, count as redeliveries here: it may
// have run any of them, and a JetStream server restarted from an older consumer state delivers
// them again as if for the first time. A redelivery is checked against what was last applied to
// its key before it is applied (the pipeline's superseded check), so a key's older event run again
// does not undo what the other worker applied after it. Later events are not suspected: a
// redelivery also looks its object up in the target before creating it, which the events a
// worker received while it waited for the other to let go must not all pay for.
func (c *Consumer) suspectRunElsewhere(p int, upTo uint64) {
	c.keys.markRedelivered(p, upTo)
	c.mu.Lock()
	c.suspect[p] = upTo
	c.mu.Unlock()
}

// heldElsewhere names another member of the pool that holds partition p (Pool.HeldElsewhere);
// "" without a pool.
func (c *Consumer) heldElsewhere(ctx context.Context, p int) (holder string, delivered uint64, err error) {
	if c.cfg.Pool == nil || c.cfg.Partitions != nil {
		return "", 0, nil
	}
	return c.cfg.Pool.HeldElsewhere(ctx, p)
}

// poolSettled says whether this worker has watched the pool long enough to trust that a member
// it does not see holds nothing (Pool.Settled); true without a pool.
func (c *Consumer) poolSettled() bool {
	if c.cfg.Pool == nil || c.cfg.Partitions != nil {
		return true
	}
	return c.cfg.Pool.Settled()
}

// pinned says whether a client holds the pin of the consumer's priority group.
func pinned(ci *jetstream.ConsumerInfo) bool { return pinnedID(ci) != "" }

// pinnedID is the pin id of the consumer's priority group ("" when no client holds it).
func pinnedID(ci *jetstream.ConsumerInfo) string {
	for _, g := range ci.PriorityGroups {
		if g.Group == PriorityGroup {
			return g.PinnedClientID
		}
	}
	return ""
}

// handBackDelay is how long an event handed back (a handover, a shutdown) waits before JetStream
// delivers it again.
const handBackDelay = 250 * time.Millisecond

// pinHeader is the header in which JetStream names the pin a message was delivered under.
const pinHeader = "Nats-Pin-Id"

// lane runs keys' head events until the scheduler closes.
func (c *Consumer) lane(ctx context.Context) {
	for {
		k, t, release, ok := c.keys.next()
		if !ok {
			return
		}
		if release {
			// Shutting down: hand the key's events back in order, so that its next owner runs them in
			// the order they were published.
			rest, resumed := c.keys.dropAll(k)
			if resumed {
				c.setPause("")
			}
			for _, t := range rest {
				if t.acking && c.ack(ctx, t.msg) == nil {
					continue // finished: only its acknowledgement was left
				}
				c.abandoned.Add(1)
				// With a delay: a partition being handed over is still pulled (release), and an
				// event handed back at once would come straight back here.
				_ = t.msg.NakWithDelay(handBackDelay)
			}
			continue
		}
		disp, until := c.process(ctx, t)
		if c.keys.finish(k, disp, until) {
			c.setPause("")
		}
	}
}

// keepAlive tells JetStream that every held event is still being worked on, so that no event
// waiting behind its key is redelivered behind its successors: every sixth of AckWait, each
// event it has heard nothing of for a third of AckWait or more. An event is so kept alive at
// most half an AckWait after it was last heard of, and only as often as it needs: on a deep
// backlog an event waits many seconds in the worker, and an InProgress for every held event at
// every tick was up to two messages per event.
func (c *Consumer) keepAlive() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	t := time.NewTicker(c.cfg.AckWait / 6)
	go func() {
		defer close(finished)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				for _, m := range c.keys.staleMessages(now, c.cfg.AckWait/3) {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// process runs a key's head event through decode, the handler and the outcome publication, and
// says what became of it.
func (c *Consumer) process(ctx context.Context, t *task) (disp disposition, until time.Time) {
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	msg, d := t.msg, t.d
	if t.acking {
		return c.settle(ctx, t)
	}
	if ctx.Err() != nil {
		c.abandoned.Add(1)
		_ = msg.Nak()
		return abandoned, time.Time{}
	}
	started := time.Now()
	if !t.decoded {
		t.decoded = true
		d.Partition, t.object, t.keyToken, t.subjectErr = ParsePartitioned(msg.Subject())
		t.ev, t.decodeErr = Decode(msg.Data())
		if ev := t.ev; t.decodeErr == nil && t.subjectErr == nil && (SubjectToken(ev.Data.Object) != t.object || KeyToken(ev.Data.Key) != t.keyToken) {
			t.decodeErr = &DecodeError{Reason: fmt.Sprintf("published on the subject of another object or key: subject says %s/%s, data says %s/%s",
				t.object, t.keyToken, SubjectToken(ev.Data.Object), KeyToken(ev.Data.Key))}
		}
	}
	ev, object, keyToken := t.ev, t.object, t.keyToken
	msgID := msg.Headers().Get(HeaderMsgID)
	// Lines the handler's parts log with this context name the event (EventLogHook).
	ctx = WithEventLog(ctx, ev)

	valid := t.decodeErr == nil && t.subjectErr == nil
	var reject bool
	if c.cfg.Park != nil && valid && t.unpublished == nil {
		if t.replay == nil {
			pk, busy := c.follow(d.Subject)
			if busy {
				return wait, time.Now().Add(50 * time.Millisecond) // the key is being unparked
			}
			if pk != nil {
				// The key is parked: this event waits behind its parked events, in order.
				d.Event = ev
				return c.parkFollower(ctx, t, pk)
			}
		} else {
			var skip bool
			if skip, reject = c.replayTask(t); skip {
				return done, time.Time{} // stays parked for the next window
			}
		}
	}

	var res Result
	if t.unpublished != nil {
		// The handler finished before but its outcome could not be published: publish it now
		// rather than run the event again.
		res = *t.unpublished
	} else if t.decodeErr != nil || t.subjectErr != nil {
		err := cmp.Or(t.decodeErr, t.subjectErr)
		res = Result{Outcome: Outcome{
			Status: StatusDeadLettered,
			Error:  &OutcomeError{Class: "invalid", Message: err.Error()},
			Reason: "the event is malformed: " + err.Error(),
		}}
		if ev != nil {
			res.Outcome.Operation = ev.Data.Operation
			res.Outcome.Key = ev.Data.Key
		}
	} else if reject {
		d.Event = ev
		res = Result{Outcome: Outcome{Status: StatusRejected, Reason: "an operator rejected this delete (worker deletes reject): nothing was sent"}}
	} else {
		d.Event = ev
		res = c.handle(ctx, d)
		if res.Settle != nil {
			// Whatever happens next, the key goes on only once the handler's writes are done.
			defer res.Settle()
		}
	}
	if res.Abandon {
		c.abandoned.Add(1)
		_ = msg.Nak()
		return abandoned, time.Time{}
	}
	if !res.Resume.IsZero() && res.Outcome.Status == "" {
		return wait, res.Resume
	}
	if res.Pause {
		c.setPause(cmp.Or(res.Outcome.Reason, "the target can't take work"))
		return paused, cmp.Or(res.RetryAt, time.Now().Add(5*time.Second))
	}

	t.unpublished = &res
	o := &res.Outcome
	o.InputID = cmp.Or(idOf(ev), msgID, "seq-"+strconv.FormatUint(d.StreamSeq, 10))
	o.Object = cmp.Or(o.Object, objectOf(ev), object, UnknownObject)
	if o.Key == nil && ev != nil {
		o.Key = ev.Data.Key
	}
	if o.Operation == "" && ev != nil {
		o.Operation = ev.Data.Operation
	}
	o.Time = time.Now().UTC()
	o.Attempt = d.Attempt
	o.Stream, o.StreamSeq, o.Partition = EventsStream, d.StreamSeq, d.Partition
	o.Worker = c.cfg.Worker
	o.DurationMs = float64(time.Since(started).Microseconds()) / 1000
	o.Final = o.Status.Final()
	// The final outcome's id is the input's message id, so that a republished outcome (after a crash
	// between publishing and acking) is dropped as a duplicate; a replay gets its own message id.
	finalID := cmp.Or(msgID, o.InputID)
	if o.Final {
		o.ID = finalID
	} else {
		o.ID = finalID + "/" + string(o.Status) + "/" + strconv.Itoa(d.Attempt)
	}

	parks := c.cfg.Park != nil && (o.Status == StatusDeferred || o.Status == StatusHeld)
	if parks {
		if err := c.parkHead(ctx, t, o, res.RetryAt); err != nil {
			return c.publishFailed(t, err)
		}
	}
	if o.Status == StatusDeadLettered {
		dl := DeadLetter{
			EventID: o.InputID, MsgID: finalID, Object: o.Object,
			EventSubject: EventsPrefix + "." + object + "." + keyToken,
			StreamSeq:    d.StreamSeq, Attempt: d.Attempt, Payload: msg.Data(),
		}
		if t.subjectErr != nil {
			dl.EventSubject = ""
		}
		if o.Error != nil {
			dl.ErrorClass, dl.Reason = o.Error.Class, o.Error.Message
		}
		if err := c.pub.DeadLetter(ctx, dl); err != nil {
			return c.publishFailed(t, err)
		}
	}
	published := time.Now()
	if err := c.pub.Outcome(ctx, o); err != nil {
		return c.publishFailed(t, err)
	}
	c.observeWrite("outcome", published)
	if res.Settle != nil {
		res.Settle() // the applied record, written meanwhile: stored before the ack
	}
	t.unpublished = nil
	c.count(o.Status)
	if c.cfg.Observe != nil {
		c.cfg.Observe(o, d.Stored, time.Duration(o.DurationMs*float64(time.Millisecond)))
	}
	c.logOutcome(o)

	switch {
	case parks && t.replay != nil:
		return done, time.Time{} // it stays in IDM_PARKED
	case parks:
		// Parked: it leaves the events stream (and MaxAckPending) and waits in IDM_PARKED.
	case o.Status == StatusDeferred || o.Status == StatusHeld:
		// Without a park store the event stays held in memory, and its key's later events behind
		// it, until the next window.
		d.Attempt++
		return wait, cmp.Or(res.RetryAt, time.Now().Add(time.Minute))
	}
	return c.settle(ctx, t)
}

// settle acknowledges t's message once its outcome is published. An ack that fails (the server is
// restarting, the connection is down) is tried again every second while t holds its key: were the
// key to go on, the event would come back after AckWait and run after its successors.
func (c *Consumer) settle(ctx context.Context, t *task) (disposition, time.Time) {
	if err := c.ack(ctx, t.msg); err != nil {
		if !t.acking {
			logTask(c.log.Warn().Err(err), t).Uint64("seq", t.d.StreamSeq).
				Msg("ack failed: its outcome is published; holding its key and acknowledging again every second")
		}
		t.acking = true
		return wait, time.Now().Add(time.Second)
	}
	t.acking = false
	// A parked event run is finished too: a delivery of it from the events stream (its
	// acknowledgement after parking was lost) must not run it again.
	c.keys.acknowledged(t.d.StreamSeq)
	if t.replay != nil {
		c.replayed(ctx, t)
	}
	return done, time.Time{}
}

// ack acknowledges msg and waits for the server to confirm it stored the ack (DoubleAck), so that
// an event whose outcome is published is not silently redelivered because an ack was lost.
func (c *Consumer) ack(ctx context.Context, msg jetstream.Msg) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	started := time.Now()
	if err := msg.DoubleAck(actx); err != nil {
		return err
	}
	c.observeWrite("ack", started)
	return nil
}

// observeWrite tells ObserveWrite how long a round trip that started at started took.
func (c *Consumer) observeWrite(write string, started time.Time) {
	if c.cfg.ObserveWrite != nil {
		c.cfg.ObserveWrite(write, time.Since(started))
	}
}

// handle calls the handler, turning a panic into a dead letter: an event that crashes the handler
// would otherwise be redelivered forever.
func (c *Consumer) handle(ctx context.Context, d *Delivery) (res Result) {
	defer func() {
		if r := recover(); r != nil {
			LogEvent(c.log.Error(), d.Event).Interface("panic", r).Bytes("stack", debug.Stack()).Msg("the handler panicked: dead-lettering the event")
			msg := fmt.Sprintf("the worker panicked processing this event: %v", r)
			res = Result{Outcome: Outcome{
				Status: StatusDeadLettered,
				Error:  &OutcomeError{Class: "internal", Message: msg},
				Reason: msg,
			}}
		}
	}()
	return c.h.Handle(ctx, d)
}

// logOutcome logs what an operator must see at info: deferrals and dead letters.
func (c *Consumer) logOutcome(o *Outcome) {
	var e *zerolog.Event
	switch o.Status {
	case StatusDeadLettered:
		e = c.log.Warn()
	case StatusDeferred, StatusHeld, StatusRejected:
		e = c.log.Info()
	default:
		e = c.log.Debug()
	}
	if !e.Enabled() {
		return
	}
	e = e.Str("event", o.InputID).Str("object", o.Object).Str("key", KeyString(o.Key)).
		Str("operation", o.Operation).Str("status", string(o.Status)).Int("attempt", o.Attempt)
	if o.Error != nil {
		e = e.Str("class", o.Error.Class)
	}
	if !o.NextAttemptAt.IsZero() {
		e = e.Time("nextAttemptAt", o.NextAttemptAt)
	}
	e.Msg(cmp.Or(o.Reason, string(o.Status)))
}

// publishFailed leaves the event to be redelivered: without its outcome it is not done. It is
// retried in process shortly, still holding its key.
func (c *Consumer) publishFailed(t *task, err error) (disposition, time.Time) {
	c.publishErr.Add(1)
	logTask(c.log.Error().Err(err), t).Msg("publishing the outcome failed: trying again in a second")
	return wait, time.Now().Add(time.Second)
}

func (c *Consumer) count(s Status) {
	c.mu.Lock()
	c.byStatus[s]++
	c.mu.Unlock()
}

func idOf(ev *Event) string {
	if ev == nil {
		return ""
	}
	return ev.ID
}

func objectOf(ev *Event) string {
	if ev == nil {
		return ""
	}
	return ev.Data.Object
}

package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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

// Delivery is one delivery of a valid event to the handler.
type Delivery struct {
	Event     *Event
	Subject   string // the stored subject, idm.part.<partition>.<object>.<keytoken>
	Partition int
	StreamSeq uint64
	// Attempt counts deliveries of this event, from 1. Each sync window that redelivers a deferred
	// event adds one, and so does a redelivery after a worker crash.
	Attempt int
}

// Result is the handler's verdict. Outcome.Status decides what the consume loop does:
// succeeded, skipped or rejected: publish the outcome, ack; dead_lettered: publish the dead letter
// and the outcome, ack; deferred: publish the progress outcome and redeliver at RetryAt.
type Result struct {
	Outcome Outcome
	// RetryAt is when a deferred event is delivered again.
	RetryAt time.Time
	// Abandon says processing was interrupted: no outcome, the event is redelivered at once.
	Abandon bool
}

// ConsumerConfig configures the consume loop. The zero value is the documented default.
type ConsumerConfig struct {
	// Name prefixes the durable consumer of each partition: <Name>-p<partition>. Default "scimflow".
	Name string
	// Partitions this worker consumes; nil means every partition of the topology.
	Partitions []int
	// Lanes is how many events are processed at once. Events of one object key always share a
	// lane, which keeps them in order. Default 256.
	Lanes int
	// LaneQueue is how many events may wait for a lane. Default 16.
	LaneQueue int
	// AckWait is how long JetStream waits for an ack before redelivering; the loop extends it while
	// an event is processed. Default 2 minutes.
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged events per partition. Default 1000.
	MaxAckPending int
	// PullBatch is how many events each partition buffers. Default 64.
	PullBatch int
	// DrainTimeout bounds how long a shutdown waits for in-flight events. Default 30 seconds.
	DrainTimeout time.Duration
	// Worker names this worker in outcomes.
	Worker string
	Logger zerolog.Logger
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	c.Name = cmp.Or(c.Name, "scimflow")
	c.Lanes = cmp.Or(c.Lanes, 256)
	c.LaneQueue = cmp.Or(c.LaneQueue, 16)
	c.AckWait = cmp.Or(c.AckWait, 2*time.Minute)
	c.MaxAckPending = cmp.Or(c.MaxAckPending, 1000)
	c.PullBatch = cmp.Or(c.PullBatch, 64)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, 30*time.Second)
	return c
}

// ConsumerStats counts what the loop did since it started.
type ConsumerStats struct {
	Received   int64            `json:"received"`
	InFlight   int64            `json:"inFlight"`
	ByStatus   map[Status]int64 `json:"byStatus"`
	Abandoned  int64            `json:"abandoned"`
	PublishErr int64            `json:"publishErrors"`
}

// Consumer consumes the events stream partition by partition, runs each event through the handler
// on the lane of its object key, and publishes one outcome per event before acknowledging it.
type Consumer struct {
	js   jetstream.JetStream
	topo Topology
	cfg  ConsumerConfig
	h    Handler
	pub  *Publisher
	log  zerolog.Logger

	received, inFlight, abandoned, publishErr atomic.Int64
	mu                                        sync.Mutex
	byStatus                                  map[Status]int64
}

// NewConsumer returns a consume loop; Run starts it.
func NewConsumer(js jetstream.JetStream, topo Topology, cfg ConsumerConfig, h Handler) *Consumer {
	cfg = cfg.withDefaults()
	return &Consumer{
		js: js, topo: topo, cfg: cfg, h: h,
		pub:      NewPublisher(js),
		log:      cfg.Logger,
		byStatus: map[Status]int64{},
	}
}

// Stats returns a copy of the counters.
func (c *Consumer) Stats() ConsumerStats {
	c.mu.Lock()
	by := make(map[Status]int64, len(c.byStatus))
	for k, v := range c.byStatus {
		by[k] = v
	}
	c.mu.Unlock()
	return ConsumerStats{
		Received: c.received.Load(), InFlight: c.inFlight.Load(), ByStatus: by,
		Abandoned: c.abandoned.Load(), PublishErr: c.publishErr.Load(),
	}
}

// ConsumerName is the durable name of a partition's consumer.
func (c *Consumer) ConsumerName(partition int) string {
	return c.cfg.Name + "-p" + strconv.Itoa(partition)
}

// Run consumes until ctx is cancelled, then shuts down in order: it stops pulling, lets in-flight
// events finish within DrainTimeout (after which they are abandoned and redelivered), and returns.
func (c *Consumer) Run(ctx context.Context) error {
	partitions := c.cfg.Partitions
	if partitions == nil {
		for p := range c.topo.PartitionCount() {
			partitions = append(partitions, p)
		}
	}
	// Work outlives ctx: in-flight events finish after a shutdown signal, until the drain deadline.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	lanes := make([]chan jetstream.Msg, c.cfg.Lanes)
	var lanesDone sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan jetstream.Msg, c.cfg.LaneQueue)
		lanesDone.Add(1)
		go func(in <-chan jetstream.Msg) {
			defer lanesDone.Done()
			for msg := range in {
				c.process(workCtx, msg)
			}
		}(lanes[i])
	}
	closeLanes := func() {
		for _, l := range lanes {
			close(l)
		}
	}

	route := func(msg jetstream.Msg) {
		if workCtx.Err() != nil {
			_ = msg.Nak()
			return
		}
		c.received.Add(1)
		select {
		case lanes[laneOf(msg.Subject(), len(lanes))] <- msg:
		case <-workCtx.Done():
			_ = msg.Nak()
		}
	}

	var running []jetstream.ConsumeContext
	stopAll := func() {
		for _, cc := range running {
			cc.Drain()
		}
		for _, cc := range running {
			<-cc.Closed()
		}
	}
	for _, p := range partitions {
		cons, err := c.js.CreateOrUpdateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{
			Durable:       c.ConsumerName(p),
			Description:   fmt.Sprintf("scimflow worker, partition %d", p),
			FilterSubject: PartitionSubject(p),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       c.cfg.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: c.cfg.MaxAckPending,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err != nil {
			stopAll()
			closeLanes()
			lanesDone.Wait()
			return fmt.Errorf("create consumer for partition %d: %w", p, err)
		}
		cc, err := cons.Consume(route,
			jetstream.PullMaxMessages(c.cfg.PullBatch),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if !errors.Is(err, jetstream.ErrConsumerDeleted) {
					c.log.Warn().Err(err).Int("partition", p).Msg("consume")
				}
			}))
		if err != nil {
			stopAll()
			closeLanes()
			lanesDone.Wait()
			return fmt.Errorf("consume partition %d: %w", p, err)
		}
		running = append(running, cc)
	}
	c.log.Info().Ints("partitions", partitions).Int("lanes", len(lanes)).Msg("consuming")

	<-ctx.Done()
	c.log.Info().Dur("deadline", c.cfg.DrainTimeout).Msg("draining: intake stopped, finishing in-flight events")
	deadline := time.AfterFunc(c.cfg.DrainTimeout, cancelWork)
	defer deadline.Stop()
	stopAll()
	closeLanes()
	lanesDone.Wait()
	if workCtx.Err() != nil {
		c.log.Warn().Int64("abandoned", c.abandoned.Load()).Msg("drain deadline passed: unfinished events will be redelivered")
	}
	return nil
}

func laneOf(subject string, n int) int {
	h := fnv.New32a()
	// Partition, object and key token identify the key; the whole subject does too.
	h.Write([]byte(subject))
	return int(h.Sum32() % uint32(n))
}

// process runs one message through decode, the handler and the outcome publication, then acks.
func (c *Consumer) process(ctx context.Context, msg jetstream.Msg) {
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	if ctx.Err() != nil {
		c.abandoned.Add(1)
		_ = msg.Nak()
		return
	}
	started := time.Now()
	_ = msg.InProgress()
	stopKeepAlive := keepAlive(msg, c.cfg.AckWait)
	defer stopKeepAlive()

	d := &Delivery{Subject: msg.Subject(), Attempt: 1}
	if md, err := msg.Metadata(); err == nil {
		d.StreamSeq = md.Sequence.Stream
		d.Attempt = int(md.NumDelivered)
	}
	partition, object, keyToken, subjErr := ParsePartitioned(msg.Subject())
	d.Partition = partition
	msgID := msg.Headers().Get(HeaderMsgID)

	ev, decodeErr := Decode(msg.Data())
	if decodeErr == nil && subjErr == nil && (SubjectToken(ev.Data.Object) != object || KeyToken(ev.Data.Key) != keyToken) {
		decodeErr = &DecodeError{Reason: fmt.Sprintf("published on the subject of another object or key: subject says %s/%s, data says %s/%s",
			object, keyToken, SubjectToken(ev.Data.Object), KeyToken(ev.Data.Key))}
	}
	var res Result
	if decodeErr != nil || subjErr != nil {
		err := cmp.Or(decodeErr, subjErr)
		res = Result{Outcome: Outcome{
			Status: StatusDeadLettered,
			Error:  &OutcomeError{Class: "invalid", Message: err.Error()},
			Reason: "the event is malformed: " + err.Error(),
		}}
		if ev != nil {
			res.Outcome.Operation = ev.Data.Operation
			res.Outcome.Key = ev.Data.Key
		}
	} else {
		d.Event = ev
		res = c.h.Handle(ctx, d)
	}
	if res.Abandon {
		c.abandoned.Add(1)
		_ = msg.Nak()
		return
	}

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

	if o.Status == StatusDeadLettered {
		dl := DeadLetter{
			EventID: o.InputID, MsgID: finalID, Object: o.Object,
			EventSubject: EventsPrefix + "." + object + "." + keyToken,
			StreamSeq:    d.StreamSeq, Attempt: d.Attempt, Payload: msg.Data(),
		}
		if subjErr != nil {
			dl.EventSubject = ""
		}
		if o.Error != nil {
			dl.ErrorClass, dl.Reason = o.Error.Class, o.Error.Message
		}
		if err := c.pub.DeadLetter(ctx, dl); err != nil {
			c.publishFailed(msg, err)
			return
		}
	}
	if err := c.pub.Outcome(ctx, o); err != nil {
		c.publishFailed(msg, err)
		return
	}
	c.count(o.Status)

	if o.Status == StatusDeferred {
		delay := time.Until(res.RetryAt)
		if delay < time.Second {
			delay = time.Second
		}
		_ = msg.NakWithDelay(delay)
		return
	}
	if err := msg.Ack(); err != nil {
		c.log.Warn().Err(err).Str("event", o.InputID).Msg("ack failed: the event will be redelivered and its outcome deduplicated")
	}
}

// publishFailed leaves the event to be redelivered: without its outcome it is not done.
func (c *Consumer) publishFailed(msg jetstream.Msg, err error) {
	c.publishErr.Add(1)
	c.log.Error().Err(err).Str("subject", msg.Subject()).Msg("publishing the outcome failed: the event will be redelivered")
	_ = msg.NakWithDelay(time.Second)
}

func (c *Consumer) count(s Status) {
	c.mu.Lock()
	c.byStatus[s]++
	c.mu.Unlock()
}

// keepAlive tells JetStream the message is still being worked on, every third of ackWait, until the
// returned function is called.
func keepAlive(msg jetstream.Msg, ackWait time.Duration) func() {
	done := make(chan struct{})
	t := time.NewTicker(ackWait / 3)
	go func() {
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
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

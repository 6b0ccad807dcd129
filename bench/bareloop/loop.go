package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/events"
)

// Config is the loop's configuration; every field but NATS and Target has a default in run.
type Config struct {
	NATS, Target           string
	ClientID, ClientSecret string
	Name                   string
	Partitions             int
	Concurrency            int
	// MaxInFlight > 0 bounds the SCIM requests in flight: set to a target's concurrency cap, it is
	// the fixed limit a person would configure knowing the cap.
	MaxInFlight int
}

// Loop is the bare consume loop.
type Loop struct {
	cfg  Config
	scim *scimClient
}

// NewLoop checks cfg and returns a loop.
func NewLoop(cfg Config) (*Loop, error) {
	switch {
	case cfg.NATS == "":
		return nil, errors.New("-nats: the NATS URL is required")
	case cfg.Target == "":
		return nil, errors.New("-target: the simulator's base URL is required")
	case cfg.Partitions < 1:
		return nil, fmt.Errorf("-partitions %d: must be at least 1", cfg.Partitions)
	case cfg.Concurrency < 1:
		return nil, fmt.Errorf("-concurrency %d: must be at least 1", cfg.Concurrency)
	case cfg.MaxInFlight < 0:
		return nil, fmt.Errorf("-max-in-flight %d: must not be negative", cfg.MaxInFlight)
	}
	return &Loop{cfg: cfg, scim: newSCIMClient(cfg)}, nil
}

// event is what the loop reads of an event: the CloudEvents id and the change.
type event struct {
	ID   string `json:"id"`
	Data struct {
		Object     string         `json:"object"`
		Operation  string         `json:"operation"`
		Key        map[string]any `json:"key"`
		Attributes map[string]any `json:"attributes"`
	} `json:"data"`
}

// outcome is the loop's outcome: the fields the benchmark reads, named as the worker names them.
type outcome struct {
	ID        string `json:"id"`
	InputID   string `json:"inputId"`
	Time      string `json:"time"`
	Object    string `json:"object"`
	Operation string `json:"operation"`
	Status    string `json:"status"`
	Final     bool   `json:"final"`
	TargetID  string `json:"targetId,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Run binds a consumer per partition, calls ready, and consumes until ctx ends; then it stops
// pulling and lets the events in hand finish.
func (l *Loop) Run(ctx context.Context, ready func()) error {
	nc, err := nats.Connect(l.cfg.NATS, nats.Name(l.cfg.Name))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", l.cfg.NATS, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := l.scim.token(ctx); err != nil {
		return err
	}
	shards := make([]chan jetstream.Msg, l.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range shards {
		shards[i] = make(chan jetstream.Msg, 64)
		wg.Add(1)
		go func(in <-chan jetstream.Msg) {
			defer wg.Done()
			for msg := range in {
				l.handle(context.WithoutCancel(ctx), js, msg)
			}
		}(shards[i])
	}
	route := func(msg jetstream.Msg) {
		// The stored subject ends with the key token: one key, one goroutine, stream order.
		subj := msg.Subject()
		h := fnv.New32a()
		h.Write([]byte(subj[strings.LastIndexByte(subj, '.')+1:]))
		shards[h.Sum32()%uint32(len(shards))] <- msg
	}
	var ccs []jetstream.ConsumeContext
	stopAll := func() {
		for _, cc := range ccs {
			cc.Drain()
		}
		for _, cc := range ccs {
			<-cc.Closed()
		}
		for _, s := range shards {
			close(s)
		}
		wg.Wait()
	}
	for p := range l.cfg.Partitions {
		cons, err := js.CreateOrUpdateConsumer(ctx, events.EventsStream, jetstream.ConsumerConfig{
			Durable:       l.cfg.Name + "-p" + strconv.Itoa(p),
			FilterSubject: events.PartitionSubject(p),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       30 * time.Second,
			MaxAckPending: 1000,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err != nil {
			stopAll()
			return fmt.Errorf("create consumer for partition %d: %w", p, err)
		}
		cc, err := cons.Consume(route, jetstream.PullMaxMessages(64))
		if err != nil {
			stopAll()
			return fmt.Errorf("consume partition %d: %w", p, err)
		}
		ccs = append(ccs, cc)
	}
	ready()
	<-ctx.Done()
	stopAll()
	return nil
}

// handle runs one event: decode, SCIM calls, outcome, ack. A failure becomes a dead_lettered
// outcome naming it; only a failed outcome publish leaves the event unacknowledged.
func (l *Loop) handle(ctx context.Context, js jetstream.JetStream, msg jetstream.Msg) {
	var ev event
	o := outcome{Status: "succeeded", Final: true}
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		o.Status, o.Reason = "dead_lettered", "decode: "+err.Error()
	} else {
		id, err := l.apply(ctx, &ev)
		o.TargetID = id
		if errors.Is(err, errNotYet) {
			if md, merr := msg.Metadata(); merr == nil && md.NumDelivered < 50 {
				_ = msg.NakWithDelay(100 * time.Millisecond) // again in a moment, not holding this goroutine
				return
			}
		}
		if err != nil {
			o.Status, o.Reason = "dead_lettered", err.Error()
		}
	}
	o.ID, o.InputID, o.Object, o.Operation = ev.ID, ev.ID, ev.Data.Object, ev.Data.Operation
	o.Time = time.Now().UTC().Format(time.RFC3339Nano)
	raw, _ := json.Marshal(o) // a struct of strings and a bool: cannot fail
	out := nats.NewMsg(events.OutcomesPrefix + "." + events.SubjectToken(o.Object) + "." + o.Status)
	out.Data = raw
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := js.PublishMsg(pctx, out, jetstream.WithMsgID("outcome/"+o.ID))
	cancel()
	if err != nil {
		_ = msg.Nak()
		return
	}
	_ = msg.Ack()
}

// apply makes the SCIM calls of one event and returns the target id.
func (l *Loop) apply(ctx context.Context, ev *event) (string, error) {
	d := ev.Data
	switch {
	case d.Object == "User" && d.Operation == events.OpCreate:
		userName, _ := d.Key["userName"].(string)
		return l.scim.createUser(ctx, userName, d.Attributes)
	case d.Object == "User" && d.Operation == events.OpUpdate:
		userName, _ := d.Key["userName"].(string)
		id, err := l.scim.resolve(ctx, "Users", "userName", userName)
		if err != nil {
			return "", err
		}
		return id, l.scim.patchUser(ctx, id, d.Attributes)
	case d.Object == "Group" && (d.Operation == events.OpCreate || d.Operation == events.OpAddAssignment):
		name, _ := d.Key["displayName"].(string)
		var members []string
		list, _ := d.Attributes["members[].value"].([]any)
		for _, m := range list {
			userName, _ := m.(string)
			id, err := l.scim.resolve(ctx, "Users", "userName", userName)
			if err != nil {
				return "", fmt.Errorf("member %q: %w", userName, err)
			}
			members = append(members, id)
		}
		if d.Operation == events.OpCreate {
			return l.scim.createGroup(ctx, name, members)
		}
		id, err := l.scim.resolve(ctx, "Groups", "displayName", name)
		if err != nil {
			return "", err
		}
		return id, l.scim.addMembers(ctx, id, members)
	}
	return "", fmt.Errorf("%s %s: the bare loop does not handle it", d.Object, d.Operation)
}

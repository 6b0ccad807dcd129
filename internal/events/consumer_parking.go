package events

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// ControlSubject is where `worker parked retry` and `worker deletes approve|reject` ask the workers
// that own the keys to act; every worker answers with what it did.
const ControlSubject = "idm.ctl.parked"

// Control is a request on ControlSubject.
type Control struct {
	Op       string   `json:"op"`       // retry, approve, reject
	Subjects []string `json:"subjects"` // stored subjects of the keys; empty with All
	All      bool     `json:"all"`
	// By says who asked (the command and host, or the HTTP client), for the provisioning log.
	By string `json:"by,omitempty"`
}

// ControlReply is one worker's answer.
type ControlReply struct {
	Worker string   `json:"worker"`
	Keys   []string `json:"keys"` // the stored subjects it acted on
}

// parkedKey is the consume loop's view of a parked key of a partition it owns.
type parkedKey struct {
	state     KeyState
	gen       int  // replay generation: tasks of an earlier replay are skipped
	replaying bool // its parked events are queued to run now
	aborted   bool // its head was deferred again during this replay: the rest stays parked
	approve   bool // the held delete at its head is approved
	reject    bool // the held delete at its head is rejected
	// following counts the events being parked behind it now (parkFollower, between looking the
	// key up and storing the event); unparking is set while it is being unparked. A key is
	// unparked only when nothing follows it, and an event that arrives while it is being unparked
	// waits: otherwise an event stored in IDM_PARKED just after the key was found empty was left
	// there with no state to be found by, and the key's next events ran ahead of it (the chaos
	// suite: IDM_KEYSTATE's delete 1.4 ms after the follower's write).
	following int
	unparking bool
}

// parking is the consume loop's parked keys, mirrored from IDM_KEYSTATE for the partitions it owns.
type parking struct {
	mu   sync.Mutex
	keys map[string]*parkedKey // by stored subject
}

func (c *Consumer) parkedState(subject string) *parkedKey {
	c.parking.mu.Lock()
	defer c.parking.mu.Unlock()
	return c.parking.keys[subject]
}

// follow looks up the parked state of an event's key for the event to be parked behind it, and
// counts the event as following it until unfollow; busy says the key is being unparked (the event
// waits and asks again).
func (c *Consumer) follow(subject string) (pk *parkedKey, busy bool) {
	c.parking.mu.Lock()
	defer c.parking.mu.Unlock()
	pk = c.parking.keys[subject]
	switch {
	case pk == nil:
		return nil, false
	case pk.unparking:
		return nil, true
	}
	pk.following++
	return pk, false
}

func (c *Consumer) unfollow(pk *parkedKey) {
	c.parking.mu.Lock()
	pk.following--
	c.parking.mu.Unlock()
}

// reloadParked reads the parked keys of partition p afresh, when this worker starts running it.
func (c *Consumer) reloadParked(ctx context.Context, p int) error {
	if c.cfg.Park == nil {
		return nil
	}
	states, err := c.cfg.Park.States(ctx, p)
	if err != nil {
		return err
	}
	c.dropParked(p)
	c.parking.mu.Lock()
	defer c.parking.mu.Unlock()
	for _, st := range states {
		c.parking.keys[st.Subject] = &parkedKey{state: *st}
	}
	return nil
}

// mergeParked adds the parked keys of partition p this worker does not know of (parked by
// another worker meanwhile), and leaves the ones it knows alone: it may be replaying them.
func (c *Consumer) mergeParked(ctx context.Context, p int) error {
	if c.cfg.Park == nil {
		return nil
	}
	states, err := c.cfg.Park.States(ctx, p)
	if err != nil {
		return err
	}
	c.parking.mu.Lock()
	defer c.parking.mu.Unlock()
	for _, st := range states {
		if c.parking.keys[st.Subject] == nil {
			c.parking.keys[st.Subject] = &parkedKey{state: *st}
		}
	}
	return nil
}

// dropParked forgets the parked keys of partition p (when this worker hands it over).
func (c *Consumer) dropParked(p int) {
	c.parking.mu.Lock()
	defer c.parking.mu.Unlock()
	for s := range c.parking.keys {
		if sp, _, _, err := ParsePartitioned(s); err == nil && sp == p {
			delete(c.parking.keys, s)
		}
	}
}

// parkFollower parks an event of a key that is parked: it waits behind the key's parked events.
// pk counts it as following (follow) until it is stored.
func (c *Consumer) parkFollower(ctx context.Context, t *task, pk *parkedKey) (disposition, time.Time) {
	msg, d := t.msg, t.d
	msgID := cmp.Or(msg.Headers().Get(HeaderMsgID), t.ev.ID)
	err := c.cfg.Park.Park(ctx, d.Subject, d.StreamSeq, d.Stored, msgID, msg.Data(), msg.Headers())
	c.unfollow(pk)
	if err != nil {
		return c.publishFailed(t, err)
	}
	c.parking.mu.Lock()
	head, hold, next := pk.state.HeadEvent, pk.state.Hold, pk.state.NextWindow
	c.parking.mu.Unlock()
	status := StatusDeferred
	reason := "parked behind " + head + ", which waits for the next sync window"
	if hold == HoldDelete {
		status, reason = StatusHeld, "parked behind "+head+", a delete held by the deletion guard"
	}
	o := &Outcome{
		ID: msgID + "/" + string(status) + "/parked", InputID: t.ev.ID, Time: time.Now().UTC(),
		Object: t.ev.Data.Object, Key: t.ev.Data.Key, Operation: t.ev.Data.Operation, Status: status,
		Reason: reason, Attempt: d.Attempt, NextAttemptAt: next, Stream: EventsStream, StreamSeq: d.StreamSeq,
		Partition: d.Partition, Worker: c.cfg.Worker,
	}
	published := time.Now()
	if err := c.pub.Outcome(ctx, o); err != nil {
		return c.publishFailed(t, err)
	}
	c.observeWrite("outcome", published)
	c.count(status)
	if c.cfg.Observe != nil {
		c.cfg.Observe(o, d.Stored, 0)
	}
	c.parkedCount.Add(1)
	return c.settle(ctx, t)
}

// parkHead parks a key whose event was deferred (or held): the event waits in IDM_PARKED, and the
// key's later events behind it, until the next sync window (or an operator). It returns whether
// the message must still be acknowledged (an event of IDM_EVENTS) or stays (a parked one).
func (c *Consumer) parkHead(ctx context.Context, t *task, o *Outcome, retryAt time.Time) error {
	d := t.d
	hold := HoldWindow
	if o.Status == StatusHeld {
		hold, retryAt = HoldDelete, time.Time{}
	}
	st := KeyState{
		Subject: d.Subject, Object: o.Object, Key: o.Key, Hold: hold, HeadSeq: d.StreamSeq, HeadEvent: o.InputID,
		Windows: d.Attempt, Reason: o.Reason, Since: time.Now().UTC(), NextWindow: retryAt,
	}
	if hold == HoldDelete {
		st.Windows = 0
	}
	if prev := c.parkedState(d.Subject); prev != nil {
		c.parking.mu.Lock()
		st.Since = prev.state.Since
		c.parking.mu.Unlock()
	}
	// The state first: a crash after it re-parks the redelivered event (deduplicated), never runs it
	// ahead of the parked ones.
	if err := c.cfg.Park.SetState(ctx, &st); err != nil {
		return err
	}
	if t.replay == nil {
		msgID := cmp.Or(t.msg.Headers().Get(HeaderMsgID), o.InputID)
		if err := c.cfg.Park.Park(ctx, d.Subject, d.StreamSeq, d.Stored, msgID, t.msg.Data(), t.msg.Headers()); err != nil {
			return err
		}
	}
	c.parking.mu.Lock()
	pk := c.parking.keys[d.Subject]
	if pk == nil {
		pk = &parkedKey{}
		c.parking.keys[d.Subject] = pk
	}
	pk.state = st
	if t.replay != nil {
		pk.aborted = true // the rest of this replay stays parked for the next window
	}
	pk.replaying = false
	pk.approve, pk.reject = false, false
	c.parking.mu.Unlock()
	c.parkedCount.Add(1)
	return nil
}

// replayTask says what to do with a parked event before it runs: skip it (its replay was aborted:
// it stays parked), reject it (an operator rejected the held delete at the head), or run it.
func (c *Consumer) replayTask(t *task) (skip, reject bool) {
	c.parking.mu.Lock()
	defer c.parking.mu.Unlock()
	pk := c.parking.keys[t.d.Subject]
	if pk == nil {
		return false, false
	}
	if pk.aborted || t.replay.gen != pk.gen {
		return true, false
	}
	if t.d.StreamSeq == pk.state.HeadSeq {
		t.d.Approved = pk.approve
		return false, pk.reject
	}
	return false, false
}

// replayed is called once a parked event has its final outcome; after the last one queued it looks
// for events parked meanwhile, queues them, or unparks the key.
func (c *Consumer) replayed(ctx context.Context, t *task) {
	if !t.replay.last {
		return
	}
	subject := t.d.Subject
	c.parking.mu.Lock()
	pk := c.parking.keys[subject]
	aborted := pk == nil || pk.aborted || pk.gen != t.replay.gen
	c.parking.mu.Unlock()
	if aborted {
		return
	}
	c.startReplay(ctx, subject, true)
}

// startReplay queues the parked events of a key to run now, in order, ahead of anything newer it
// holds; a key with nothing parked is unparked.
//
// Only a partition this worker runs is replayed: not while it waits for the events its previous
// owner held (that owner may still be replaying the same key), nor once it is being handed over.
func (c *Consumer) startReplay(ctx context.Context, subject string, continuing bool) {
	p, _, _, _ := ParsePartitioned(subject)
	if !c.keys.runs(p) {
		c.parking.mu.Lock()
		if pk := c.parking.keys[subject]; pk != nil {
			pk.replaying = false
		}
		c.parking.mu.Unlock()
		return
	}
	evs, err := c.cfg.Park.Parked(ctx, subject)
	if err != nil {
		c.parking.mu.Lock()
		st := KeyState{Subject: subject}
		if pk := c.parking.keys[subject]; pk != nil {
			st = pk.state
		}
		c.parking.mu.Unlock()
		logKey(c.log.Warn().Err(err), st).Msg("reading parked events: trying again shortly")
		c.parking.mu.Lock()
		if pk := c.parking.keys[subject]; pk != nil {
			pk.replaying = false
			pk.state.NextWindow = time.Now().Add(5 * time.Second)
		}
		c.parking.mu.Unlock()
		return
	}
	c.parking.mu.Lock()
	pk := c.parking.keys[subject]
	if pk == nil {
		c.parking.mu.Unlock()
		return
	}
	if len(evs) == 0 {
		if pk.following > 0 {
			// An event is being parked behind it: look again shortly.
			pk.replaying = false
			pk.state.NextWindow = time.Now().Add(250 * time.Millisecond)
			c.parking.mu.Unlock()
			return
		}
		// From here on an event of the key waits until it is unparked (follow), and one parked
		// before (its write done after the read above) is found by reading again.
		pk.unparking = true
		st := pk.state
		c.parking.mu.Unlock()
		evs, err = c.cfg.Park.Parked(ctx, subject)
		if err == nil && len(evs) == 0 {
			err = c.cfg.Park.Unpark(ctx, subject, st.Revision)
		}
		c.parking.mu.Lock()
		pk.unparking = false
		switch {
		case err == nil && len(evs) == 0:
			if c.parking.keys[subject] == pk {
				delete(c.parking.keys, subject)
			}
			c.parking.mu.Unlock()
			logKey(c.log.Info(), st).Msg("key unparked: its events flow again")
			return
		case errors.Is(err, ErrParkedAgain):
			// Parked anew by the partition's next owner while this worker let go of it.
			pk.replaying = false
			c.parking.mu.Unlock()
			logKey(c.log.Info(), st).Msg("not unparking: parked again meanwhile")
			return
		case err != nil:
			pk.replaying = false
			pk.state.NextWindow = time.Now().Add(5 * time.Second)
			c.parking.mu.Unlock()
			logKey(c.log.Warn().Err(err), st).Msg("unparking: trying again shortly")
			return
		}
		// Events were parked behind it meanwhile: replay them.
	}
	pk.replaying, pk.aborted = true, false
	pk.gen++
	gen := pk.gen
	head := pk.state
	c.parking.mu.Unlock()
	if !continuing {
		logKey(c.log.Info(), head).Str("event", head.HeadEvent).Int("events", len(evs)).Msg("sync window: replaying a parked key")
	}
	tasks := make([]*task, len(evs))
	for i, pe := range evs {
		// Stored is when IDM_EVENTS stored the event, not when it was parked: an event delivered
		// again after it was applied (its acknowledgement lost) and parked behind its key is
		// checked against what was applied since (Processor.superseded) like any redelivery.
		d := &Delivery{Subject: subject, StreamSeq: pe.StreamSeq, Stored: cmp.Or(pe.Stored, pe.Parked), Attempt: 1, Redelivered: true}
		if pe.StreamSeq == head.HeadSeq && head.Hold == HoldWindow {
			d.Attempt = head.Windows + 1
		}
		tasks[i] = &task{msg: &parkedMsg{store: c.cfg.Park, pe: pe}, d: d, partition: p,
			replay: &replayInfo{last: i == len(evs)-1, gen: gen}}
	}
	for _, t := range c.keys.prepend(subject, p, tasks) {
		c.duplicates.Add(1)
		if err := t.msg.Ack(); err != nil {
			logTask(c.log.Debug().Err(err), t).Uint64("seq", t.d.StreamSeq).Msg("acknowledging an event delivered again after it was parked")
		}
	}
}

// windows runs parked keys whose window has come (or that an operator released), until ctx ends.
func (c *Consumer) windows(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var due []string
		var window time.Time
		if c.cfg.Windows != nil {
			window = c.cfg.Windows.Next(now)
		}
		c.parking.mu.Lock()
		for s, pk := range c.parking.keys {
			if pk.replaying {
				continue
			}
			if pk.state.Hold == HoldWindow && !window.IsZero() && pk.state.NextWindow.After(window) {
				pk.state.NextWindow = window // the schedule changed to shorter windows
			}
			release := pk.approve || pk.reject
			if pk.state.Hold == HoldWindow && !pk.state.NextWindow.After(now) || release {
				due = append(due, s)
			}
		}
		c.parking.mu.Unlock()
		slices.Sort(due)
		for _, s := range due {
			if ctx.Err() != nil {
				return
			}
			c.startReplay(ctx, s, false)
		}
	}
}

// control answers `worker parked retry` and `worker deletes approve|reject` for the keys it owns.
func (c *Consumer) control(m *nats.Msg) {
	var req Control
	if err := json.Unmarshal(m.Data, &req); err != nil {
		return
	}
	var acted []string
	var notes []*HistoryNote
	c.parking.mu.Lock()
	for s, pk := range c.parking.keys {
		if !req.All && !slices.Contains(req.Subjects, s) {
			continue
		}
		switch req.Op {
		case "retry":
			if pk.state.Hold == HoldWindow {
				detail := fmt.Sprintf("parked key run now instead of at the window of %s", pk.state.NextWindow.UTC().Format(time.RFC3339))
				pk.state.NextWindow = time.Now()
				acted = append(acted, s)
				notes = append(notes, controlNote(NoteRetry, &pk.state, req.By, c.cfg.Worker, detail))
			}
		case "approve", "reject":
			if pk.state.Hold == HoldDelete {
				pk.approve, pk.reject = req.Op == "approve", req.Op == "reject"
				acted = append(acted, s)
				kind, what := NoteApprove, "approved: it runs now"
				if req.Op == "reject" {
					kind, what = NoteReject, "rejected: it ends rejected, nothing is sent"
				}
				notes = append(notes, controlNote(kind, &pk.state, req.By, c.cfg.Worker, "the held delete was "+what))
			}
		}
	}
	c.parking.mu.Unlock()
	if c.cfg.Note != nil {
		for _, n := range notes {
			c.cfg.Note(n)
		}
	}
	slices.Sort(acted)
	raw, _ := json.Marshal(ControlReply{Worker: c.cfg.Worker, Keys: acted})
	if m.Reply != "" {
		_ = m.Respond(raw)
	}
	if len(acted) > 0 {
		c.log.Info().Str("op", req.Op).Int("keys", len(acted)).Msg("operator request on parked keys")
	}
}

// controlNote is the provisioning log's note of an operator's request on a parked or held key.
func controlNote(kind string, st *KeyState, by, worker, detail string) *HistoryNote {
	return &HistoryNote{Kind: kind, Time: time.Now().UTC(), Object: st.Object, Key: st.Key, Event: st.HeadEvent,
		By: cmp.Or(by, "an operator"), Worker: worker, Detail: detail}
}

// ParkedKeys counts the parked keys this worker owns.
func (c *Consumer) ParkedKeys() int {
	n, _ := c.parkedCounts()
	return n
}

// parkedCounts counts the parked keys this worker owns, and those of them whose delete is held.
func (c *Consumer) parkedCounts() (parked, held int) {
	c.parking.mu.Lock()
	defer c.parking.mu.Unlock()
	for _, pk := range c.parking.keys {
		if pk.state.Hold == HoldDelete {
			held++
		}
	}
	return len(c.parking.keys), held
}

// replayInfo marks a task as a parked event being replayed.
type replayInfo struct {
	last bool // the last of the parked events queued in this batch
	gen  int  // the replay it belongs to
}

// RequestControl asks every running worker to act on parked keys and gathers their answers for
// up to wait (each worker answers once).
func RequestControl(ctx context.Context, nc *nats.Conn, req Control, wait time.Duration) ([]ControlReply, error) {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	raw, _ := json.Marshal(req)
	if err := nc.PublishRequest(ControlSubject, inbox, raw); err != nil {
		return nil, err
	}
	if err := nc.Flush(); err != nil {
		return nil, err
	}
	var out []ControlReply
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return out, nil
		}
		m, err := sub.NextMsg(left)
		if err != nil {
			return out, nil // the wait is over
		}
		var r ControlReply
		if json.Unmarshal(m.Data, &r) == nil {
			out = append(out, r)
		}
	}
}

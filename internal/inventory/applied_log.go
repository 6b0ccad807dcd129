package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scimflow/scimflow/internal/ablate"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/pipeline"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// AppliedBucket (KV) holds, per object key, what the worker last applied to it.
const AppliedBucket = "IDM_APPLIED"

// keptStates is how many of the latest states an applied record keeps: an inventory that read an
// object just before one of our writes still recognises the state it read as ours.
const keptStates = 4

// AppliedRecord is what the worker last did to one object key.
type AppliedRecord struct {
	Object    string         `json:"object"`
	Key       map[string]any `json:"key"`
	EventID   string         `json:"eventId"`
	StreamSeq uint64         `json:"streamSeq,omitempty"` // the event's sequence in the events stream
	Operation string         `json:"operation"`
	At        time.Time      `json:"at"`
	TargetID  string         `json:"targetId,omitempty"`
	// Deleted: our last write deleted the object.
	Deleted bool `json:"deleted,omitempty"`
	// Partial: the last event written is not finished (a follow-up is still to be written).
	Partial bool `json:"partial,omitempty"`
	// States are the managed attributes' hashes our latest writes left behind, newest first; a
	// state without hashes is a write whose answer carried no resource (204).
	States []AppliedState `json:"states,omitempty"`
	// Attributes are the values our events gave each property, by data-model name, latest wins:
	// what a revert sets back.
	Attributes map[string]any `json:"attributes,omitempty"`
}

// AppliedState is the object as one of our writes left it.
type AppliedState struct {
	EventID string            `json:"eventId"`
	At      time.Time         `json:"at"`
	Hashes  map[string]uint64 `json:"hashes,omitempty"`

	encoded []byte   // the state's JSON once written (see appendJSON): a record keeps up to keptStates
	names   []string // Hashes' names sorted, when the writer knows them (its shape's); else sorted when encoded
}

// AppliedLog records the worker's own writes (the pipeline's hook) and answers the inventory's
// question "whose change was it".
//
// It remembers the records it wrote (up to memoSize keys, about 1 KB each), with their revisions, so that the next
// write of a key needs no read: each write is conditional on the revision it builds on, so a record
// another worker wrote meanwhile (a partition handed over and back) fails the write, and the key is
// read afresh.
type AppliedLog struct {
	kv     jetstream.KeyValue
	shapes map[string]*shape
	log    zerolog.Logger
	now    func() time.Time
	// observe, when set, is told how long each write of a record took (ObserveWrites).
	observe func(time.Duration)

	mu   sync.Mutex
	memo map[string]memoRecord
}

// ObserveWrites has f told how long each write of a record took, until the server stored it
// (metrics). Call it before the log is used.
func (l *AppliedLog) ObserveWrites(f func(time.Duration)) { l.observe = f }

// memoRecord is a record as this process last wrote or read it, at its revision.
type memoRecord struct {
	rec *AppliedRecord
	rev uint64
}

// memoSize bounds the records AppliedLog remembers; past it, it starts over (a read per key).
const memoSize = 20_000

var _ pipeline.AppliedRecorder = (*AppliedLog)(nil)

// OpenAppliedLog creates or opens the bucket. model names the objects whose writes are hashed.
func OpenAppliedLog(ctx context.Context, js jetstream.JetStream, replicas int, model *reconcile.Model, log zerolog.Logger) (*AppliedLog, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: AppliedBucket, Description: "scimflow: what the worker last applied per object key",
		History: 1, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", AppliedBucket, err)
	}
	l := &AppliedLog{kv: kv, shapes: map[string]*shape{}, log: log, now: time.Now, memo: map[string]memoRecord{}}
	for _, o := range model.Objects() {
		if len(o.Keys()) == 0 {
			continue
		}
		if shs, err := shapesOf(model, []string{o.Name()}); err == nil {
			l.shapes[o.Name()] = shs[0]
		}
	}
	return l, nil
}

func appliedKey(object string, key map[string]any) string {
	return events.SubjectToken(object) + "." + events.KeyToken(key)
}

// Get returns the record of a key, nil when the worker never wrote it.
func (l *AppliedLog) Get(ctx context.Context, object string, key map[string]any) (*AppliedRecord, error) {
	rec, _, err := l.get(ctx, appliedKey(object, key))
	return rec, err
}

func (l *AppliedLog) get(ctx context.Context, k string) (*AppliedRecord, uint64, error) {
	e, err := l.kv.Get(ctx, k)
	if notFound(err) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read applied record: %w", err)
	}
	var r AppliedRecord
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, e.Revision(), nil // damaged: overwritten by the next write
	}
	return &r, e.Revision(), nil
}

func (l *AppliedLog) remembered(k string) (memoRecord, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, ok := l.memo[k]
	return m, ok
}

func (l *AppliedLog) remember(k string, rec *AppliedRecord, rev uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.memo) >= memoSize {
		clear(l.memo)
	}
	l.memo[k] = memoRecord{rec: rec, rev: rev}
}

func (l *AppliedLog) drop(k string) {
	l.mu.Lock()
	delete(l.memo, k)
	l.mu.Unlock()
}

// LastApplied answers the pipeline's question before it runs a redelivered event: which event was
// last applied to the key, and when.
func (l *AppliedLog) LastApplied(ctx context.Context, object string, key map[string]any) (*pipeline.LastApplied, error) {
	rec, err := l.Get(ctx, object, key)
	if err != nil || rec == nil {
		return nil, err
	}
	return &pipeline.LastApplied{EventID: rec.EventID, StreamSeq: rec.StreamSeq, At: rec.At, Partial: rec.Partial}, nil
}

var _ pipeline.AppliedReader = (*AppliedLog)(nil)

// RecordApplied is the pipeline's hook: a write of ours succeeded. Failures are logged, never
// returned: the record only sharpens drift reports.
func (l *AppliedLog) RecordApplied(ctx context.Context, a pipeline.Applied) {
	if ablate.Applied {
		return // make bench's ablation: what the worker costs without the record
	}
	if err := l.record(ctx, a); err != nil {
		l.log.Warn().Err(err).Str("event", a.EventID).Str("object", a.Object).Str("key", events.KeyString(a.Key)).Msg("applied log: record a write")
	}
}

func (l *AppliedLog) record(ctx context.Context, a pipeline.Applied) error {
	k := appliedKey(a.Object, a.Key)
	state := AppliedState{EventID: a.EventID, At: l.now().UTC()}
	if sh := l.shapes[a.Object]; sh != nil && len(a.Resource) > 0 && !a.Deleted {
		state.Hashes, _ = hashAnswer(sh, a.Resource)
		state.names = sh.sortedProps
	}
	// The remembered record, if any, is the base; a key never written is created without a read
	// when the event creates the object.
	m, known := l.remembered(k)
	fresh := !known && a.Operation != string(reconcile.OpCreate)
	for range 10 {
		var rec *AppliedRecord
		var rev uint64
		if fresh {
			var err error
			if rec, rev, err = l.get(ctx, k); err != nil {
				return err
			}
		} else if known {
			rec, rev = m.rec.clone(), m.rev
		}
		if rec == nil {
			rec = &AppliedRecord{}
		}
		rec.Object, rec.Key, rec.EventID, rec.StreamSeq, rec.Operation, rec.At = a.Object, a.Key, a.EventID, a.StreamSeq, a.Operation, state.At
		rec.TargetID = a.TargetID
		rec.Deleted, rec.Partial = a.Deleted, a.Partial
		if a.Deleted {
			rec.States = nil
		} else {
			rec.States = append([]AppliedState{state}, rec.States...)
			if len(rec.States) > keptStates {
				rec.States = rec.States[:keptStates]
			}
		}
		if rec.Attributes == nil {
			rec.Attributes = map[string]any{}
		}
		for n, v := range a.Attributes {
			rec.Attributes[n] = v
		}
		buf := recordBufs.Get().(*[]byte)
		raw, err := rec.appendJSON(slices.Grow((*buf)[:0], rec.encodedSize()))
		if err != nil {
			return fmt.Errorf("encode applied record: %w", err)
		}
		var next uint64
		started := time.Now()
		switch {
		case ablate.AppliedWrite:
			// make bench's ablation: the record built and encoded, as if another write carried it
			next = rev + 1
		case rev == 0:
			next, err = l.kv.Create(ctx, k, raw)
		default:
			next, err = l.kv.Update(ctx, k, raw, rev)
		}
		// The write has copied raw to the connection (or its reconnect buffer): the next record
		// may use it.
		if cap(raw) <= 64<<10 {
			*buf = raw
			recordBufs.Put(buf)
		}
		if err == nil {
			if l.observe != nil {
				l.observe(time.Since(started))
			}
			l.remember(k, rec, next)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !wrongRevision(err) {
			l.drop(k)
			return fmt.Errorf("write applied record: %w", err)
		}
		// Written by someone else meanwhile (or created before this process remembered it):
		// read it and build on it.
		l.drop(k)
		fresh, known = true, false
	}
	return errors.New("write applied record: too much contention")
}

// recordBufs are the buffers records are encoded into, reused once written.
var recordBufs = sync.Pool{New: func() any { return new([]byte) }}

// clone copies r deep enough for a write to build on it without touching r: the slices and
// maps the write changes.
func (r *AppliedRecord) clone() *AppliedRecord {
	c := *r
	c.States = slices.Clone(r.States)
	c.Attributes = maps.Clone(r.Attributes)
	return &c
}

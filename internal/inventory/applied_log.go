package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

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
}

// AppliedLog records the worker's own writes (the pipeline's hook) and answers the inventory's
// question "whose change was it".
type AppliedLog struct {
	kv     jetstream.KeyValue
	shapes map[string]*shape
	log    zerolog.Logger
	now    func() time.Time
}

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
	l := &AppliedLog{kv: kv, shapes: map[string]*shape{}, log: log, now: time.Now}
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
	if err := l.record(ctx, a); err != nil {
		l.log.Warn().Err(err).Str("event", a.EventID).Str("object", a.Object).Str("key", events.KeyString(a.Key)).Msg("applied log: record a write")
	}
}

func (l *AppliedLog) record(ctx context.Context, a pipeline.Applied) error {
	k := appliedKey(a.Object, a.Key)
	state := AppliedState{EventID: a.EventID, At: l.now().UTC()}
	if sh := l.shapes[a.Object]; sh != nil && len(a.Resource) > 0 && !a.Deleted {
		var res map[string]any
		dec := json.NewDecoder(bytes.NewReader(a.Resource))
		dec.UseNumber()
		if dec.Decode(&res) == nil {
			state.Hashes, _ = hashResource(sh, res)
		}
	}
	for range 10 {
		rec, rev, err := l.get(ctx, k)
		if err != nil {
			return err
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
		raw, _ := json.Marshal(rec)
		if rev == 0 {
			_, err = l.kv.Create(ctx, k, raw)
		} else {
			_, err = l.kv.Update(ctx, k, raw, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !wrongRevision(err) {
			return fmt.Errorf("write applied record: %w", err)
		}
	}
	return errors.New("write applied record: too much contention")
}

package inventory

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/events"
)

// Buckets of the inventory.
const (
	// StateBucket (KV) holds the current snapshot's pointer, the schedule, the lease, the run
	// counter and the job records.
	StateBucket = "IDM_INVENTORY_STATE"
	// SnapshotBucket (object store) holds the snapshots, one object per run generation.
	SnapshotBucket = "IDM_INVENTORY_SNAPSHOTS"
)

const (
	keyCurrent  = "current"
	keySchedule = "schedule"
	keyLease    = "lease"
	keyRuns     = "runs"
	jobPrefix   = "job."
)

// Pointer names the snapshot in force: the run that wrote it and what it held.
type Pointer struct {
	Run       uint64         `json:"run"`
	Snapshot  string         `json:"snapshot"`
	Counts    map[string]int `json:"counts"`
	Shapes    []ShapeInfo    `json:"shapes"`
	StartedAt time.Time      `json:"startedAt"`
	EndedAt   time.Time      `json:"endedAt"`
	// Token is the lease token of the runner that switched to it.
	Token uint64 `json:"token"`
}

// ScheduleRecord is the schedule an operator set at run time (worker inventory schedule).
type ScheduleRecord struct {
	Spec      string    `json:"spec"`
	UpdatedAt time.Time `json:"updatedAt"`
	By        string    `json:"by,omitempty"`
}

// Store keeps the inventory's state in JetStream: pointer, schedule, lease and jobs in a KV
// bucket, snapshots in an object store.
type Store struct {
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	obj jetstream.ObjectStore
}

// OpenStore creates or opens the inventory's buckets.
func OpenStore(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	replicas = max(replicas, 1)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: StateBucket, Description: "scimflow inventory: current snapshot, schedule, lease, jobs",
		History: 1, Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", StateBucket, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, DriftStreamConfig(replicas)); err != nil {
		return nil, fmt.Errorf("stream %s: %w", DriftStream, err)
	}
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: SnapshotBucket, Description: "scimflow inventory snapshots",
		Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", SnapshotBucket, err)
	}
	return &Store{js: js, kv: kv, obj: obj}, nil
}

func notFound(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}

// Current returns the snapshot in force and the revision of its pointer (0, nil when no run
// completed yet).
func (s *Store) Current(ctx context.Context) (*Pointer, uint64, error) {
	e, err := s.kv.Get(ctx, keyCurrent)
	if notFound(err) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read the current snapshot pointer: %w", err)
	}
	var p Pointer
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return nil, 0, fmt.Errorf("the current snapshot pointer is damaged: %w", err)
	}
	return &p, e.Revision(), nil
}

// ErrSuperseded says another run switched the snapshot since this one started, or holds a newer
// lease: this run's result is dropped.
var ErrSuperseded = errors.New("another inventory run switched the snapshot meanwhile")

// switchTo makes p current, only if the pointer is still at rev (0: absent) and was not written
// under a newer lease token.
func (s *Store) switchTo(ctx context.Context, p *Pointer, rev uint64) error {
	raw, _ := json.Marshal(p)
	var err error
	if rev == 0 {
		_, err = s.kv.Create(ctx, keyCurrent, raw)
	} else {
		_, err = s.kv.Update(ctx, keyCurrent, raw, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || wrongRevision(err) {
		return ErrSuperseded
	}
	if err != nil {
		return fmt.Errorf("switch to snapshot %s: %w", p.Snapshot, err)
	}
	return nil
}

func wrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// nextRun allocates the number of a new run.
func (s *Store) nextRun(ctx context.Context) (uint64, error) {
	for range 20 {
		e, err := s.kv.Get(ctx, keyRuns)
		var n, rev uint64
		switch {
		case notFound(err):
		case err != nil:
			return 0, fmt.Errorf("allocate a run number: %w", err)
		default:
			n, _ = strconv.ParseUint(string(e.Value()), 10, 64)
			rev = e.Revision()
		}
		n++
		val := []byte(strconv.FormatUint(n, 10))
		if rev == 0 {
			_, err = s.kv.Create(ctx, keyRuns, val)
		} else {
			_, err = s.kv.Update(ctx, keyRuns, val, rev)
		}
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !wrongRevision(err) {
			return 0, fmt.Errorf("allocate a run number: %w", err)
		}
	}
	return 0, errors.New("allocate a run number: too much contention")
}

// snapshotName is the object of run n's snapshot.
func snapshotName(run uint64) string { return fmt.Sprintf("snapshot-%020d", run) }

// openSnapshot streams a snapshot's entries.
func (s *Store) openSnapshot(ctx context.Context, name string) (entryIter, error) {
	res, err := s.obj.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read snapshot %s: %w", name, err)
	}
	return &objIter{res: res, r: newEntryReader(res)}, nil
}

type objIter struct {
	res jetstream.ObjectResult
	r   *entryReader
}

func (o *objIter) next() (Entry, error) {
	e, err := o.r.next()
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("read snapshot: %w", err)
	}
	return e, err
}

func (o *objIter) close() error { return o.res.Close() }

// snapshotWriter streams a new snapshot into the object store.
type snapshotWriter struct {
	pw   *io.PipeWriter
	w    *bufio.Writer
	enc  []byte
	done chan error
}

func (s *Store) createSnapshot(ctx context.Context, name string) *snapshotWriter {
	pr, pw := io.Pipe()
	sw := &snapshotWriter{pw: pw, w: bufio.NewWriterSize(pw, 128<<10), done: make(chan error, 1)}
	go func() {
		_, err := s.obj.Put(ctx, jetstream.ObjectMeta{Name: name, Description: "scimflow inventory snapshot"}, pr)
		pr.CloseWithError(err)
		sw.done <- err
	}()
	return sw
}

func (sw *snapshotWriter) write(e *Entry) error {
	keep := Entry{Object: e.Object, ID: e.ID, Key: e.Key, Hashes: e.Hashes}
	sw.enc = encodeEntry(sw.enc[:0], &keep)
	_, err := sw.w.Write(sw.enc)
	return err
}

// finish completes the object; abort (err != nil) drops it.
func (sw *snapshotWriter) finish(abort error) error {
	if abort == nil {
		abort = sw.w.Flush()
	}
	if abort != nil {
		sw.pw.CloseWithError(abort)
		<-sw.done
		return abort
	}
	sw.pw.Close()
	if err := <-sw.done; err != nil {
		return fmt.Errorf("store snapshot: %w", err)
	}
	return nil
}

func (s *Store) deleteSnapshot(ctx context.Context, name string) error {
	if err := s.obj.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete snapshot %s: %w", name, err)
	}
	return nil
}

// Schedule returns the schedule an operator set, if any.
func (s *Store) Schedule(ctx context.Context) (*ScheduleRecord, error) {
	e, err := s.kv.Get(ctx, keySchedule)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the inventory schedule: %w", err)
	}
	var r ScheduleRecord
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, fmt.Errorf("the stored inventory schedule is damaged: %w", err)
	}
	return &r, nil
}

// SetSchedule stores a schedule; spec must parse (ParseSchedule).
func (s *Store) SetSchedule(ctx context.Context, spec, by string) error {
	if _, err := ParseSchedule(spec); err != nil {
		return err
	}
	raw, _ := json.Marshal(ScheduleRecord{Spec: spec, UpdatedAt: time.Now().UTC(), By: by})
	if _, err := s.kv.Put(ctx, keySchedule, raw); err != nil {
		return fmt.Errorf("store the inventory schedule: %w", err)
	}
	return nil
}

// WatchSchedule signals on the returned channel whenever the stored schedule changes.
func (s *Store) watchSchedule(ctx context.Context) (jetstream.KeyWatcher, error) {
	return s.kv.Watch(ctx, keySchedule, jetstream.UpdatesOnly())
}

func jobKey(run uint64) string { return fmt.Sprintf("%s%020d", jobPrefix, run) }

// saveJob records j and drops the records beyond the keep newest.
func (s *Store) saveJob(ctx context.Context, j *Job, keep int) error {
	raw, _ := json.Marshal(j)
	if _, err := s.kv.Put(ctx, jobKey(j.Run), raw); err != nil {
		return fmt.Errorf("record inventory job %d: %w", j.Run, err)
	}
	keys, err := s.jobKeys(ctx)
	if err != nil {
		return err
	}
	for len(keys) > keep {
		if err := s.kv.Purge(ctx, keys[0]); err != nil {
			return fmt.Errorf("drop old inventory job record: %w", err)
		}
		keys = keys[1:]
	}
	return nil
}

func (s *Store) jobKeys(ctx context.Context) ([]string, error) {
	// Not KeyValue.ListKeys, which can leave a key out while others are written (events.KVKeys).
	keys, err := events.KVKeys(ctx, s.js, StateBucket, jobPrefix+">")
	if err != nil {
		return nil, fmt.Errorf("list inventory jobs: %w", err)
	}
	return keys, nil
}

// Jobs returns the recorded jobs, newest first, at most n (n <= 0: all kept).
func (s *Store) Jobs(ctx context.Context, n int) ([]*Job, error) {
	keys, err := s.jobKeys(ctx)
	if err != nil {
		return nil, err
	}
	slices.Reverse(keys)
	if n > 0 && len(keys) > n {
		keys = keys[:n]
	}
	out := make([]*Job, 0, len(keys))
	for _, k := range keys {
		e, err := s.kv.Get(ctx, k)
		if notFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read inventory job %s: %w", k, err)
		}
		var j Job
		if err := json.Unmarshal(e.Value(), &j); err != nil {
			continue
		}
		out = append(out, &j)
	}
	return out, nil
}

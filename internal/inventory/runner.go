package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/provision"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// KeyCache is the connector's key → id cache as the inventory refreshes it; *provision.Client
// implements it.
type KeyCache interface {
	Remember(ctx context.Context, resource string, match []provision.Match, id string)
	Forget(ctx context.Context, resource string, match []provision.Match, staleID string)
}

var _ KeyCache = (*provision.Client)(nil)

// ShapeInfo records which attributes a snapshot's hashes stand for.
type ShapeInfo struct {
	Object string   `json:"object"`
	Props  []string `json:"props"`
}

// Fence is asked before every write a run makes; an error (ErrLeaseLost) stops the run. Lease.Check
// is one.
type Fence func() error

// Options wire a Runner.
type Options struct {
	JS      jetstream.JetStream
	Store   *Store
	Applied *AppliedLog // nil: every change is unmanaged
	Lister  Lister
	Cache   KeyCache // nil: the cache is not refreshed
	Worker  string
	Logger  zerolog.Logger
	// Finished (nil: none) is told of every job this runner ends, failed or not, once it is
	// recorded: the worker's metrics observe its duration.
	Finished func(*Job)
	// History, when set, notes each drift published in its key's provisioning log (worker explain).
	History Noter
}

// Noter takes a note in a key's provisioning log; *events.History is one.
type Noter interface {
	Note(*events.HistoryNote)
}

// Runner runs inventories.
type Runner struct {
	cfg    Config
	shapes []*shape
	o      Options
	pub    *events.Publisher

	mu      sync.Mutex
	current *Job
}

// NewRunner checks cfg (with defaults filled) against the model.
func NewRunner(cfg Config, model *reconcile.Model, o Options) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	shapes, err := shapesOf(model, cfg.Objects)
	if err != nil {
		return nil, err
	}
	for obj := range cfg.OnDrift {
		if _, ok := model.Object(obj); !ok {
			return nil, fmt.Errorf("inventory.onDrift.%s: not an object of the data model", obj)
		}
	}
	return &Runner{cfg: cfg, shapes: shapes, o: o, pub: events.NewPublisher(o.JS)}, nil
}

// Current returns a copy of the job running now, or nil.
func (r *Runner) Current() *Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.current == nil {
		return nil
	}
	j := *r.current
	j.Objects, j.Changes, j.Drift = maps.Clone(j.Objects), maps.Clone(j.Changes), maps.Clone(j.Drift)
	return &j
}

// Progress, when set on a run's context with WithProgress, is called after every page.
type Progress func(object string, pages, objects int)

type progressKey struct{}

// WithProgress returns ctx carrying p.
func WithProgress(ctx context.Context, p Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// RunOptions describe one run.
type RunOptions struct {
	// Trigger is "schedule", "once" (worker inventory --once) or "request" (the HTTP API).
	Trigger string
	// Token is the lease's fencing token, recorded with the run and its snapshot.
	Token uint64
	// Fence (nil: none) is checked before each write.
	Fence Fence
	// Schedule and Next are recorded in the job: the schedule in force and the next run.
	Schedule string
	Next     func() time.Time
}

// Run runs one inventory and records it. The returned job is recorded whatever happened (unless
// the lease was lost); err says why a run failed.
func (r *Runner) Run(ctx context.Context, o RunOptions) (*Job, error) {
	fence := o.Fence
	if fence == nil {
		fence = func() error { return nil }
	}
	trigger, token := o.Trigger, o.Token
	run, err := r.o.Store.nextRun(ctx)
	if err != nil {
		return nil, err
	}
	job := &Job{
		Run: run, Worker: r.o.Worker, Trigger: trigger, Status: StatusRunning, StartedAt: time.Now().UTC(),
		Objects: map[string]int{}, Changes: map[string]int{}, Drift: map[string]int{}, Token: token,
	}
	r.mu.Lock()
	r.current = job
	r.mu.Unlock()
	log := r.o.Logger.With().Uint64("run", run).Logger()
	log.Info().Str("trigger", trigger).Msg("inventory started")
	err = r.run(ctx, job, fence, log)
	r.mu.Lock()
	job.EndedAt = time.Now().UTC()
	job.DurationMs = job.EndedAt.Sub(job.StartedAt).Milliseconds()
	switch {
	case errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrSuperseded):
		job.Status = StatusLeaseLost
	case err != nil:
		job.Status = StatusFailed
		job.Errors = append(job.Errors, err.Error())
	}
	job.Schedule = o.Schedule
	if o.Next != nil {
		job.NextRun = o.Next().UTC()
	}
	r.current = nil
	r.mu.Unlock()
	ev := log.Info()
	if err != nil {
		ev = log.Warn().Err(err)
	}
	ev.Str("status", job.Status).Int("objects", job.total()).Int64("durationMs", job.DurationMs).
		Interface("drift", job.Drift).Msg("inventory ended")
	if job.Status != StatusLeaseLost && fence() == nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if serr := r.o.Store.saveJob(sctx, job, r.cfg.KeepJobs); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	if r.o.Finished != nil {
		r.o.Finished(job)
	}
	return job, err
}

func (r *Runner) run(ctx context.Context, job *Job, fence Fence, log zerolog.Logger) error {
	ptr, rev, err := r.o.Store.Current(ctx)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(r.cfg.ScratchDir, "scimflow-inventory-")
	if err != nil {
		return fmt.Errorf("inventory scratch: %w", err)
	}
	defer os.RemoveAll(dir)
	srt := newSorter(dir, r.cfg.SortBuffer)
	progress, _ := ctx.Value(progressKey{}).(Progress)
	for _, sh := range r.shapes {
		pages, objects := 0, 0
		pg := &pager{list: r.o.Lister, size: r.cfg.PageSize, width: r.cfg.Concurrency}
		if progress != nil {
			var mu sync.Mutex
			pg.progress = func(n int) {
				mu.Lock()
				pages += n
				p := pages
				mu.Unlock()
				progress(sh.object, p, objects)
			}
		}
		st, err := pg.scan(ctx, sh, func(e Entry) error {
			objects++
			return srt.add(e)
		})
		r.mu.Lock()
		job.Pages += st.Pages
		job.Rereads += st.Rereads
		job.Objects[sh.object] = st.Objects
		r.mu.Unlock()
		if err != nil {
			return fmt.Errorf("read %s: %w", sh.resource, err)
		}
		if st.Skipped > 0 {
			r.mu.Lock()
			job.Errors = append(job.Errors, fmt.Sprintf("%s: %d resources without id or key were skipped", sh.resource, st.Skipped))
			r.mu.Unlock()
		}
		if st.Reported > st.Objects {
			r.mu.Lock()
			job.Errors = append(job.Errors, fmt.Sprintf("%s: the target reported %d, the pages held %d", sh.resource, st.Reported, st.Objects))
			r.mu.Unlock()
		}
	}
	baseline := ptr == nil || !objectsEqual(ptr.Shapes, r.shapes)
	if !baseline && r.cfg.MinRatio > 0 {
		for _, sh := range r.shapes {
			if prev := ptr.Counts[sh.object]; prev > 0 && float64(job.Objects[sh.object]) < r.cfg.MinRatio*float64(prev) {
				r.mu.Lock()
				job.Suspect = fmt.Sprintf("%s: read %d, the snapshot in force holds %d (inventory.minRatio %v)", sh.object, job.Objects[sh.object], prev, r.cfg.MinRatio)
				r.mu.Unlock()
				break
			}
		}
	}
	it, err := srt.iterate()
	if err != nil {
		return err
	}
	defer it.close()
	var old entryIter = emptyIter{}
	var remap [][]int
	if !baseline {
		if old, err = r.o.Store.openSnapshot(ctx, ptr.Snapshot); err != nil {
			return err
		}
		defer old.close()
		remap = r.remap(ptr.Shapes)
	}
	if err := fence(); err != nil {
		return err
	}
	name := snapshotName(job.Run)
	sw := r.o.Store.createSnapshot(ctx, name)
	suspect := job.Suspect != ""
	h := &changeHandler{r: r, job: job, fence: fence, baseline: baseline, suspect: suspect}
	if ptr != nil {
		h.since = ptr.StartedAt
	}
	err = mergeDiff(old, it, remap, sw.write, func(c change) error { return h.handle(ctx, c) })
	if err := sw.finish(err); err != nil {
		return err
	}
	keep := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.o.Store.deleteSnapshot(dctx, name); err != nil {
			log.Warn().Err(err).Msg("drop an unused snapshot")
		}
	}
	if suspect {
		keep()
		r.mu.Lock()
		job.Status = StatusSuspect
		r.mu.Unlock()
		return nil
	}
	if err := fence(); err != nil {
		keep()
		return err
	}
	counts := make(map[string]int, len(r.shapes))
	shapes := make([]ShapeInfo, len(r.shapes))
	for i, sh := range r.shapes {
		counts[sh.object] = job.Objects[sh.object]
		shapes[i] = ShapeInfo{Object: sh.object, Props: sh.propNames()}
	}
	p := &Pointer{Run: job.Run, Snapshot: name, Counts: counts, Shapes: shapes, StartedAt: job.StartedAt, EndedAt: time.Now().UTC(), Token: job.Token}
	if err := r.o.Store.switchTo(ctx, p, rev); err != nil {
		keep()
		return err
	}
	r.mu.Lock()
	job.Snapshot = name
	job.Status = StatusSucceeded
	if baseline {
		job.Status = StatusBaseline
	}
	r.mu.Unlock()
	if ptr != nil && ptr.Snapshot != name {
		if err := r.o.Store.deleteSnapshot(ctx, ptr.Snapshot); err != nil {
			log.Warn().Err(err).Msg("drop the previous snapshot")
		}
	}
	return nil
}

// remap maps, per object, each current attribute to its index in the previous snapshot's hashes
// (-1: the attribute is new; its old hash counts as equal).
func (r *Runner) remap(prev []ShapeInfo) [][]int {
	out := make([][]int, len(r.shapes))
	for i, sh := range r.shapes {
		m := make([]int, len(sh.props))
		for j, p := range sh.props {
			m[j] = slices.Index(prev[i].Props, p.Name())
		}
		out[i] = m
	}
	return out
}

type emptyIter struct{}

func (emptyIter) next() (Entry, error) { return Entry{}, io.EOF }
func (emptyIter) close() error         { return nil }

// change is one difference between the snapshots.
type change struct {
	kind     string
	old, cur *Entry
	changed  []int // attributes that differ (created: every present one)
}

// mergeDiff merges the previous snapshot (old) with this run's sorted entries (cur): every entry
// of cur is written to the new snapshot, every difference handed to onChange.
func mergeDiff(old, cur entryIter, remap [][]int, write func(*Entry) error, onChange func(change) error) error {
	o, oerr := old.next()
	n, nerr := cur.next()
	for {
		if oerr != nil && !errors.Is(oerr, io.EOF) {
			return oerr
		}
		if nerr != nil && !errors.Is(nerr, io.EOF) {
			return nerr
		}
		oEnd, nEnd := oerr != nil, nerr != nil
		switch {
		case oEnd && nEnd:
			return nil
		case nEnd || (!oEnd && o.less(&n)):
			oe := o
			if err := onChange(change{kind: ChangeDeleted, old: &oe}); err != nil {
				return err
			}
			o, oerr = old.next()
		case oEnd || n.less(&o):
			ne := n
			if err := write(&ne); err != nil {
				return err
			}
			var present []int
			for i, h := range ne.Hashes {
				if h != 0 {
					present = append(present, i)
				}
			}
			if err := onChange(change{kind: ChangeCreated, cur: &ne, changed: present}); err != nil {
				return err
			}
			n, nerr = cur.next()
		default:
			oe, ne := o, n
			if err := write(&ne); err != nil {
				return err
			}
			var differ []int
			for i, h := range ne.Hashes {
				j := i
				if remap != nil && int(ne.Object) < len(remap) {
					j = remap[ne.Object][i]
				}
				if j >= 0 && (j >= len(oe.Hashes) || oe.Hashes[j] != h) {
					differ = append(differ, i)
				}
			}
			if len(differ) > 0 || oe.Key != ne.Key {
				if err := onChange(change{kind: ChangeUpdated, old: &oe, cur: &ne, changed: differ}); err != nil {
					return err
				}
			}
			o, oerr = old.next()
			n, nerr = cur.next()
		}
	}
}

// changeHandler classifies, publishes, reverts and refreshes the cache for each change.
type changeHandler struct {
	r        *Runner
	job      *Job
	fence    Fence
	baseline bool
	suspect  bool
	since    time.Time
}

func (h *changeHandler) handle(ctx context.Context, c change) error {
	e := c.cur
	if e == nil {
		e = c.old
	}
	if int(e.Object) >= len(h.r.shapes) {
		return nil
	}
	sh := h.r.shapes[e.Object]
	h.count(func(j *Job) { j.Changes[c.kind]++ })
	if h.baseline {
		return nil
	}
	key := keyMap(e.Key)
	var rec *AppliedRecord
	if h.r.o.Applied != nil {
		var err error
		if rec, err = h.r.o.Applied.Get(ctx, sh.object, key); err != nil {
			return err
		}
	}
	var observed []uint64
	if c.cur != nil {
		observed = c.cur.Hashes
	}
	class, attrs := classify(sh, c.kind, observed, c.changed, rec, h.since)
	if h.suspect && (c.kind == ChangeDeleted || class == ClassMissing) {
		return nil // a collapsed read must never look like mass deletion
	}
	h.count(func(j *Job) { j.Drift[class]++ })
	if err := h.fence(); err != nil {
		return err
	}
	h.refreshCache(ctx, sh, c, key, rec)
	if class == ClassOurs {
		return nil
	}
	d := Drift{Run: h.job.Run, Object: sh.object, Change: c.kind, Class: class, ID: e.ID, Key: key, Action: "reported"}
	if c.cur != nil {
		var values map[string]any
		_ = json.Unmarshal(c.cur.Values, &values)
		d.Attributes = map[string]any{}
		for _, i := range attrs {
			n := sh.props[i].Name()
			d.Changed = append(d.Changed, n)
			if v, ok := values[n]; ok {
				d.Attributes[n] = v
			}
		}
	}
	if rec != nil {
		d.LastApplied = &LastApplied{EventID: rec.EventID, Operation: rec.Operation, At: rec.At}
	}
	if h.r.cfg.onDrift(sh.object) == OnDriftRevert {
		ok, err := h.revert(ctx, sh, class, key, d.Changed, rec)
		if err != nil {
			return err
		}
		if ok {
			d.Action = "reverted"
			h.count(func(j *Job) { j.Reverted++ })
		}
	}
	id, err := publishDrift(ctx, h.r.o.JS, d, observed)
	if err != nil {
		return err
	}
	if h.r.o.History != nil {
		h.r.o.History.Note(driftNote(id, d, h.r.o.Worker))
	}
	h.count(func(j *Job) { j.Published++ })
	return nil
}

// count updates the job's counters under the runner's lock (Current copies them).
func (h *changeHandler) count(fn func(*Job)) {
	h.r.mu.Lock()
	fn(h.job)
	h.r.mu.Unlock()
}

// refreshCache keeps the key → id cache true to what the target holds. Forgetting a deleted
// object's id is always safe (ids are not reused, and only that id is dropped). Remembering is
// not, when the pipeline wrote the key after this run started: the run's read may predate a
// delete or a re-create, and the pipeline keeps the cache for its own writes.
func (h *changeHandler) refreshCache(ctx context.Context, sh *shape, c change, key map[string]any, rec *AppliedRecord) {
	cache := h.r.o.Cache
	if cache == nil {
		return
	}
	res := sh.keys[0].ReferenceObject()
	remember := rec == nil || rec.At.Before(h.job.StartedAt)
	switch c.kind {
	case ChangeDeleted:
		cache.Forget(ctx, res, sh.match(key), c.old.ID)
	case ChangeCreated:
		if remember {
			cache.Remember(ctx, res, sh.match(key), c.cur.ID)
		}
	case ChangeUpdated:
		if c.old.Key != c.cur.Key {
			cache.Forget(ctx, res, sh.match(keyMap(c.old.Key)), c.old.ID)
			if remember {
				cache.Remember(ctx, res, sh.match(key), c.cur.ID)
			}
		}
	}
}

// revert publishes the reconcile event that sets back what we last applied: an Update of the
// drifted attributes for external-change, an Upsert of every attribute for missing. Unmanaged
// objects are only reported: deleting what someone else created is an operator's decision.
func (h *changeHandler) revert(ctx context.Context, sh *shape, class string, key map[string]any, changed []string, rec *AppliedRecord) (bool, error) {
	if rec == nil || rec.Deleted {
		return false, nil
	}
	attrs := map[string]any{}
	op := events.OpUpdate
	switch class {
	case ClassExternalChange:
		for _, n := range changed {
			if v, ok := rec.Attributes[n]; ok {
				attrs[n] = v
			}
		}
	case ClassMissing:
		op = events.OpUpsert
		for n, v := range rec.Attributes {
			attrs[n] = v
		}
	default:
		return false, nil
	}
	if len(attrs) == 0 && op == events.OpUpdate {
		return false, nil // nothing we applied to set back
	}
	id := fmt.Sprintf("inventory-revert-%d-%s-%s", h.job.Run, events.SubjectToken(sh.object), events.KeyToken(key))
	ev := events.NewEvent(id, DriftSource, events.Change{Object: sh.object, Operation: op, Key: key, Attributes: attrs})
	if _, err := h.r.pub.PublishEvent(ctx, ev); err != nil {
		return false, fmt.Errorf("revert %s %s: %w", sh.object, events.KeyString(key), err)
	}
	return true, nil
}

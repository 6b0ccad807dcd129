package pipeline

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/auth"
	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/natstest"
	"github.com/scimflow/scimflow/internal/provision"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// fixture is a processor wired to a real simulator over HTTP with OAuth 2.0, the real connector and
// the shipped generic data model.
type fixture struct {
	sim  *cyberarksim.Server
	proc *Processor
	now  time.Time
}

func setup(t *testing.T, cfg Config) *fixture {
	t.Helper()
	return setupWithCache(t, cfg, nil)
}

// setupWithCache is setup with the connector's key → id cache in a real JetStream key-value bucket.
func setupWithCache(t *testing.T, cfg Config, cache provision.IDCache) *fixture {
	t.Helper()
	return setupProfile(t, cfg, cache, false)
}

// setupProfile is setupWithCache against the simulator in its CyberArk profile (with the CyberArk
// model) or its strict RFC 7644 profile (with the generic model).
func setupProfile(t *testing.T, cfg Config, cache provision.IDCache, cyberark bool) *fixture {
	t.Helper()
	sim, srv := simtest.MustStart(t, cyberarksim.Config{Generic: !cyberark})
	profile, modelFile := provision.ProfileGeneric, "scim-generic.yaml"
	if cyberark {
		profile, modelFile = provision.ProfileCyberArk, "cyberark.yaml"
	}
	client, err := provision.New(provision.Config{
		Profile: profile,
		IDCache: cache,
		BaseURI: srv.URL + "/scim/v2",
		Auth: auth.Config{Mode: auth.ModeOAuth2, OAuth2: auth.OAuth2Config{
			TokenURL: srv.URL + "/oauth2/token/scimflow", ClientID: "scimflow-client",
			ClientSecret: "scimflow-secret", Scopes: []string{"scim"},
		}},
		Retry:  provision.RetryConfig{Attempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
		Logger: zerolog.Nop(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close(context.Background()) })
	model, err := reconcile.LoadModel(filepath.Join("..", "..", "deploy", "examples", "models", modelFile))
	require.NoError(t, err)
	cfg.Windows = Every(time.Minute)
	cfg.ReferenceBackoff = time.Millisecond
	f := &fixture{sim: sim, proc: New(reconcile.NewPlanner(model, reconcile.Options{}), client, cfg), now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	f.proc.now = func() time.Time { return f.now }
	return f
}

func delivery(attempt int, op string, object string, key, attrs map[string]any) *events.Delivery {
	return &events.Delivery{Attempt: attempt, Event: events.NewEvent("e1", "/test",
		events.Change{Object: object, Operation: op, Key: key, Attributes: attrs})}
}

// handle runs a delivery to its outcome the way the consume loop does: a Resume is honoured by
// waiting the processor's backoff and handling the same delivery again.
func (f *fixture) handle(ctx context.Context, d *events.Delivery) events.Result {
	for {
		res := f.proc.Handle(ctx, d)
		if res.Settle != nil {
			res.Settle() // as the consume loop does before it acknowledges the event
		}
		if res.Resume.IsZero() {
			return res
		}
		time.Sleep(f.proc.referenceWait(d.State.(*progress).refWaits))
	}
}

func user(name string) map[string]any { return map[string]any{"userName": name} }

func (f *fixture) users() []map[string]any { return f.sim.Snapshot().Users }

func TestCreateSucceedsAndNamesTheObject(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{})
	res := f.handle(context.Background(), delivery(1, "Create", "User", user("ada@x"), map[string]any{"title": "CTO"}))
	require.False(t, res.Abandon)
	o := res.Outcome
	require.Equal(t, events.StatusSucceeded, o.Status, "%+v", o.Error)
	require.Len(t, f.users(), 1)
	assert.Equal(t, f.users()[0]["id"], o.TargetID)
	assert.Equal(t, "CTO", f.users()[0]["title"])
	require.NotEmpty(t, o.Requests)
	last := o.Requests[len(o.Requests)-1]
	assert.Equal(t, "POST", last.Method)
	assert.Equal(t, 201, last.Status)
	assert.Equal(t, 1, f.sim.Stats().Requests["POST /scim/v2/Users"], "a first delivery posts without looking first")
}

func TestRedeliveredCreateNeverDuplicates(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{})
	ctx := context.Background()
	require.Equal(t, events.StatusSucceeded, f.handle(ctx, delivery(1, "Create", "User", user("ada@x"), map[string]any{"title": "CTO"})).Outcome.Status)
	// The worker crashed before acking: the same event comes again.
	res := f.handle(ctx, delivery(2, "Create", "User", user("ada@x"), map[string]any{"title": "CTO"}))
	assert.Contains(t, []events.Status{events.StatusSucceeded, events.StatusSkipped}, res.Outcome.Status, "%+v", res.Outcome)
	assert.Len(t, f.users(), 1)
	assert.Equal(t, 1, f.sim.Stats().Requests["POST /scim/v2/Users"], "the redelivery looked the user up instead of posting")
}

func TestCreateMeetingConflictConverges(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{})
	require.NoError(t, f.sim.Seed("Users", map[string]any{"userName": "ada@x", "title": "Engineer"}))
	res := f.handle(context.Background(), delivery(1, "Create", "User", user("ada@x"), map[string]any{"title": "CTO"}))
	require.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%+v", res.Outcome.Error)
	require.Len(t, f.users(), 1)
	assert.Equal(t, "CTO", f.users()[0]["title"], "409 on create resolves the user and updates it")
	var statuses []int
	for _, c := range res.Outcome.Requests {
		statuses = append(statuses, c.Status)
	}
	assert.Contains(t, statuses, 409)
}

func TestPermanentFailuresAreDeadLettered(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{})
	ctx := context.Background()
	cases := []struct {
		name  string
		d     *events.Delivery
		class string
	}{
		{"unknown property", delivery(1, "Create", "User", user("a@x"), map[string]any{"shoeSize": "42"}), "invalid"},
		{"unknown object", delivery(1, "Create", "Printer", map[string]any{"name": "p"}, nil), "invalid"},
		{"update of a missing user", delivery(1, "Update", "User", user("ghost@x"), map[string]any{"title": "x"}), "not_found"},
		{"target refuses the value", delivery(1, "Create", "User", user("b@x"), map[string]any{"active": "maybe"}), "invalid"},
	}
	for _, tc := range cases {
		res := f.handle(ctx, tc.d)
		assert.Equal(t, events.StatusDeadLettered, res.Outcome.Status, tc.name)
		if assert.NotNil(t, res.Outcome.Error, tc.name) {
			assert.Equal(t, tc.class, res.Outcome.Error.Class, "%s: %s", tc.name, res.Outcome.Error.Message)
		}
	}
}

func TestDeleteOfAnAbsentUserIsSkipped(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{})
	res := f.handle(context.Background(), delivery(1, "Delete", "User", user("gone@x"), nil))
	assert.Equal(t, events.StatusSkipped, res.Outcome.Status)
	assert.NotEmpty(t, res.Outcome.Reason)
}

func TestUnresolvedMemberIsRetriedThenDeferredThenExhausted(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{MaxWindows: 2, ReferenceRetries: 2})
	ctx := context.Background()
	require.Equal(t, events.StatusSucceeded, f.handle(ctx, delivery(1, "Create", "Group", map[string]any{"displayName": "Ops"}, nil)).Outcome.Status)
	add := func(attempt int) events.Result {
		return f.handle(ctx, delivery(attempt, "AddAssignment", "Group", map[string]any{"displayName": "Ops"},
			map[string]any{"members[].value": []any{"nobody@x"}}))
	}
	before := f.sim.Stats().Requests["GET /scim/v2/Users"]
	res := add(1)
	assert.Equal(t, events.StatusDeferred, res.Outcome.Status)
	assert.Equal(t, "unresolved", res.Outcome.Error.Class)
	assert.Equal(t, f.now.Add(time.Minute), res.RetryAt, "deferred to the next window")
	assert.Equal(t, f.now.Add(time.Minute), res.Outcome.NextAttemptAt)
	assert.Equal(t, 4, f.sim.Stats().Requests["GET /scim/v2/Users"]-before, "looked up once, once more as the follow-up, and retried twice in process")

	assert.Equal(t, events.StatusDeferred, add(2).Outcome.Status, "second window")
	res = add(3)
	assert.Equal(t, events.StatusDeadLettered, res.Outcome.Status, "after maxWindows windows")
	assert.Equal(t, "exhausted", res.Outcome.Error.Class)
	assert.Contains(t, res.Outcome.Error.Message, "nobody@x")
}

func TestMemberCreatedMeanwhileIsFoundByTheInProcessRetry(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{ReferenceRetries: 5})
	f.proc.cfg.ReferenceBackoff = 20 * time.Millisecond
	ctx := context.Background()
	require.Equal(t, events.StatusSucceeded, f.handle(ctx, delivery(1, "Create", "Group", map[string]any{"displayName": "Ops"}, nil)).Outcome.Status)
	go func() {
		time.Sleep(30 * time.Millisecond)
		_ = f.sim.Seed("Users", map[string]any{"userName": "late@x"})
	}()
	res := f.handle(ctx, delivery(1, "AddAssignment", "Group", map[string]any{"displayName": "Ops"},
		map[string]any{"members[].value": []any{"late@x"}}))
	require.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%+v", res.Outcome.Error)
	g := f.sim.Snapshot().Groups[0]
	assert.Len(t, g["members"], 1)
}

func TestOutageDefersUntilRetryAfterWhenLongerThanTheWindow(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{})
	f.sim.SetFaults(cyberarksim.Faults{RateLimit429: 1, RetryAfter: 10 * time.Minute})
	res := f.handle(context.Background(), delivery(1, "Create", "User", user("a@x"), nil))
	require.Equal(t, events.StatusDeferred, res.Outcome.Status, "%+v", res.Outcome)
	assert.Equal(t, "retryable", res.Outcome.Error.Class)
	assert.Equal(t, 429, res.Outcome.Error.Status)
	assert.Equal(t, f.now.Add(10*time.Minute), res.RetryAt, "Retry-After beyond the window wins")
	assert.Empty(t, f.users())
}

// A change waiting for a reference does not block its worker slot: Handle returns at once, asking
// to be resumed after the backoff, with no outcome yet.
func TestWaitingForAReferenceResumesInsteadOfBlocking(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{ReferenceRetries: 5})
	f.proc.cfg.ReferenceBackoff = time.Hour
	ctx := context.Background()
	require.Equal(t, events.StatusSucceeded, f.handle(ctx, delivery(1, "Create", "Group", map[string]any{"displayName": "Ops"}, nil)).Outcome.Status)
	d := delivery(1, "AddAssignment", "Group", map[string]any{"displayName": "Ops"},
		map[string]any{"members[].value": []any{"nobody@x"}})
	res := f.proc.Handle(ctx, d)
	assert.Empty(t, res.Outcome.Status, "no outcome while waiting")
	assert.Equal(t, f.now.Add(5*time.Second), res.Resume, "resumed after the backoff, capped at 5 s")
}

func kvCache(t *testing.T) provision.IDCache {
	t.Helper()
	s := natstest.MustStart(t)
	kv, err := s.JS.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "IDM_IDCACHE"})
	require.NoError(t, err)
	return provision.NewKVIDCache(kv)
}

func TestDeleteThenRecreateNeverUsesTheOldID(t *testing.T) {
	t.Parallel()
	f := setupWithCache(t, Config{}, kvCache(t))
	ctx := context.Background()
	ok := func(res events.Result) {
		t.Helper()
		require.Contains(t, []events.Status{events.StatusSucceeded, events.StatusSkipped}, res.Outcome.Status, "%+v", res.Outcome.Error)
	}
	ok(f.handle(ctx, delivery(1, "Create", "User", user("ada@x"), nil)))
	ok(f.handle(ctx, delivery(1, "Update", "User", user("ada@x"), map[string]any{"title": "A"}))) // caches the id
	ok(f.handle(ctx, delivery(1, "Delete", "User", user("ada@x"), nil)))
	ok(f.handle(ctx, delivery(1, "Create", "User", user("ada@x"), nil))) // rehired: a new id
	res := f.handle(ctx, delivery(1, "Update", "User", user("ada@x"), map[string]any{"title": "B"}))
	ok(res)
	require.Len(t, f.users(), 1)
	assert.Equal(t, "B", f.users()[0]["title"])
	assert.Equal(t, f.users()[0]["id"], res.Outcome.TargetID)
	for _, c := range res.Outcome.Requests {
		assert.NotEqual(t, 404, c.Status, "the deleted id was dropped from the cache when the worker deleted it")
	}
}

func TestStaleCachedIDIsResolvedAgain(t *testing.T) {
	t.Parallel()
	f := setupWithCache(t, Config{}, kvCache(t))
	ctx := context.Background()
	require.Equal(t, events.StatusSucceeded, f.handle(ctx, delivery(1, "Create", "User", user("ada@x"), nil)).Outcome.Status)
	require.Equal(t, events.StatusSucceeded, f.handle(ctx, delivery(1, "Update", "User", user("ada@x"), map[string]any{"title": "A"})).Outcome.Status)
	// Someone else deletes Ada and creates her again behind the worker's back.
	f.sim.Reset()
	require.NoError(t, f.sim.Seed("Users", map[string]any{"userName": "ada@x", "title": "A"}))
	res := f.handle(ctx, delivery(1, "Update", "User", user("ada@x"), map[string]any{"title": "B"}))
	require.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%+v", res.Outcome.Error)
	assert.Equal(t, "B", f.users()[0]["title"])
	var statuses []int
	for _, c := range res.Outcome.Requests {
		statuses = append(statuses, c.Status)
	}
	assert.Contains(t, statuses, 404, "the cached id answered 404 first")
	// A delete through a stale id finds the new object instead of calling it already absent.
	f.sim.Reset()
	require.NoError(t, f.sim.Seed("Users", map[string]any{"userName": "ada@x"}))
	res = f.handle(ctx, delivery(1, "Delete", "User", user("ada@x"), nil))
	require.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%+v", res.Outcome)
	assert.Empty(t, f.users())
}

// resurrectingCache is the KV cache with a second writer that puts back an id it read long ago
// whenever an entry is dropped (the inventory remembering what its snapshot held).
type resurrectingCache struct {
	provision.IDCache
	mu    sync.Mutex
	stale []string // ids put back, one per drop
}

func (c *resurrectingCache) dropped(ctx context.Context, resource, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.stale) > 0 {
		c.IDCache.Put(ctx, resource, key, c.stale[0])
		c.stale = c.stale[1:]
	}
}

func (c *resurrectingCache) Delete(ctx context.Context, resource, key string) {
	c.IDCache.Delete(ctx, resource, key)
	c.dropped(ctx, resource, key)
}

func (c *resurrectingCache) DeleteIf(ctx context.Context, resource, key, id string) {
	c.IDCache.(interface {
		DeleteIf(ctx context.Context, resource, key, id string)
	}).DeleteIf(ctx, resource, key, id)
	c.dropped(ctx, resource, key)
}

// After a cached id answers 404 the key is looked up in the target, not in the cache again: the
// cache may hold another stale id by then. Found by the chaos suite: a re-create planned as a
// PATCH to the id of a user deleted two events before, then to the id of the next one deleted,
// and dead-lettered not_found.
func TestAfterAStaleIDTheKeyIsLookedUpInTheTarget(t *testing.T) {
	t.Parallel()
	cache := &resurrectingCache{IDCache: kvCache(t)}
	f := setupWithCache(t, Config{}, cache)
	ctx := context.Background()
	ok := func(res events.Result) events.Result {
		t.Helper()
		require.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%+v", res.Outcome)
		return res
	}
	first := ok(f.handle(ctx, delivery(1, "Create", "User", user("ada@x"), nil))).Outcome.TargetID
	ok(f.handle(ctx, delivery(1, "Delete", "User", user("ada@x"), nil)))
	second := ok(f.handle(ctx, delivery(1, "Create", "User", user("ada@x"), nil))).Outcome.TargetID
	ok(f.handle(ctx, delivery(1, "Delete", "User", user("ada@x"), nil)))
	// The cache is handed the first id back, and the second once that one is dropped.
	cache.IDCache.Put(ctx, "Users", provision.CacheKey([]provision.Match{{Attr: "userName", Value: "ada@x"}}), first)
	cache.stale = []string{second}

	// Delivered again (a worker died): the Create looks the key up before creating.
	again := delivery(1, "Create", "User", user("ada@x"), map[string]any{"title": "back"})
	again.Redelivered = true
	res := ok(f.handle(ctx, again))
	require.Len(t, f.users(), 1)
	assert.Equal(t, "back", f.users()[0]["title"])
	assert.NotEqual(t, first, res.Outcome.TargetID)
	assert.NotEqual(t, second, res.Outcome.TargetID)
	var notFound int
	for _, c := range res.Outcome.Requests {
		if c.Status == 404 {
			notFound++
		}
	}
	assert.Equal(t, 1, notFound, "one stale id tried, then the target asked: %+v", res.Outcome.Requests)
}

// gatedCache holds every Put until its gate opens, and says when one was stored.
type gatedCache struct {
	provision.IDCache
	gate   chan struct{}
	stored chan struct{}
}

func (c *gatedCache) Put(ctx context.Context, resource, key, id string) {
	<-c.gate
	c.IDCache.Put(ctx, resource, key, id)
	close(c.stored)
}

// A create's new key → id is written beside the outcome, as the applied record is: the outcome
// does not wait for the bucket, and Settle (which the consume loop calls before the
// acknowledgement, so before the key's next event) does.
func TestACreatedIDIsStoredBesideTheOutcomeAndBeforeTheAcknowledgement(t *testing.T) {
	t.Parallel()
	cache := &gatedCache{IDCache: kvCache(t), gate: make(chan struct{}), stored: make(chan struct{})}
	f := setupWithCache(t, Config{}, cache)
	ctx := context.Background()

	handled := make(chan events.Result, 1)
	go func() {
		handled <- f.proc.Handle(ctx, delivery(1, "Create", "User", user("ada@x"), map[string]any{"title": "CTO"}))
	}()
	var res events.Result
	select {
	case res = <-handled:
	case <-time.After(10 * time.Second):
		close(cache.gate)
		t.Fatal("the create's outcome waited for the id cache's write")
	}
	require.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%+v", res.Outcome)
	require.NotNil(t, res.Settle, "the write in flight must hold the acknowledgement")
	select {
	case <-cache.stored:
		t.Fatal("the id was stored while the gate was shut")
	default:
	}

	time.AfterFunc(50*time.Millisecond, func() { close(cache.gate) })
	res.Settle()
	select {
	case <-cache.stored:
	default:
		t.Fatal("Settle returned before the created id was stored")
	}
	id, ok := cache.Get(ctx, "Users", provision.CacheKey([]provision.Match{{Attr: "userName", Value: "ada@x"}}))
	require.True(t, ok, "the key resolves from the cache once settled")
	assert.Equal(t, res.Outcome.TargetID, id)
}

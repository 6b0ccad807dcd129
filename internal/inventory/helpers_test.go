package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/auth"
	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/natstest"
	"github.com/scimflow/scimflow/internal/pipeline"
	"github.com/scimflow/scimflow/internal/provision"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// fixture is an inventory wired to real parts: an embedded JetStream server, the CyberArk
// simulator over HTTP with OAuth 2.0, the real connector, the shipped CyberArk data model, and a
// pipeline processor that writes through the same connector and records its writes.
type fixture struct {
	t       testing.TB
	ctx     context.Context
	ns      *natstest.Server
	sim     *cyberarksim.Server
	ts      *httptest.Server
	client  *provision.Client
	oob     *provision.Client // out of band: writes nobody records
	model   *reconcile.Model
	store   *Store
	applied *AppliedLog
	proc    *pipeline.Processor
	runner  *Runner
	cfg     Config
	events  int
}

func newClient(t testing.TB, ts *httptest.Server, cache provision.IDCache) *provision.Client {
	t.Helper()
	c, err := provision.New(provision.Config{
		Profile: provision.ProfileCyberArk, IDCache: cache, BaseURI: ts.URL + "/scim/v2",
		Auth: auth.Config{Mode: auth.ModeOAuth2, OAuth2: auth.OAuth2Config{
			TokenURL: ts.URL + "/oauth2/token/scimflow", ClientID: "scimflow-client",
			ClientSecret: "scimflow-secret", Scopes: []string{"scim"},
		}},
		Retry:   provision.RetryConfig{Attempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
		Breaker: provision.BreakerConfig{OpenTimeout: 200 * time.Millisecond},
		Logger:  zerolog.Nop(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func setup(t testing.TB, cfg Config) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), cfg: cfg}
	f.ns = natstest.MustStart(t)
	f.sim, f.ts = simtest.MustStart(t, cyberarksim.Config{})
	var err error
	f.model, err = reconcile.LoadModel(filepath.Join("..", "..", "deploy", "examples", "models", "cyberark.yaml"))
	require.NoError(t, err)
	kv, err := f.ns.JS.CreateOrUpdateKeyValue(f.ctx, jetstream.KeyValueConfig{Bucket: "IDM_IDCACHE", History: 1})
	require.NoError(t, err)
	f.client = newClient(t, f.ts, provision.NewKVIDCache(kv))
	f.oob = newClient(t, f.ts, nil)
	f.store, err = OpenStore(f.ctx, f.ns.JS, 1)
	require.NoError(t, err)
	f.applied, err = OpenAppliedLog(f.ctx, f.ns.JS, 1, f.model, zerolog.Nop())
	require.NoError(t, err)
	f.proc = pipeline.New(reconcile.NewPlanner(f.model, reconcile.Options{}), f.client, pipeline.Config{
		Applied: f.applied, Windows: pipeline.Every(time.Minute), ReferenceBackoff: time.Millisecond,
	})
	if cfg.Objects == nil {
		cfg.Objects = []string{"User", "Group"}
	}
	cfg.ScratchDir = t.TempDir()
	f.cfg = cfg.WithDefaults("@every 15m")
	f.runner, err = NewRunner(f.cfg, f.model, Options{
		JS: f.ns.JS, Store: f.store, Applied: f.applied, Lister: f.client, Cache: f.client, Worker: "test", Logger: zerolog.Nop(),
	})
	require.NoError(t, err)
	return f
}

// apply runs one event through the pipeline, as the worker would.
func (f *fixture) apply(op, object string, key, attrs map[string]any) events.Outcome {
	f.t.Helper()
	f.events++
	d := &events.Delivery{Attempt: 1, Event: events.NewEvent(fmt.Sprintf("ev-%d", f.events), "/test",
		events.Change{Object: object, Operation: op, Key: key, Attributes: attrs})}
	for {
		res := f.proc.Handle(f.ctx, d)
		if res.Settle != nil {
			res.Settle() // as the consumer does before it acknowledges the event
		}
		if res.Resume.IsZero() {
			require.Contains(f.t, []events.Status{events.StatusSucceeded, events.StatusSkipped}, res.Outcome.Status, "%+v", res.Outcome)
			return res.Outcome
		}
		time.Sleep(time.Millisecond)
	}
}

// do sends a request out of band, straight to the simulator.
func (f *fixture) do(method, path string, body any) []byte {
	f.t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	resp, err := f.oob.Do(f.ctx, provision.Request{Method: method, Path: path, Body: raw})
	require.NoError(f.t, err, "%s %s", method, path)
	return resp.Body
}

func (f *fixture) userID(name string) string {
	f.t.Helper()
	id, found, err := f.oob.Resolve(f.ctx, "Users", []provision.Match{{Attr: "userName", Value: name}})
	require.NoError(f.t, err)
	require.True(f.t, found, name)
	return id
}

func (f *fixture) run() *Job {
	f.t.Helper()
	j, err := f.runner.Run(f.ctx, RunOptions{Trigger: "test"})
	require.NoError(f.t, err)
	return j
}

// drift reads every drift event published so far.
func (f *fixture) drift() []Drift {
	f.t.Helper()
	cons, err := f.ns.JS.OrderedConsumer(f.ctx, DriftStream, jetstream.OrderedConsumerConfig{})
	require.NoError(f.t, err)
	info, err := f.ns.JS.Stream(f.ctx, DriftStream)
	require.NoError(f.t, err)
	n := int(info.CachedInfo().State.Msgs)
	var out []Drift
	for len(out) < n {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(2*time.Second))
		require.NoError(f.t, err)
		got := 0
		for m := range batch.Messages() {
			var ev DriftEvent
			require.NoError(f.t, json.Unmarshal(m.Data(), &ev))
			require.Equal(f.t, DriftSubject(ev.Data.Object, ev.Data.Change), m.Subject())
			out = append(out, ev.Data)
			got++
		}
		require.NotZero(f.t, got, "drift stream holds %d, read %d", n, len(out))
	}
	sort.Slice(out, func(i, j int) bool {
		return events.KeyString(out[i].Key)+out[i].Change < events.KeyString(out[j].Key)+out[j].Change
	})
	return out
}

func testContext(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx, cancel
}

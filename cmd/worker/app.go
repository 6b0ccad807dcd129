package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"

	"github.com/scimflow/scimflow/internal/config"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/guard"
	"github.com/scimflow/scimflow/internal/inventory"
	"github.com/scimflow/scimflow/internal/metrics"
	"github.com/scimflow/scimflow/internal/pipeline"
	"github.com/scimflow/scimflow/internal/provision"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// idCacheBucket is the JetStream key-value bucket of the key → id cache.
const idCacheBucket = "IDM_IDCACHE"

// openIDCacheBucket creates (or updates) the key → id cache's bucket and binds to it. It is a
// cache: an id lost is looked up in the target again, and a stale one costs one 404 (a cached id
// is never trusted for a delete or a disable). So on one server it is persisted asynchronously,
// its writes flushed to disk in the background rather than fsynced one by one (a quarter of the
// worker's events create an object, and each wrote its id through an fsync of its own). A
// replicated bucket keeps the default (JetStream refuses asynchronous persistence there), and an
// existing bucket keeps the mode it was created with (events.EnsureStream). The stream is
// configured as the NATS client configures a key-value bucket of one value per key, which has
// no setting for the persist mode.
func openIDCacheBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	replicas = max(replicas, 1)
	cfg := jetstream.StreamConfig{
		Name:              "KV_" + idCacheBucket,
		Description:       "scimflow key → target id cache",
		Subjects:          []string{"$KV." + idCacheBucket + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxMsgSize:        -1,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		AllowDirect:       true,
		Duplicates:        2 * time.Minute,
		Discard:           jetstream.DiscardNew,
	}
	if replicas == 1 {
		cfg.PersistMode = jetstream.AsyncPersistMode
	}
	if err := events.EnsureStream(ctx, js, cfg); err != nil {
		return nil, err
	}
	return js.KeyValue(ctx, idCacheBucket)
}

// app is a wired worker: NATS (embedded or remote), the streams, the connector, the data model and
// the consume loop.
type app struct {
	cfg      *config.Config
	log      zerolog.Logger
	embedded *events.EmbeddedServer
	nc       *nats.Conn
	js       jetstream.JetStream
	target   *provision.Client
	consumer *events.Consumer
	// inventory: the runner, its store and the scheduler that runs it on one replica.
	inventory *inventory.Runner
	invStore  *inventory.Store
	scheduler *inventory.Scheduler
	// park holds parked keys and held deletes; window is the sync-window schedule, which an
	// operator may change for the pool through settings.
	park     *events.ParkStore
	window   *windowSchedule
	settings *settings
	// metrics is this worker's Prometheus registry (GET /metrics).
	metrics *metrics.Metrics
	// history is the per-key provisioning log (worker explain).
	history *events.History
	// stopWatch ends the id cache's watch of its bucket (nil: not started).
	stopWatch context.CancelFunc
	// paused is the operator's pause in force (nil: provisioning runs).
	paused atomic.Pointer[pauseRecord]
}

// observe is told of every outcome published: metrics and the provisioning log.
func (a *app) observe(o *events.Outcome, stored time.Time, handler time.Duration) {
	a.metrics.Outcome(o, stored, handler)
	a.history.Record(o)
}

// applyPause holds or releases the consume loop as an operator's pause says (nil: resume).
func (a *app) applyPause(rec *pauseRecord) {
	if rec != nil && !rec.Paused {
		rec = nil
	}
	prev := a.paused.Swap(rec)
	a.consumer.Hold(rec != nil)
	switch {
	case rec != nil && prev == nil:
		a.log.Warn().Str("by", rec.By).Str("reason", rec.Reason).Msg("provisioning paused by an operator")
	case rec == nil && prev != nil:
		a.log.Info().Msg("provisioning resumed by an operator")
	}
}

func newLogger(c config.Log, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	if c.Format == "console" || (c.Format == "auto" || c.Format == "") && isTerminal(w) {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	// EventLogHook: a line the pipeline or the connector logs while running an event names it.
	return zerolog.New(w).Level(level).Hook(events.EventLogHook).With().Timestamp().Str("service", "scimflow-worker").Logger()
}

// isTerminal says whether w is a terminal (a person reads it: console logs).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// loadModel loads the data model the configuration names.
func loadModel(cfg *config.Config) (*reconcile.Model, error) {
	m, err := reconcile.LoadModel(cfg.Model)
	if err != nil {
		return nil, fmt.Errorf("load data model: %w", err)
	}
	return m, nil
}

// newTarget builds the connector from the target section.
func newTarget(cfg *config.Config, log zerolog.Logger, cache provision.IDCache, observe ...func(provision.Call)) (*provision.Client, error) {
	tc := cfg.Target
	tc.Logger = log.With().Str("component", "connector").Logger()
	tc.IDCache = cache
	for _, o := range observe {
		tc.Observe = o
	}
	c, err := provision.New(tc)
	if err != nil {
		return nil, fmt.Errorf("connector: %w", err)
	}
	return c, nil
}

// startApp wires everything and leaves the consume loop ready to Run.
func startApp(ctx context.Context, cfg *config.Config, log zerolog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, log: log, metrics: metrics.New()}
	defer func() {
		if err != nil {
			a.close(context.WithoutCancel(ctx))
		}
	}()
	model, err := loadModel(cfg)
	if err != nil {
		return nil, err
	}
	url := cfg.NATS.URL
	if cfg.NATS.Embedded() {
		if err := os.MkdirAll(cfg.NATS.StoreDir, 0o750); err != nil {
			return nil, fmt.Errorf("nats.storeDir: %w", err)
		}
		a.embedded, err = events.StartEmbedded(events.EmbeddedConfig{
			Listen: cfg.NATS.Listen, StoreDir: cfg.NATS.StoreDir, SyncInterval: cfg.NATS.SyncEvery(),
		})
		if err != nil {
			return nil, err
		}
		url = a.embedded.ClientURL()
		log.Info().Str("url", url).Str("storeDir", cfg.NATS.StoreDir).Str("sync", cfg.NATS.SyncInterval).Msg("embedded JetStream started")
	}
	opts := append([]nats.Option{
		nats.Name("scimflow-worker " + cfg.Worker.Name),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn().Err(err).Msg("NATS disconnected")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info().Str("url", nc.ConnectedUrl()).Msg("NATS reconnected") }),
	}, cfg.NATS.ClientOptions()...)
	a.nc, err = connectNATS(ctx, url, opts, cfg.NATS.Embedded(), log)
	if err != nil {
		return nil, err
	}
	a.js, err = jetstream.New(a.nc)
	if err != nil {
		return nil, err
	}
	// Creating the streams and buckets waits for the cluster: on a JetStream cluster that is still
	// forming (a fresh Compose or Kubernetes start), creating a replicated stream takes longer than
	// a request's default 5 s, and a worker that gave up would only be restarted into the same wait.
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	topo := topology(cfg)
	if err := patiently(sctx, log, "streams", func(ctx context.Context) error { return topo.Ensure(ctx, a.js) }); err != nil {
		return nil, err
	}
	if a.history, err = events.NewHistory(a.js); err != nil {
		return nil, err
	}
	var kv jetstream.KeyValue
	err = patiently(sctx, log, idCacheBucket, func(ctx context.Context) (err error) {
		kv, err = openIDCacheBucket(ctx, a.js, cfg.NATS.Replicas)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", idCacheBucket, err)
	}
	// The pool's id cache with this worker's copy in memory, kept current by a watch that lasts
	// until a.close.
	wctx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	a.stopWatch = stopWatch
	ids, err := provision.NewWatchedIDCache(wctx, kv, a.nc, 0, log.With().Str("component", "idcache").Logger())
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: watch: %w", idCacheBucket, err)
	}
	ids.ObserveWrites(func(d time.Duration) { a.metrics.StoreWrite("idcache", d) })
	a.target, err = newTarget(cfg, log, ids, a.metrics.Call)
	if err != nil {
		return nil, err
	}
	if a.window, err = newWindowSchedule(cfg.SyncWindow.Schedule); err != nil {
		return nil, err
	}
	if err = patiently(sctx, log, settingsBucket, func(ctx context.Context) (err error) {
		a.settings, err = openSettings(ctx, a.js, cfg.NATS.Replicas, log.With().Str("component", "settings").Logger())
		return err
	}); err != nil {
		return nil, err
	}
	if err := cfg.DeletionGuard.CheckModel(model); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	var tallyKV jetstream.KeyValue
	err = patiently(sctx, log, guard.KVTallyBucket, func(ctx context.Context) (err error) {
		tallyKV, err = a.js.CreateOrUpdateKeyValue(ctx, guard.KVTallyConfig(guard.KVTallyBucket, cfg.NATS.Replicas))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", guard.KVTallyBucket, err)
	}
	var applied *inventory.AppliedLog
	err = patiently(sctx, log, "applied log", func(ctx context.Context) (err error) {
		applied, err = inventory.OpenAppliedLog(ctx, a.js, cfg.NATS.Replicas, model, log.With().Str("component", "inventory").Logger())
		return err
	})
	if err != nil {
		return nil, err
	}
	applied.ObserveWrites(func(d time.Duration) { a.metrics.StoreWrite("applied", d) })
	if err := patiently(sctx, log, "inventory", func(ctx context.Context) error { return a.openInventory(ctx, model, applied, log) }); err != nil {
		return nil, err
	}
	// maxPercent's base: the last inventory's count, else a count query on the target.
	deletionGuard, err := guard.New(cfg.DeletionGuard, guard.Options{
		Counter: guard.Counters{a.inventory, guard.QueryCounter{Target: a.target}}, Tally: guard.NewKVTally(tallyKV),
	})
	if err != nil {
		return nil, fmt.Errorf("deletionGuard: %w", err)
	}
	planner := reconcile.NewPlanner(model, reconcile.Options{UseNumericValues: cfg.Target.UseNumericValues})
	proc := pipeline.New(planner, a.target, pipeline.Config{
		Applied: applied,
		Guard:   deletionGuard, Approved: func(d *events.Delivery) bool { return d.Approved },
		Windows: a.window, MaxWindows: cfg.SyncWindow.MaxWindows,
		ReferenceRetries: cfg.SyncWindow.ReferenceRetries, ReferenceBackoff: cfg.SyncWindow.ReferenceBackoff,
		Logger: log.With().Str("component", "pipeline").Logger(),
	})
	var pool *events.Pool
	if cfg.Worker.Partitions == nil {
		// No static split: this worker takes its share of the partitions in the pool.
		err = patiently(sctx, log, "pool", func(ctx context.Context) (err error) {
			pool, err = events.JoinPool(ctx, a.js, cfg.Worker.Name, events.PoolConfig{
				Replicas: cfg.NATS.Replicas, Logger: log.With().Str("component", "pool").Logger(),
			})
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	var park *events.ParkStore
	err = patiently(sctx, log, "park store", func(ctx context.Context) (err error) {
		park, err = events.OpenParkStore(ctx, a.js, cfg.NATS.Replicas)
		return err
	})
	if err != nil {
		return nil, err
	}
	a.park = park
	a.consumer = events.NewConsumer(a.js, topo, events.ConsumerConfig{
		Pool: pool, Park: park, Windows: a.window, Observe: a.observe, ObserveWrite: a.metrics.StoreWrite, Note: a.history.Note,
		Name: cfg.NATS.Consumer, Partitions: cfg.Worker.Partitions, Lanes: cfg.Worker.Lanes,
		AckWait: cfg.Worker.AckWait, DrainTimeout: cfg.Worker.DrainTimeout, Worker: cfg.Worker.Name,
		Logger: log.With().Str("component", "consumer").Logger(),
	}, proc)
	// A pause stored before this worker started holds before its first event.
	if rec, err := a.settings.pauseRecord(sctx); err != nil {
		return nil, err
	} else if rec != nil {
		a.applyPause(rec)
	}
	a.watchMetrics()
	return a, nil
}

// patiently runs f with a deadline of 5 s per attempt, again while JetStream does not answer in
// time, until ctx ends. Creating a replicated stream or bucket that another worker creates at the
// same moment can go unanswered on a fresh cluster (seen with two workers starting together on a
// 3-node cluster: one waited two minutes for a bucket created in milliseconds); the steps are
// idempotent, and the next attempt finds what the first made. The pause between attempts is
// random, so that two workers that start together fall out of step instead of racing again at
// every step.
func patiently(ctx context.Context, log zerolog.Logger, what string, f func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			return err
		}
		log.Warn().Err(err).Str("step", what).Int("attempt", attempt).Msg("JetStream did not answer in time; trying again")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(200+rand.IntN(1000)) * time.Millisecond):
		}
	}
}

// openInventory wires the inventory: its store, the runner (reading through the connector, so
// sharing its limiter, breaker and token) and the scheduler.
func (a *app) openInventory(ctx context.Context, model *reconcile.Model, applied *inventory.AppliedLog, log zerolog.Logger) error {
	var err error
	a.invStore, err = inventory.OpenStore(ctx, a.js, a.cfg.NATS.Replicas)
	if err != nil {
		return err
	}
	ilog := log.With().Str("component", "inventory").Logger()
	var noter inventory.Noter // drift in the provisioning log
	if a.history != nil {
		noter = a.history
	}
	var finished func(*inventory.Job)
	if a.metrics != nil { // worker inventory --once has none
		finished = a.metrics.InventoryJob
	}
	a.inventory, err = inventory.NewRunner(a.cfg.Inventory, model, inventory.Options{
		JS: a.js, Store: a.invStore, Applied: applied, Lister: a.target, Cache: a.target,
		Worker: a.cfg.Worker.Name, Logger: ilog, History: noter, Finished: finished,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", a.cfg.File, err)
	}
	a.scheduler = inventory.NewScheduler(a.inventory, a.invStore, a.cfg.Inventory, a.cfg.Worker.Name, ilog)
	return nil
}

// connectNATS connects to url. A remote server that is down (restarting, not up yet) is tried
// again for up to a minute before the worker gives up, so that a broker restart does not take the
// workers down with it.
func connectNATS(ctx context.Context, url string, opts []nats.Option, embedded bool, log zerolog.Logger) (*nats.Conn, error) {
	deadline := time.Now().Add(time.Minute)
	for backoff := 250 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		if embedded || !errors.Is(err, nats.ErrNoServers) || time.Now().Add(backoff).After(deadline) {
			return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
		}
		log.Warn().Err(err).Str("url", url).Dur("retryIn", backoff).Msg("NATS is not reachable yet")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to NATS at %s: %w", url, ctx.Err())
		case <-time.After(backoff):
		}
	}
}

func topology(cfg *config.Config) events.Topology {
	return events.Topology{
		Partitions: cfg.NATS.Partitions, Replicas: cfg.NATS.Replicas,
		EventsMaxAge: cfg.NATS.EventsMaxAge, OutcomesMaxAge: cfg.NATS.OutcomesMaxAge,
		DLQMaxAge: cfg.NATS.DLQMaxAge, DuplicateWindow: cfg.NATS.DuplicateWindow,
		HistoryPerKey: cfg.NATS.HistoryPerKey, HistoryMaxAge: cfg.NATS.HistoryMaxAge,
	}
}

// natsURL is where other clients (the publisher, the demo) reach this worker's NATS.
func (a *app) natsURL() string {
	if a.embedded != nil {
		return a.embedded.ClientURL()
	}
	return a.cfg.NATS.URL
}

// close shuts down in order: the connector (revoking its token), then NATS (flushing pending
// publishes), then the embedded server.
func (a *app) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if a.target != nil {
		if err := a.target.Close(ctx); err != nil {
			a.log.Warn().Err(err).Msg("closing the connector")
		}
	}
	if a.history != nil {
		// The provisioning log's last entries, before the connection goes.
		fctx, fcancel := context.WithTimeout(ctx, 2*time.Second)
		if err := a.history.Flush(fctx); err != nil {
			a.log.Warn().Err(err).Msg("flushing the provisioning log")
		}
		fcancel()
	}
	if a.stopWatch != nil {
		a.stopWatch()
	}
	if a.nc != nil {
		if err := a.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			a.log.Warn().Err(err).Msg("draining the NATS connection")
		}
		for !a.nc.IsClosed() && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if a.embedded != nil {
		a.embedded.Shutdown()
	}
}

// sweepEvery is how often a worker removes the markers of keys unparked more than a day ago
// (ParkStore.SweepMarkers), after doing so when it starts.
const sweepEvery = 6 * time.Hour

// sweepMarkers keeps IDM_KEYSTATE to the keys parked now, until ctx ends. A failed sweep is
// logged and tried again at the next: a marker left behind costs its listings a message, nothing
// else.
func (a *app) sweepMarkers(ctx context.Context) {
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := a.park.SweepMarkers(sctx, events.MarkerAge)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			a.log.Warn().Err(err).Msg("parked keys: the markers of keys unparked over a day ago were not swept; trying again in 6 hours")
		case n > 0:
			a.log.Info().Int("markers", n).Msg("parked keys: swept the markers of keys unparked over a day ago")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(sweepEvery):
		}
	}
}

// serve runs the worker until ctx is cancelled: the HTTP endpoints and the consume loop,
// supervised together. A failure of either stops both and is returned, so that a worker that can
// no longer consume exits non-zero instead of answering /healthz as if it worked.
func (a *app) serve(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	if a.cfg.HTTP.Listen != "" {
		srv, ln, err := listenHTTP(a)
		if err != nil {
			return err
		}
		a.log.Info().Str("addr", ln.Addr().String()).Msg("health, status and metrics served")
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	g.Go(func() error { return a.settings.follow(gctx, a.window, a.applyPause) })
	g.Go(func() error { a.sweepMarkers(gctx); return nil })
	g.Go(func() error {
		if err := a.scheduler.Run(gctx); err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := a.consumer.Run(gctx); err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		return nil
	})
	return g.Wait()
}

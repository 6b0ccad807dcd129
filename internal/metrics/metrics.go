// Package metrics is the worker's Prometheus exposition: every series the worker exports, defined
// in one table (Families), fed by hooks on the hot path (outcomes, SCIM calls) and by reads of the
// worker's state at scrape time (consumer, breaker, limiter, token, lag, inventory).
//
// Each worker has its own registry, so that several workers in one process (tests) never share a
// series. Label values are bounded: data-model objects, operations, statuses, methods, resources,
// partitions, drift classes; never an event id or a key.
package metrics

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scimflow/scimflow/internal/auth"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/inventory"
	"github.com/scimflow/scimflow/internal/provision"
)

// Family is one exported metric family.
type Family struct {
	Name   string
	Type   string // counter, gauge, histogram
	Help   string
	Labels []string
}

// The families, in the order the dashboard reads them.
var (
	famReceived       = Family{"scimflow_events_received_total", "counter", "Events delivered to this worker (redeliveries included).", nil}
	famInFlight       = Family{"scimflow_events_in_flight", "gauge", "Events being processed now.", nil}
	famOutcomes       = Family{"scimflow_outcomes_total", "counter", "Outcomes published, by data-model object, operation and status (progress outcomes deferred and held included).", []string{"object", "operation", "status"}}
	famLatency        = Family{"scimflow_event_latency_seconds", "histogram", "From an event's arrival in JetStream to its final outcome (parking and redeliveries included).", []string{"object"}}
	famHandler        = Family{"scimflow_event_handler_seconds", "histogram", "Time one delivery of an event spent being planned and applied (the handler), by object.", []string{"object"}}
	famPublishErrors  = Family{"scimflow_outcome_publish_errors_total", "counter", "Outcomes or dead letters that could not be published (the event is redelivered).", nil}
	famDeadLetters    = Family{"scimflow_dead_letters_total", "counter", "Events dead-lettered, by object and error class.", []string{"object", "class"}}
	famParkedEvents   = Family{"scimflow_events_parked_total", "counter", "Events this worker parked until a sync window (or held for approval).", nil}
	famParkedKeys     = Family{"scimflow_parked_keys", "gauge", "Keys of this worker's partitions parked until the next sync window.", nil}
	famHeldDeletes    = Family{"scimflow_held_deletes", "gauge", "Keys of this worker's partitions whose delete the deletion guard holds for an operator.", nil}
	famPaused         = Family{"scimflow_intake_paused", "gauge", "1 while intake is paused because the target cannot take work (breaker open, credentials refused).", nil}
	famPartitions     = Family{"scimflow_partitions_owned", "gauge", "Partitions whose consumers this worker runs now.", nil}
	famMoves          = Family{"scimflow_ownership_moves_total", "counter", "Partitions this worker took or handed over since it started.", nil}
	famPending        = Family{"scimflow_consumer_pending_events", "gauge", "Events not yet delivered, per partition this worker owns (consumer lag).", []string{"partition"}}
	famAckPending     = Family{"scimflow_consumer_ack_pending_events", "gauge", "Events delivered and not yet acknowledged, per partition this worker owns.", []string{"partition"}}
	famRequests       = Family{"scimflow_scim_requests_total", "counter", "SCIM requests to the target, by method, resource and HTTP status (\"error\" when no answer came).", []string{"method", "resource", "status"}}
	famRequestSeconds = Family{"scimflow_scim_request_duration_seconds", "histogram", "SCIM request round trips, by method and resource.", []string{"method", "resource"}}
	famBreaker        = Family{"scimflow_target_breaker_state", "gauge", "Circuit breaker state (1 for the current state).", []string{"state"}}
	famLimit          = Family{"scimflow_target_concurrency_limit", "gauge", "Requests the adaptive limiter lets in flight.", nil}
	famTargetInFlight = Family{"scimflow_target_requests_in_flight", "gauge", "SCIM requests in flight now.", nil}
	famTokens         = Family{"scimflow_token_requests_total", "counter", "OAuth 2.0 token requests, by result (ok, failed).", []string{"result"}}
	famInvalidations  = Family{"scimflow_token_invalidations_total", "counter", "Cached tokens dropped after the target refused them (401).", nil}
	famInvDuration    = Family{"scimflow_inventory_last_duration_seconds", "gauge", "Duration of the last finished inventory job.", nil}
	famInvEnd         = Family{"scimflow_inventory_last_end_timestamp_seconds", "gauge", "When the last inventory job ended (Unix time).", nil}
	famInvStatus      = Family{"scimflow_inventory_last_status", "gauge", "Status of the last inventory job (1 for its status).", []string{"status"}}
	famInvObjects     = Family{"scimflow_inventory_objects", "gauge", "Objects the last inventory read, by data-model object.", []string{"object"}}
	famInvDrift       = Family{"scimflow_inventory_drift", "gauge", "Changes the last inventory found, by drift class.", []string{"class"}}
	famInvRunning     = Family{"scimflow_inventory_running", "gauge", "1 while this worker runs an inventory.", nil}
	famStoreWrites    = Family{"scimflow_jetstream_write_seconds", "histogram", "JetStream round trips on an event's path, by what is written: the applied record (applied), the outcome (outcome) and a created object's key → id (idcache), each stored (fsynced with sync_interval: always) before the server answers, and the confirmed acknowledgement (ack).", []string{"write"}}
	famInvJobs        = Family{"scimflow_inventory_duration_seconds", "histogram", "Inventory jobs this worker ran, by how they ended (status): how long each took.", []string{"status"}}
)

// Families lists every family the worker exports besides the Go and process collectors
// (go_*, process_*).
var Families = []Family{
	famReceived, famInFlight, famOutcomes, famLatency, famHandler, famPublishErrors, famDeadLetters,
	famParkedEvents, famParkedKeys, famHeldDeletes, famPaused, famPartitions, famMoves, famPending,
	famAckPending, famRequests, famRequestSeconds, famStoreWrites, famBreaker, famLimit, famTargetInFlight, famTokens,
	famInvalidations, famInvDuration, famInvEnd, famInvStatus, famInvObjects, famInvDrift, famInvRunning,
	famInvJobs,
}

// Source is where the scrape-time figures come from; a nil func leaves its families out.
type Source struct {
	Consumer func() events.ConsumerStats
	Breaker  func() string
	Limit    func() int
	InFlight func() int
	Token    func() auth.Stats
	// Lag reads the consumers of the partitions this worker owns: pending and ack-pending, by
	// partition. It is called at most every lagEvery.
	Lag func(ctx context.Context) (map[int]Lag, error)
	// LastJob is the newest finished inventory job (nil when none); Running says whether this
	// worker runs one now. Called at most every lagEvery.
	LastJob func(ctx context.Context) (*inventory.Job, error)
	Running func() bool
}

// Lag is one partition's backlog.
type Lag struct {
	Pending    uint64
	AckPending int
}

// lagEvery bounds how often a scrape asks JetStream (consumer info, inventory jobs).
const lagEvery = 5 * time.Second

// Metrics is one worker's registry and its hot-path collectors.
type Metrics struct {
	reg            *prometheus.Registry
	outcomes       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	handler        *prometheus.HistogramVec
	deadLetters    *prometheus.CounterVec
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	storeWrites    *prometheus.HistogramVec
	inventoryJobs  *prometheus.HistogramVec
}

// latencyBuckets span a fast pipeline (ms) to a key parked for windows (an hour).
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// requestBuckets span a local target to a slow one.
var requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// writeBuckets span a JetStream write on a quiet local disk (under a millisecond) to one waiting
// behind a stalled fsync or a cluster's election.
var writeBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// inventoryBuckets span a small directory read in a second to a large one read for hours.
var inventoryBuckets = []float64{.1, .5, 1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400}

// New returns the metrics of one worker, with the Go and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.outcomes = prometheus.NewCounterVec(opts(famOutcomes), famOutcomes.Labels)
	m.latency = prometheus.NewHistogramVec(hopts(famLatency, latencyBuckets), famLatency.Labels)
	m.handler = prometheus.NewHistogramVec(hopts(famHandler, requestBuckets), famHandler.Labels)
	m.deadLetters = prometheus.NewCounterVec(opts(famDeadLetters), famDeadLetters.Labels)
	m.requests = prometheus.NewCounterVec(opts(famRequests), famRequests.Labels)
	m.requestSeconds = prometheus.NewHistogramVec(hopts(famRequestSeconds, requestBuckets), famRequestSeconds.Labels)
	m.storeWrites = prometheus.NewHistogramVec(hopts(famStoreWrites, writeBuckets), famStoreWrites.Labels)
	m.inventoryJobs = prometheus.NewHistogramVec(hopts(famInvJobs, inventoryBuckets), famInvJobs.Labels)
	m.reg.MustRegister(m.outcomes, m.latency, m.handler, m.deadLetters, m.requests, m.requestSeconds, m.storeWrites, m.inventoryJobs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func opts(f Family) prometheus.CounterOpts { return prometheus.CounterOpts{Name: f.Name, Help: f.Help} }

func hopts(f Family, buckets []float64) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{Name: f.Name, Help: f.Help, Buckets: buckets}
}

// Handler serves the registry in the Prometheus text format (or OpenMetrics when asked).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Registry is the worker's registry.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Outcome counts a published outcome; stored is when the event arrived in JetStream (zero when
// unknown), handler how long this delivery's handler ran.
func (m *Metrics) Outcome(o *events.Outcome, stored time.Time, handler time.Duration) {
	object := o.Object
	m.outcomes.WithLabelValues(object, string(o.Operation), string(o.Status)).Inc()
	if handler > 0 {
		m.handler.WithLabelValues(object).Observe(handler.Seconds())
	}
	if o.Status.Final() && !stored.IsZero() {
		m.latency.WithLabelValues(object).Observe(max(0, o.Time.Sub(stored).Seconds()))
	}
	if o.Status == events.StatusDeadLettered {
		class := "unknown"
		if o.Error != nil && o.Error.Class != "" {
			class = o.Error.Class
		}
		m.deadLetters.WithLabelValues(object, class).Inc()
	}
}

// Call counts one SCIM request attempt.
func (m *Metrics) Call(c provision.Call) {
	method, resource := c.Method, Resource(c.Path)
	status := "error"
	if c.Status > 0 {
		status = strconv.Itoa(c.Status)
	}
	m.requests.WithLabelValues(method, resource, status).Inc()
	if c.Status > 0 {
		m.requestSeconds.WithLabelValues(method, resource).Observe(c.Duration.Seconds())
	}
}

// StoreWrite observes one JetStream round trip on an event's path (write: applied, outcome, ack).
func (m *Metrics) StoreWrite(write string, d time.Duration) {
	m.storeWrites.WithLabelValues(write).Observe(d.Seconds())
}

// InventoryJob observes the duration of an inventory job this worker ran. Only the worker that ran
// a job observes it, so that sum() across workers counts each job once (the last job's gauges,
// read from the shared job records, are the same on every worker instead).
func (m *Metrics) InventoryJob(j *inventory.Job) {
	d := j.EndedAt.Sub(j.StartedAt)
	if j.EndedAt.IsZero() || d < 0 {
		d = time.Duration(j.DurationMs) * time.Millisecond
	}
	m.inventoryJobs.WithLabelValues(j.Status).Observe(d.Seconds())
}

// Resource is the SCIM resource of a request path: its first segment ("Users/2819c223" →
// "Users"), so that the label stays bounded.
func Resource(path string) string {
	path = strings.TrimPrefix(path, "/")
	if i := strings.IndexAny(path, "/?"); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return "-"
	}
	return path
}

// Watch registers the scrape-time families read from src.
func (m *Metrics) Watch(src Source) {
	m.reg.MustRegister(&stateCollector{src: src})
}

// stateCollector reads the worker's state at scrape time.
type stateCollector struct {
	src Source

	mu      sync.Mutex
	lagAt   time.Time
	lag     map[int]Lag
	jobAt   time.Time
	lastJob *inventory.Job
}

func desc(f Family) *prometheus.Desc { return prometheus.NewDesc(f.Name, f.Help, f.Labels, nil) }

var stateFamilies = []Family{famReceived, famInFlight, famPublishErrors, famParkedEvents, famParkedKeys, famHeldDeletes,
	famPaused, famPartitions, famMoves, famPending, famAckPending, famBreaker, famLimit, famTargetInFlight, famTokens,
	famInvalidations, famInvDuration, famInvEnd, famInvStatus, famInvObjects, famInvDrift, famInvRunning}

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range stateFamilies {
		ch <- desc(f)
	}
}

func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	emit := func(f Family, v float64, labels ...string) {
		t := prometheus.GaugeValue
		if f.Type == "counter" {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(desc(f), t, v, labels...)
	}
	if s.src.Consumer != nil {
		st := s.src.Consumer()
		emit(famReceived, float64(st.Received))
		emit(famInFlight, float64(st.InFlight))
		emit(famPublishErrors, float64(st.PublishErr))
		emit(famParkedEvents, float64(st.Parked))
		emit(famParkedKeys, float64(st.ParkedKeys-st.HeldKeys))
		emit(famHeldDeletes, float64(st.HeldKeys))
		emit(famPaused, b2f(st.Paused != ""))
		emit(famPartitions, float64(len(st.Partitions)))
		emit(famMoves, float64(st.OwnershipMoves))
	}
	if s.src.Breaker != nil {
		cur := s.src.Breaker()
		for _, st := range []string{"closed", "half-open", "open"} {
			emit(famBreaker, b2f(st == cur), st)
		}
	}
	if s.src.Limit != nil {
		emit(famLimit, float64(s.src.Limit()))
	}
	if s.src.InFlight != nil {
		emit(famTargetInFlight, float64(s.src.InFlight()))
	}
	if s.src.Token != nil {
		ts := s.src.Token()
		emit(famTokens, float64(ts.TokensFetched), "ok")
		emit(famTokens, float64(ts.FetchFailures), "failed")
		emit(famInvalidations, float64(ts.Invalidations))
	}
	if s.src.Running != nil {
		emit(famInvRunning, b2f(s.src.Running()))
	}
	lag, job := s.slow()
	parts := make([]int, 0, len(lag))
	for p := range lag {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		emit(famPending, float64(lag[p].Pending), strconv.Itoa(p))
		emit(famAckPending, float64(lag[p].AckPending), strconv.Itoa(p))
	}
	if job != nil {
		emit(famInvDuration, float64(job.DurationMs)/1000)
		end := job.EndedAt
		if end.IsZero() {
			end = job.StartedAt
		}
		emit(famInvEnd, float64(end.UnixMilli())/1000)
		emit(famInvStatus, 1, job.Status)
		for o, n := range job.Objects {
			emit(famInvObjects, float64(n), o)
		}
		// Every drift class, 0 when the job found none of it: a clean run reads as 0, not as no data.
		for _, c := range []string{inventory.ClassExternalChange, inventory.ClassUnmanaged, inventory.ClassMissing, inventory.ClassOurs} {
			emit(famInvDrift, float64(job.Drift[c]), c)
		}
		for c, n := range job.Drift {
			switch c {
			case inventory.ClassExternalChange, inventory.ClassUnmanaged, inventory.ClassMissing, inventory.ClassOurs:
			default:
				emit(famInvDrift, float64(n), c)
			}
		}
	}
}

// slow returns the figures that cost a request to JetStream, read at most every lagEvery.
func (s *stateCollector) slow() (map[int]Lag, *inventory.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s.src.Lag != nil && now.Sub(s.lagAt) >= lagEvery {
		if lag, err := s.src.Lag(ctx); err == nil {
			s.lag, s.lagAt = lag, now
		}
	}
	if s.src.LastJob != nil && now.Sub(s.jobAt) >= lagEvery {
		if j, err := s.src.LastJob(ctx); err == nil {
			s.lastJob, s.jobAt = j, now
		}
	}
	return s.lag, s.lastJob
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

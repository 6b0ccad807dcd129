package metrics

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/auth"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/inventory"
	"github.com/scimflow/scimflow/internal/provision"
)

// Every family is documented in docs/operations.md, named as Prometheus names things.
func TestEveryFamilyIsDocumentedAndWellNamed(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, f := range Families {
		assert.False(t, seen[f.Name], "%s twice", f.Name)
		seen[f.Name] = true
		assert.Contains(t, string(doc), "`"+f.Name+"`", "docs/operations.md does not list %s", f.Name)
		assert.True(t, strings.HasPrefix(f.Name, "scimflow_"), f.Name)
		switch f.Type {
		case "counter":
			assert.True(t, strings.HasSuffix(f.Name, "_total"), "a counter ends in _total: %s", f.Name)
		case "histogram":
			assert.True(t, strings.HasSuffix(f.Name, "_seconds"), "our histograms are durations in seconds: %s", f.Name)
		case "gauge":
			assert.False(t, strings.HasSuffix(f.Name, "_total"), "a gauge is no total: %s", f.Name)
		default:
			t.Errorf("%s: type %q", f.Name, f.Type)
		}
	}
}

// The hot-path hooks count what they are told, with bounded labels.
func TestOutcomeAndCallHooks(t *testing.T) {
	m := New()
	stored := time.Now().Add(-2 * time.Second)
	m.Outcome(&events.Outcome{Object: "User", Operation: events.OpCreate, Status: events.StatusSucceeded, Time: time.Now()}, stored, 30*time.Millisecond)
	m.Outcome(&events.Outcome{Object: "User", Operation: events.OpUpdate, Status: events.StatusDeferred, Time: time.Now()}, stored, 0)
	m.Outcome(&events.Outcome{Object: "Group", Operation: events.OpCreate, Status: events.StatusDeadLettered, Time: time.Now(),
		Error: &events.OutcomeError{Class: "permanent"}}, stored, time.Millisecond)
	m.Call(provision.Call{Method: "PATCH", Path: "Users/2819c223-7f76", Status: 200, Duration: 5 * time.Millisecond})
	m.Call(provision.Call{Method: "GET", Path: "Users", Query: "filter=userName%20eq%20%22x%22", Status: 200})
	m.Call(provision.Call{Method: "POST", Path: "/Groups", Err: "connection refused"})

	assert.Equal(t, 1.0, testutil.ToFloat64(m.outcomes.WithLabelValues("User", "Create", "succeeded")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.outcomes.WithLabelValues("User", "Update", "deferred")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.deadLetters.WithLabelValues("Group", "permanent")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("PATCH", "Users", "200")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("GET", "Users", "200")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.requests.WithLabelValues("POST", "Groups", "error")))
	// Two final outcomes (of two objects) have a latency; the deferral is no final outcome.
	n, err := testutil.GatherAndCount(m.Registry(), "scimflow_event_latency_seconds")
	require.NoError(t, err)
	assert.Equal(t, 2, n, "one series per object")
	assert.Equal(t, uint64(1), histogramCount(t, m, "scimflow_event_latency_seconds", "User"))
}

func TestResource(t *testing.T) {
	for in, want := range map[string]string{"Users/2819c223": "Users", "/Groups": "Groups", "Users?filter=x": "Users", "": "-", "Safes/a/Members/b": "Safes"} {
		assert.Equal(t, want, Resource(in), in)
	}
}

func histogramCount(t *testing.T, m *Metrics, name, object string) uint64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.Metric {
			for _, l := range s.Label {
				if l.GetName() == "object" && l.GetValue() == object {
					return s.Histogram.GetSampleCount()
				}
			}
		}
	}
	t.Fatalf("no %s{object=%q}", name, object)
	return 0
}

// The registry exports exactly the families of the table, each with its type, once every hook
// has been told something and every source answers: a family registered outside Families would
// escape the dashboard and docs checks, one in Families never registered would be a promise.
func TestRegistryExportsTheTable(t *testing.T) {
	m := New()
	m.Watch(Source{
		Consumer: func() events.ConsumerStats { return events.ConsumerStats{Received: 3, Partitions: []int{0, 1}} },
		Breaker:  func() string { return "closed" },
		Limit:    func() int { return 8 },
		InFlight: func() int { return 1 },
		Token:    func() auth.Stats { return auth.Stats{TokensFetched: 1} },
		Lag: func(context.Context) (map[int]Lag, error) {
			return map[int]Lag{0: {Pending: 4}, 1: {AckPending: 2}}, nil
		},
		LastJob: func(context.Context) (*inventory.Job, error) {
			end := time.Now()
			return &inventory.Job{Status: inventory.StatusSucceeded, StartedAt: end.Add(-time.Minute), EndedAt: end, DurationMs: 60000,
				Objects: map[string]int{"User": 10}, Drift: map[string]int{"unmanaged": 1}}, nil
		},
		Running: func() bool { return false },
	})
	m.Outcome(&events.Outcome{Object: "User", Operation: events.OpCreate, Status: events.StatusDeadLettered, Time: time.Now(),
		Error: &events.OutcomeError{Class: "invalid"}}, time.Now().Add(-time.Second), time.Millisecond)
	m.Call(provision.Call{Method: "GET", Path: "Users", Status: 200, Duration: time.Millisecond})
	m.StoreWrite("applied", 2*time.Millisecond)
	end := time.Now()
	m.InventoryJob(&inventory.Job{Status: inventory.StatusBaseline, StartedAt: end.Add(-90 * time.Second), EndedAt: end})

	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	types := map[string]dto.MetricType{"counter": dto.MetricType_COUNTER, "gauge": dto.MetricType_GAUGE, "histogram": dto.MetricType_HISTOGRAM}
	want := map[string]dto.MetricType{}
	for _, f := range Families {
		want[f.Name] = types[f.Type]
	}
	got := map[string]dto.MetricType{}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "go_") || strings.HasPrefix(f.GetName(), "process_") {
			continue
		}
		got[f.GetName()] = f.GetType()
	}
	assert.Equal(t, want, got)
	assert.Equal(t, uint64(1), histogramCountBy(t, fams, "scimflow_inventory_duration_seconds", "status", "baseline"))
}

func histogramCountBy(t *testing.T, fams []*dto.MetricFamily, name, label, value string) uint64 {
	t.Helper()
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.Metric {
			for _, l := range s.Label {
				if l.GetName() == label && l.GetValue() == value {
					return s.Histogram.GetSampleCount()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

package main

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseHWM(t *testing.T) {
	n, err := parseHWM("Name:\tworker\nVmPeak:\t  900 kB\nVmHWM:\t   20480 kB\nVmRSS:\t 100 kB\n")
	require.NoError(t, err)
	assert.Equal(t, int64(20480*1024), n)
	_, err = parseHWM("Name:\tworker\n")
	assert.EqualError(t, err, "/proc status has no VmHWM line")
	self, err := peakRSS(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, self)
}

func TestParseBench(t *testing.T) {
	out := `goos: linux
pkg: github.com/scimflow/scimflow/internal/events
BenchmarkDecode-2   	   45010	     25120 ns/op	    4120 B/op	     127 allocs/op
PASS
pkg: github.com/scimflow/scimflow/internal/reconcile
BenchmarkPlan/create-2         	   80000	     12000 ns/op	    3000 B/op	      60 allocs/op	 12.5 events/ms
BenchmarkPlan logs something
ok  	github.com/scimflow/scimflow/internal/reconcile	2.1s
`
	rs := parseBench(out)
	require.Len(t, rs, 2)
	assert.Equal(t, microResult{pkg: "github.com/scimflow/scimflow/internal/events", name: "BenchmarkDecode", nsPerOp: 25120, bPerOp: 4120, allocs: 127}, rs[0])
	assert.Equal(t, "BenchmarkPlan/create", rs[1].name)
	assert.Equal(t, []string{"12.5 events/ms"}, rs[1].extra)
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	assert.Equal(t, 50*time.Millisecond, percentile(ds, 50))
	assert.Equal(t, 99*time.Millisecond, percentile(ds, 99))
	assert.Equal(t, 100*time.Millisecond, percentile(ds, 100))
	assert.Equal(t, time.Duration(0), percentile(nil, 99))
}

func TestReplaceGeneratedKeepsWhatPeopleWrote(t *testing.T) {
	doc := "# Benchmarks\n\nintro\n\n" + beginMark + "\nold figures\n" + endMark + "\n\n## Profile\n\nwritten by hand\n"
	got, err := replaceGenerated(doc, beginMark+"\nnew figures\n"+endMark+"\n")
	require.NoError(t, err)
	assert.Equal(t, "# Benchmarks\n\nintro\n\n"+beginMark+"\nnew figures\n"+endMark+"\n\n## Profile\n\nwritten by hand\n", got)

	got, err = replaceGenerated("# Benchmarks\n", beginMark+"\nx\n"+endMark+"\n")
	require.NoError(t, err)
	assert.Equal(t, "# Benchmarks\n\n"+beginMark+"\nx\n"+endMark+"\n", got)

	_, err = replaceGenerated(endMark+"\n"+beginMark+"\n", "x")
	assert.ErrorContains(t, err, "the generated part's marks are broken")
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct{ subject, reply, data, want string }{
		{"$JS.ACK.IDM_EVENTS.w-p1.1.2.3.4.0", "", "", "ack"},
		{"$JS.ACK.IDM_EVENTS.w-p1.1.2.3.4.0", "", "+WPI", "ack in progress (+WPI)"},
		{"$JS.ACK.IDM_EVENTS.w-p1.1.2.3.4.0", "", "-NAK {\"delay\":1}", "nak"},
		{"$JS.API.CONSUMER.MSG.NEXT.IDM_EVENTS.w-p1", "_INBOX.x", "{}", "pull request"},
		{"$JS.API.DIRECT.GET.KV_IDM_IDCACHE.$KV.IDM_IDCACHE.id", "_INBOX.x", "", "direct get (KV read) KV_IDM_IDCACHE"},
		{"$JS.API.CONSUMER.INFO.IDM_EVENTS.w-p1", "_INBOX.x", "", "JetStream API CONSUMER.INFO"},
		{"$KV.IDM_APPLIED.abc", "_INBOX.x", "{}", "KV write IDM_APPLIED"},
		{"idm.outcomes.User.succeeded", "_INBOX.x", "{}", "publish idm.outcomes"},
		{"idm.events.User.abc", "_INBOX.x", "{}", "event publish"},
		// Deliveries keep the stored subject and carry an ack reply: the server sent them.
		{"idm.part.3.User.abc", "$JS.ACK.IDM_EVENTS.w-p3.1.2.3.4.0", "{}", ""},
		{"_INBOX.abc.1", "", "{}", ""},
	} {
		assert.Equal(t, tc.want, classify(tc.subject, tc.reply, []byte(tc.data)), tc.subject+" "+tc.data)
	}
}

// Every event of the mixed workload that depends on another comes after it, and each key's
// events are in order; the mix is 1 create : 2 updates : 1 membership add per user.
func TestMixedWorkloadOrder(t *testing.T) {
	items, err := mixed("t", 500, 7)
	require.NoError(t, err)
	require.Len(t, items, 7+4*500)
	at := map[string]int{}
	kinds := map[string]int{}
	for i, it := range items {
		at[it.id] = i
		kinds[it.kind]++
	}
	assert.Equal(t, map[string]int{"group": 7, "create": 500, "update": 1000, "add": 500}, kinds)
	for _, it := range items {
		var ev struct {
			Data struct {
				Operation  string         `json:"operation"`
				Key        map[string]any `json:"key"`
				Attributes map[string]any `json:"attributes"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(it.raw, &ev))
		switch it.kind {
		case "update":
			create := strings.TrimSuffix(strings.TrimSuffix(it.id, "-2"), "-3") + "-1"
			assert.Greater(t, at[it.id], at[create]+150, "%s after %s", it.id, create)
			if strings.HasSuffix(it.id, "-3") {
				assert.Greater(t, at[it.id], at[strings.TrimSuffix(it.id, "-3")+"-2"], "updates of a key in order")
			}
		case "add":
			create := strings.TrimSuffix(it.id, "-add") + "-1"
			assert.Greater(t, at[it.id], at[create]+150, "%s after its member's create", it.id)
			assert.Equal(t, "AddAssignment", ev.Data.Operation)
		}
	}
}

func TestVerdicts(t *testing.T) {
	r := &report{opt: &options{scaleLatency: 500 * time.Millisecond}, scale: []scaleRun{{workers: 1, rate: 100}, {workers: 2, rate: 190}, {workers: 3, rate: 240}}}
	short := r.short()
	require.Len(t, short, 1)
	assert.Contains(t, short[0], "3 worker(s): 240 events/s, 2.40 × one worker")
	r.scale[2].rate = 260
	assert.Empty(t, r.short())
}

// Quantiles of a histogram read from /metrics are interpolated within their bucket as
// Prometheus's histogram_quantile does, and one in the +Inf bucket is the highest finite bound.
func TestQuantileIsHistogramQuantiles(t *testing.T) {
	bs := []bucket{{0.001, 50}, {0.01, 90}, {math.Inf(1), 100}}
	for _, c := range []struct{ q, want float64 }{
		{0.5, 0.001},                   // rank 50: the top of the first bucket
		{0.25, 0.0005},                 // rank 25: half way through the first
		{0.7, 0.001 + 0.009*20.0/40.0}, // rank 70: 20 of the second bucket's 40
		{0.99, 0.01},                   // rank 99: in +Inf
	} {
		if got := quantile(c.q, bs); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := quantile(0.5, []bucket{{0.001, 0}, {math.Inf(1), 0}}); got != 0 {
		t.Errorf("an empty histogram: %v", got)
	}
}

package config

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/guard"
	"github.com/scimflow/scimflow/internal/inventory"
	"github.com/scimflow/scimflow/internal/pipeline"
	"github.com/scimflow/scimflow/schemas"
)

// schemaDefaults returns every "default" the config schema documents, by dotted field path.
func schemaDefaults(t *testing.T) map[string]any {
	t.Helper()
	raw, err := schemas.FS.ReadFile(SchemaName)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	out := map[string]any{}
	var walk func(prefix string, node map[string]any)
	walk = func(prefix string, node map[string]any) {
		props, _ := node["properties"].(map[string]any)
		for name, p := range props {
			pm, _ := p.(map[string]any)
			path := strings.TrimPrefix(prefix+"."+name, ".")
			if d, ok := pm["default"]; ok {
				out[path] = d
			}
			walk(path, pm)
		}
	}
	walk("", doc)
	return out
}

// Every default the schema documents is what a configuration without the field gets (issue 7
// item 16: documented defaults that did not hold).
func TestEveryDocumentedDefaultHolds(t *testing.T) {
	t.Parallel()
	file := write(t, minimal)
	c, err := Load(file, Options{LookupEnv: secrets})
	require.NoError(t, err)
	dir := filepath.Dir(file)
	loaded := map[string]any{
		"nats.listen":                 c.NATS.Listen,
		"nats.storeDir":               c.NATS.StoreDir,
		"nats.syncInterval":           c.NATS.SyncInterval,
		"nats.partitions":             c.NATS.Partitions,
		"nats.replicas":               c.NATS.Replicas,
		"nats.consumer":               c.NATS.Consumer,
		"syncWindow.schedule":         c.SyncWindow.Schedule,
		"syncWindow.maxWindows":       c.SyncWindow.MaxWindows,
		"syncWindow.referenceRetries": c.SyncWindow.ReferenceRetries,
		"syncWindow.referenceBackoff": c.SyncWindow.ReferenceBackoff,
		"deletionGuard.maxDeletes":    c.DeletionGuard.MaxDeletes,
		"deletionGuard.maxPercent":    c.DeletionGuard.MaxPercent,
		"worker.lanes":                c.Worker.Lanes,
		"worker.ackWait":              c.Worker.AckWait,
		"worker.drainTimeout":         c.Worker.DrainTimeout,
		"http.listen":                 c.HTTP.Listen,
		"inventory.pageSize":          c.Inventory.PageSize,
		"inventory.concurrency":       c.Inventory.Concurrency,
		"inventory.minRatio":          c.Inventory.MinRatio,
		"inventory.keepJobs":          c.Inventory.KeepJobs,
		"inventory.leaseTTL":          c.Inventory.LeaseTTL,
		"log.level":                   c.Log.Level,
		"log.format":                  c.Log.Format,
	}
	documented := schemaDefaults(t)
	require.NotEmpty(t, documented)
	for path, want := range documented {
		got, ok := loaded[path]
		if !assert.True(t, ok, "the schema documents a default for %s: add it to this test", path) {
			continue
		}
		switch g := got.(type) {
		case time.Duration:
			d, err := time.ParseDuration(fmt.Sprint(want))
			require.NoError(t, err, path)
			assert.Equal(t, d, g, path)
		case int:
			assert.EqualValues(t, want, g, path)
		case float64:
			assert.InDelta(t, want, g, 1e-9, path)
		default:
			if path == "nats.storeDir" {
				want = filepath.Join(dir, fmt.Sprint(want)) // relative to the config file
			}
			assert.Equal(t, want, g, path)
		}
	}
	for path := range loaded {
		assert.Contains(t, documented, path, "%s has a default the schema does not document", path)
	}
	// The defaults are the owning packages' own, not copies.
	assert.Equal(t, events.DefaultLanes, c.Worker.Lanes)
	assert.Equal(t, pipeline.DefaultMaxWindows, c.SyncWindow.MaxWindows)
	assert.Equal(t, guard.DefaultMaxDeletes, c.DeletionGuard.MaxDeletes)
	assert.Equal(t, guard.DefaultMaxPercent, c.DeletionGuard.MaxPercent)
	assert.Equal(t, inventory.DefaultPageSize, c.Inventory.PageSize)
	assert.Equal(t, inventory.DefaultMinRatio, c.Inventory.MinRatio)
	assert.Equal(t, c.SyncWindow.Schedule, c.Inventory.Schedule, "the inventory runs once per sync window by default")
	sch, err := c.SyncWindow.Parsed()
	require.NoError(t, err)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, pipeline.DefaultWindow, sch.Next(now).Sub(now), "the default schedule is the pipeline's default window")
}

// Explicit zero and empty values mean what they say (issue 7 item 16).
func TestExplicitZeroValuesAreKept(t *testing.T) {
	t.Parallel()
	c, err := Load(write(t, minimal+"syncWindow:\n  referenceRetries: 0\nhttp:\n  listen: \"\"\nworker:\n  partitions: []\n"), Options{LookupEnv: secrets})
	require.NoError(t, err)
	assert.Equal(t, pipeline.NoReferenceRetries, c.SyncWindow.ReferenceRetries, "referenceRetries: 0 means no in-process retry, not the default")
	assert.Empty(t, c.HTTP.Listen, `http.listen: "" disables the server`)
	assert.Nil(t, c.Worker.Partitions, "partitions: [] means every partition, not none")

	c, err = Load(write(t, minimal+"inventory:\n  minRatio: 0\n  schedule: \"@every 1h\"\n  onDrift: {User: revert}\n"), Options{LookupEnv: secrets})
	require.NoError(t, err)
	assert.Equal(t, float64(inventory.NoMinRatio), c.Inventory.MinRatio, "minRatio: 0 switches the check off")
	assert.Equal(t, "@every 1h", c.Inventory.Schedule)
	assert.Equal(t, map[string]string{"User": "revert"}, c.Inventory.OnDrift)
	_, err = Load(write(t, minimal+"inventory:\n  schedule: \"every hour\"\n"), Options{LookupEnv: secrets})
	require.ErrorContains(t, err, "inventory.schedule")

	c, err = Load(write(t, minimal+"syncWindow:\n  referenceRetries: 2\nworker:\n  partitions: [1, 3]\n"), Options{LookupEnv: secrets})
	require.NoError(t, err)
	assert.Equal(t, 2, c.SyncWindow.ReferenceRetries)
	assert.Equal(t, []int{1, 3}, c.Worker.Partitions)
}

package inventory

import (
	"fmt"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/pipeline"
)

// Each AppliedLog remembers what it wrote so that its next write of a key needs no read; a record
// another worker wrote meanwhile (a partition handed over and back) must still be built on, never
// overwritten from the stale memory: every state and attribute of both workers' writes survives.
func TestAppliedLogBuildsOnWhatAnotherWorkerWrote(t *testing.T) {
	f := setup(t, Config{})
	other, err := OpenAppliedLog(f.ctx, f.ns.JS, 1, f.model, zerolog.Nop())
	require.NoError(t, err)
	key := map[string]any{"userName": "ada@x"}
	write := func(l *AppliedLog, op string, seq uint64, attrs map[string]any) {
		t.Helper()
		l.RecordApplied(f.ctx, pipeline.Applied{Object: "User", Key: key, EventID: fmt.Sprintf("e-%d", seq),
			StreamSeq: seq, Operation: op, TargetID: "id-1", Attributes: attrs,
			Resource: []byte(fmt.Sprintf(`{"id":"id-1","userName":"ada@x","title":"t%d"}`, seq))})
	}
	write(f.applied, "Create", 1, map[string]any{"title": "t1"})
	write(f.applied, "Update", 2, map[string]any{"title": "t2"})  // from memory
	write(other, "Update", 3, map[string]any{"department": "d3"}) // the other worker reads, then writes
	write(f.applied, "Update", 4, map[string]any{"title": "t4"})  // stale memory: must read again
	write(other, "Create", 5, map[string]any{"costCenter": "c5"}) // a create of a key that exists

	rec, err := f.applied.Get(f.ctx, "User", key)
	require.NoError(t, err)
	require.NotNil(t, rec)
	assert.Equal(t, "e-5", rec.EventID)
	assert.Equal(t, uint64(5), rec.StreamSeq)
	var states []string
	for _, s := range rec.States {
		states = append(states, s.EventID)
	}
	assert.Equal(t, []string{"e-5", "e-4", "e-3", "e-2"}, states, "newest first, kept %d", keptStates)
	assert.Equal(t, map[string]any{"title": "t4", "department": "d3", "costCenter": "c5"}, rec.Attributes)
}

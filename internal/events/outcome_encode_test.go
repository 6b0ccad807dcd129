package events

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Encode writes outcomes by hand: the bytes must be json.Marshal's, field by field, empty or not.
func TestOutcomeEncodeIsJSONMarshals(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 4, 8, 1, 2, 345678000, time.UTC)
	outcomes := []*Outcome{
		{},
		{ID: "e-1", InputID: "e-1", Time: at, Object: "User", Key: map[string]any{"userName": "ada@x", "n": json.Number("7")}, Operation: "Create",
			Status: StatusSucceeded, Final: true, TargetID: "u-1", Reason: "created <with> \"quotes\" & é",
			Requests: []Call{{Method: "POST", Path: "Users", Status: 201, DurationMs: 1.25}, {Method: "GET", Path: "Users?filter=userName eq \"a\"", DurationMs: 0, Attempt: 2, Error: "timeout\n"}},
			Attempt:  3, Stream: EventsStream, StreamSeq: 1 << 40, Partition: 5, Worker: "w-1", DurationMs: 12.5},
		{ID: "e-2/deferred/1", InputID: "e-2", Time: at.In(time.FixedZone("x", 3600)), Object: "Group", Status: StatusDeferred,
			Error: &OutcomeError{Class: "retryable", Message: "503", Status: 503, ScimType: "tooMany"}, NextAttemptAt: at.Add(time.Hour),
			Partition: 0, DurationMs: 1e-7},
		{ID: "e-3", Object: "User", Key: map[string]any{}, Status: StatusDeadLettered, Final: true, Error: &OutcomeError{}, Requests: []Call{}, DurationMs: 1e22},
	}
	for i, o := range outcomes {
		want, err := json.Marshal(o)
		require.NoError(t, err)
		got, err := o.Encode()
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "outcome %d", i)
	}
	_, err := (&Outcome{DurationMs: math.NaN()}).Encode()
	require.Error(t, err)

	// A field added to an outcome must be added to Encode too: these are the fields it writes.
	for typ, n := range map[reflect.Type]int{reflect.TypeFor[Outcome](): 19, reflect.TypeFor[Call](): 6, reflect.TypeFor[OutcomeError](): 4} {
		exported := 0
		for f := range typ.Fields() {
			if f.IsExported() {
				exported++
			}
		}
		require.Equal(t, n, exported, "%s has a field Outcome.Encode does not write", typ)
	}
}

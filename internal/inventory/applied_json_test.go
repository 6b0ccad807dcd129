package inventory

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The applied log writes its records with its own encoder: the bytes must be json.Marshal's, for
// every kind of value a record holds, also when it reuses a state it encoded before.
func TestAppliedRecordJSONIsEncodingJSONs(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 4, 7, 30, 1, 123456789, time.UTC)
	paris := time.FixedZone("CET", 3600)
	records := []*AppliedRecord{
		{},
		{Object: "User", Key: map[string]any{"userName": "ada@example.com"}, EventID: "e-1", StreamSeq: 42, Operation: "Create", At: at,
			TargetID: "u-1", States: []AppliedState{{EventID: "e-1", At: at, Hashes: map[string]uint64{"title": 1, "name.givenName": 18446744073709551615, "active": 0}}},
			Attributes: map[string]any{"title": "CTO", "emails[].value": []any{"a@x"}, "active": true, "n": json.Number("12.50")}},
		{Object: "Group", Key: map[string]any{"displayName": "R&D <admins> \"quoted\" \\ back"}, EventID: "é-ü-\u2028-\x01", Operation: "AddAssignment",
			At: at.In(paris), Deleted: true, Partial: true},
		{Object: "User", Key: map[string]any{"id": json.Number("7"), "b": false}, EventID: "e-3", Operation: "Update", At: time.Time{},
			States:     []AppliedState{{EventID: "e-3", At: at}, {EventID: "e-2", At: at.Add(-time.Hour), Hashes: map[string]uint64{"x": 5}}},
			Attributes: map[string]any{}},
		{Object: "User", Key: nil, EventID: "", Operation: "", At: at, Attributes: map[string]any{"m": map[string]any{"z": nil, "a": []any{1.5, "<b>"}}}},
		// States whose writer gave the names sorted, and whose writer gave names that are not the
		// hashes' (more, fewer, others): those are sorted again.
		{Object: "User", EventID: "e-4", At: at, States: []AppliedState{
			{EventID: "e-4", At: at, Hashes: map[string]uint64{"b": 2, "a": 1, "c": 3}, names: []string{"a", "b", "c"}},
			{EventID: "e-3", At: at, Hashes: map[string]uint64{"b": 2, "a": 1}, names: []string{"a", "b", "c"}},
			{EventID: "e-2", At: at, Hashes: map[string]uint64{"b": 2, "a": 1, "c": 3}, names: []string{"a", "b"}},
			{EventID: "e-1", At: at, Hashes: map[string]uint64{"b": 2, "a": 1}, names: []string{"a", "z"}},
		}},
	}
	for i, r := range records {
		want, err := json.Marshal(r)
		require.NoError(t, err)
		got, err := r.appendJSON(nil)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "record %d", i)
		// Again, with the states' encodings kept from the first time, after the record changed.
		r.EventID, r.Operation = r.EventID+"-next", "Update"
		want, _ = json.Marshal(r)
		got, err = r.appendJSON([]byte("prefix"))
		require.NoError(t, err)
		require.Equal(t, "prefix"+string(want), string(got), "record %d again", i)
	}
	// A time encoding/json refuses is refused.
	_, err := (&AppliedRecord{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}).appendJSON(nil)
	require.Error(t, err)
}

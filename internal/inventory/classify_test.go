package inventory

import (
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/reconcile"
)

func testShape(t *testing.T) *shape {
	t.Helper()
	m, err := reconcile.ParseModel("m.yaml", []byte("objects:\n  - name: User\n    resource: Users\n    properties:\n      - {name: userName, isKey: true}\n      - {name: title}\n      - {name: department}\n"))
	require.NoError(t, err)
	shs, err := shapesOf(m, nil)
	require.NoError(t, err)
	return shs[0]
}

func TestClassify(t *testing.T) {
	t.Parallel()
	sh := testShape(t)
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	state := func(title, dept uint64) AppliedState {
		return AppliedState{At: since.Add(-time.Hour), Hashes: map[string]uint64{"title": title, "department": dept}}
	}
	tests := []struct {
		name     string
		change   string
		observed []uint64
		changed  []int
		rec      *AppliedRecord
		class    string
		attrs    []int
	}{
		{"never written", ChangeUpdated, []uint64{5, 6}, []int{0}, nil, ClassUnmanaged, []int{0}},
		{"gone, never written", ChangeDeleted, nil, nil, nil, ClassUnmanaged, nil},
		{"deleted by us", ChangeDeleted, nil, nil, &AppliedRecord{Deleted: true}, ClassOurs, nil},
		{"deleted by someone", ChangeDeleted, nil, nil, &AppliedRecord{States: []AppliedState{state(1, 2)}}, ClassMissing, nil},
		{"back after our delete", ChangeCreated, []uint64{1, 2}, []int{0, 1}, &AppliedRecord{Deleted: true}, ClassExternalChange, []int{0, 1}},
		{"our latest write", ChangeUpdated, []uint64{1, 2}, []int{0}, &AppliedRecord{States: []AppliedState{state(1, 2)}}, ClassOurs, nil},
		{"an older write of ours", ChangeUpdated, []uint64{3, 2}, []int{0}, &AppliedRecord{States: []AppliedState{state(1, 2), state(3, 2)}}, ClassOurs, nil},
		{"hand edit", ChangeUpdated, []uint64{9, 2}, []int{0}, &AppliedRecord{States: []AppliedState{state(1, 2)}}, ClassExternalChange, []int{0}},
		{"only the changed attributes count", ChangeUpdated, []uint64{9, 2}, []int{1}, &AppliedRecord{States: []AppliedState{state(1, 2)}}, ClassOurs, nil},
		{"bodiless write after the last run", ChangeUpdated, []uint64{9, 9}, []int{0, 1},
			&AppliedRecord{States: []AppliedState{{At: since.Add(time.Minute)}}}, ClassOurs, nil},
		{"bodiless write before the last run", ChangeUpdated, []uint64{9, 9}, []int{0, 1},
			&AppliedRecord{States: []AppliedState{{At: since.Add(-time.Minute)}, state(1, 9)}}, ClassExternalChange, []int{0}},
	}
	for _, tt := range tests {
		class, attrs := classify(sh, tt.change, tt.observed, tt.changed, tt.rec, since)
		assert.Equal(t, tt.class, class, tt.name)
		assert.Equal(t, tt.attrs, attrs, tt.name)
	}
}

// Entries survive the codec; the sorter orders by object and id across spilled runs and keeps
// the entry read last of duplicates.
func TestSorterOrdersAndDeduplicates(t *testing.T) {
	t.Parallel()
	s := newSorter(t.TempDir(), 150) // a spill every few entries
	in := []Entry{
		{Object: 1, ID: "b", Key: `{"k":"b"}`, Hashes: []uint64{1}},
		{Object: 0, ID: "z", Key: `{"k":"z"}`, Hashes: []uint64{2, 3}, Values: []byte(`{"t":1}`)},
		{Object: 0, ID: "a", Key: `{"k":"a"}`, Hashes: []uint64{4}},
		{Object: 1, ID: "b", Key: `{"k":"b2"}`, Hashes: []uint64{5}},
		{Object: 0, ID: "m", Key: `{"k":"m"}`},
	}
	for _, e := range in {
		require.NoError(t, s.add(e))
	}
	require.Greater(t, len(s.runs), 1, "spilled")
	it, err := s.iterate()
	require.NoError(t, err)
	defer it.close()
	var got []string
	for {
		e, err := it.next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, string(rune('0'+e.Object))+e.ID+e.Key)
		if e.ID == "z" {
			assert.Equal(t, []uint64{2, 3}, e.Hashes)
			assert.Equal(t, `{"t":1}`, string(e.Values))
		}
	}
	assert.Equal(t, []string{`0a{"k":"a"}`, `0m{"k":"m"}`, `0z{"k":"z"}`, `1b{"k":"b2"}`}, got)
}

// The applied log hashes a write's answer as the inventory hashes what it reads: hashResource
// must give entry's hashes, and refuse what entry refuses.
func TestHashResourceIsWhatTheInventoryReads(t *testing.T) {
	t.Parallel()
	m, err := reconcile.ParseModel("../../deploy/examples/models/cyberark.yaml", mustRead(t, "../../deploy/examples/models/cyberark.yaml"))
	require.NoError(t, err)
	shs, err := shapesOf(m, nil)
	require.NoError(t, err)
	resources := []string{
		`{"id":"u1","userName":"ada","name":{"givenName":"Ada","familyName":"Lovelace"},"title":"CTO","active":true,
		  "emails":[{"value":"b@x","type":"work"},{"value":"a@x"}],"phoneNumbers":[{"value":"+1","type":"work"}],
		  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"u2"},"department":"R&D","employeeNumber":7}}`,
		`{"id":12,"userName":"bob"}`,
		`{"id":"g1","displayName":"Admins","members":[{"value":"u2","display":"b"},{"value":"u1","$ref":"x"}]}`,
		`{"id":"g2","displayName":"Empty","members":[]}`,
		`{"userName":"no id"}`,
		`{"id":"","userName":"empty id"}`,
		`{"id":"u3"}`,
		`{"id":true,"userName":"odd id"}`,
	}
	checked := 0
	for _, sh := range shs {
		for _, r := range resources {
			dec := json.NewDecoder(strings.NewReader(r))
			dec.UseNumber()
			var res map[string]any
			require.NoError(t, dec.Decode(&res))
			got, ok := hashResource(sh, res)
			e, err := sh.entry(res)
			if err != nil {
				assert.False(t, ok, "%s %s: entry refuses it (%v)", sh.object, r, err)
				continue
			}
			require.True(t, ok, "%s %s", sh.object, r)
			want := map[string]uint64{}
			for i, p := range sh.props {
				want[p.Name()] = e.Hashes[i]
			}
			assert.Equal(t, want, got, "%s %s", sh.object, r)
			checked++
		}
	}
	assert.GreaterOrEqual(t, checked, 3)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

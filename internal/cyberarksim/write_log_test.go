package cyberarksim

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteLogRecordsEveryAppliedWrite(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	require.NoError(t, s.Seed(Users, map[string]any{"userName": "seeded@example.com"}))

	uid := c.create(Users, user("ada@example.com", map[string]any{"title": "v1"}))
	r := c.do(http.MethodPatch, "/scim/v2/Users/"+uid, patchBody(map[string]any{"op": "replace", "path": "title", "value": "v2"}))
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	r = c.do(http.MethodPatch, "/scim/v2/Users/"+uid, patchBody(map[string]any{"op": "replace", "path": "title", "value": "v2"}))
	require.Equal(t, http.StatusOK, r.status, "a PATCH that changes nothing: %s", r.raw)
	r = c.do(http.MethodPatch, "/scim/v2/Users/"+uid, patchBody(map[string]any{"op": "replace", "path": "title", "value": "v3"}))
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	other := c.create(Users, user("alan@example.com"))
	gid := c.create(Groups, group("Engineering", uid))
	r = c.do(http.MethodPatch, "/scim/v2/Groups/"+gid, patchBody(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": other}}}))
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	r = c.do(http.MethodPut, "/scim/v2/Users/"+other, user("alan@example.com", map[string]any{"title": "CTO"}))
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	r = c.do(http.MethodPost, "/scim/v2/Users", user("ada@example.com"))
	require.Equal(t, http.StatusConflict, r.status, "a refused write is not logged")
	r = c.do(http.MethodDelete, "/scim/v2/Users/"+uid, nil)
	require.Equal(t, http.StatusNoContent, r.status)

	p := s.Writes(0, 0)
	type brief struct {
		Method, Resource, ID, Key string
		Fields                    []string
		Added, Removed            []string
	}
	var got []brief
	for i, w := range p.Writes {
		assert.Equal(t, uint64(i+1), w.Seq)
		assert.False(t, w.Time.IsZero())
		got = append(got, brief{w.Method, w.Resource, w.ID, w.Key, w.Fields, w.MembersAdded, w.MembersRemoved})
	}
	assert.Equal(t, []brief{
		{"POST", Users, uid, "ada@example.com", []string{"active", "emails", "name", "password", "title", "userName"}, nil, nil},
		{"PATCH", Users, uid, "ada@example.com", []string{"title"}, nil, nil},
		{"PATCH", Users, uid, "ada@example.com", []string{"title"}, nil, nil},
		{"POST", Users, other, "alan@example.com", []string{"active", "emails", "name", "password", "userName"}, nil, nil},
		{"POST", Groups, gid, "Engineering", []string{"displayName", "members"}, []string{uid}, nil},
		{"PATCH", Groups, gid, "Engineering", []string{"members"}, []string{other}, nil},
		{"PUT", Users, other, "alan@example.com", []string{"title"}, nil, nil},
		{"DELETE", Users, uid, "ada@example.com", nil, nil, nil},
		{"CASCADE", Groups, gid, "Engineering", []string{"members"}, nil, []string{uid}},
	}, got)
	assert.JSONEq(t, `"v2"`, string(p.Writes[1].Values["title"]))
	assert.JSONEq(t, `"v3"`, string(p.Writes[2].Values["title"]))
	assert.NotContains(t, p.Writes[0].Values, "password", "never the password's value")
	assert.Equal(t, uint64(1), p.Oldest)
	assert.Equal(t, uint64(9), p.Last)
	assert.Equal(t, uint64(9), p.Next)
}

func TestWriteLogRemovedAttributeAndGeneralPatch(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	uid := c.create(Users, user("grace@example.com", map[string]any{"title": "v1"}))
	r := c.do(http.MethodPatch, "/scim/v2/Users/"+uid, patchBody(
		map[string]any{"op": "remove", "path": "title"},
		map[string]any{"op": "replace", "path": "displayName", "value": "Grace"}))
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	w := s.Writes(1, 0).Writes
	require.Len(t, w, 1)
	assert.Equal(t, []string{"displayName", "title"}, w[0].Fields)
	assert.NotContains(t, w[0].Values, "title", "a removed attribute has no value")
	assert.JSONEq(t, `"Grace"`, string(w[0].Values["displayName"]))
}

func TestWriteLogAdminEndpoint(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	for _, n := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		c.create(Users, user(n))
	}
	r := c.doWith(http.MethodGet, "/admin/writes?since=1&limit=1", nil, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	var p WritePage
	require.NoError(t, json.Unmarshal(r.raw, &p))
	require.Len(t, p.Writes, 1)
	assert.Equal(t, "b@example.com", p.Writes[0].Key)
	assert.Equal(t, uint64(2), p.Next)
	assert.Equal(t, uint64(3), p.Last)

	r = c.doWith(http.MethodGet, "/admin/writes?since=3", nil, nil)
	require.NoError(t, json.Unmarshal(r.raw, &p))
	assert.Empty(t, p.Writes)
	assert.Equal(t, uint64(3), p.Next, "nothing new: ask again from the same place")

	for _, bad := range []string{"since=x", "limit=0", "limit=-2"} {
		r = c.doWith(http.MethodGet, "/admin/writes?"+bad, nil, nil)
		assert.Equal(t, http.StatusBadRequest, r.status, bad)
		assert.NotEmpty(t, r.body["error"])
	}
	r = c.doWith(http.MethodPost, "/admin/writes", nil, nil)
	assert.Equal(t, http.StatusMethodNotAllowed, r.status)
	assert.Equal(t, "GET, DELETE", r.header.Get("Allow"))

	r = c.doWith(http.MethodDelete, "/admin/writes", nil, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	c.create(Users, user("d@example.com"))
	p = s.Writes(0, 0)
	require.Len(t, p.Writes, 1)
	assert.Equal(t, uint64(4), p.Writes[0].Seq, "the sequence keeps counting after a clear")
	assert.Equal(t, uint64(4), p.Oldest)
	assert.Equal(t, 0, s.Stats().Requests["GET (unmatched)"], "admin requests are not counted")
}

func TestWriteLogIsBounded(t *testing.T) {
	t.Parallel()
	l := &writeLog{cap: 8}
	for range 20 {
		l.append(Write{Method: "POST"})
	}
	p := l.page(0, 100)
	assert.LessOrEqual(t, len(p.Writes), 8)
	assert.Equal(t, uint64(20), p.Last)
	assert.Equal(t, p.Writes[0].Seq, p.Oldest)
	assert.Greater(t, p.Oldest, uint64(1), "a reader from 0 can tell it missed writes")
	assert.Equal(t, uint64(20), p.Writes[len(p.Writes)-1].Seq)
}

func TestWriteLogIsPerServer(t *testing.T) {
	t.Parallel()
	a, ca := setup(t, Config{})
	b, _ := setup(t, Config{})
	ca.create(Users, user("only-a@example.com"))
	assert.Len(t, a.Writes(0, 0).Writes, 1)
	assert.Empty(t, b.Writes(0, 0).Writes)
}

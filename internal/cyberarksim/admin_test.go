package cyberarksim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdminAndStats(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	id := c.create(Users, user("admin@example.com"))
	c.create(Groups, group("Admins", id))
	c.do(http.MethodGet, "/scim/Users/"+id, nil)
	c.do(http.MethodGet, "/scim/v2/Users/"+id, nil)
	c.do(http.MethodGet, "/scim/v2/Users/missing", nil)
	c.do(http.MethodGet, "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "admin@example.com"`), nil)
	c.do(http.MethodGet, "/scim/v2/Nope/"+id, nil)
	c.do(http.MethodGet, "/elsewhere", nil)

	st := s.Stats()
	assert.Equal(t, map[string]int{
		"POST /oauth2/token/{appID}": 1,
		"POST /scim/v2/Users":        1,
		"POST /scim/v2/Groups":       1,
		"GET /scim/Users/{id}":       1,
		"GET /scim/v2/Users/{id}":    2,
		"GET /scim/v2/Users":         1,
		"GET (unmatched)":            2,
	}, st.Requests)
	assert.Equal(t, map[int]int{200: 4, 201: 2, 404: 3}, st.ByStatus)
	assert.Equal(t, map[int]int{200: 1, 404: 1}, st.ByEndpointStatus["GET /scim/v2/Users/{id}"])
	assert.Equal(t, 1, st.TokensIssued)
	assert.Equal(t, 2, st.Latency["GET /scim/v2/Users/{id}"].Count)

	r := c.doWith(http.MethodGet, "/admin/stats", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Equal(t, float64(2), r.body["requests"].(map[string]any)["GET /scim/v2/Users/{id}"])
	assert.Equal(t, st.Requests, s.Stats().Requests, "admin requests are not counted")

	r = c.doWith(http.MethodGet, "/admin/state", nil, nil)
	require.Equal(t, http.StatusOK, r.status)
	var state State
	require.NoError(t, json.Unmarshal(r.raw, &state))
	require.Len(t, state.Users, 1)
	assert.Equal(t, "admin@example.com", state.Users[0]["userName"])
	assert.NotContains(t, string(r.raw), "password")
	require.Len(t, state.Groups, 1)
	assert.Len(t, state.Groups[0]["members"], 1)
	assert.Equal(t, s.Snapshot(), state, "the admin state is the Snapshot")
	assert.Equal(t, c.base+"/Scim/v2/Users/"+id, state.Users[0]["meta"].(map[string]any)["location"], "Snapshot links use the test server's URL")

	s.ResetStats()
	assert.Empty(t, s.Stats().Requests)

	r = c.doWith(http.MethodPost, "/admin/reset", nil, nil)
	assert.Equal(t, http.StatusNoContent, r.status)
	assert.Zero(t, s.Len(Users))
	assert.Zero(t, s.Len(Groups))
	assert.Equal(t, 200, c.do(http.MethodGet, "/scim/v2/Users", nil).status, "tokens survive a reset")

	assert.Equal(t, http.StatusMethodNotAllowed, c.doWith(http.MethodPost, "/admin/state", nil, nil).status)
	assert.Equal(t, http.StatusNotFound, c.doWith(http.MethodGet, "/admin/nothing", nil, nil).status)
}

func TestSeedAndLen(t *testing.T) {
	t.Parallel()
	s, err := New(Config{})
	require.NoError(t, err)
	require.NoError(t, s.Seed("Users",
		map[string]any{"id": "u-1", "userName": "seeded", "emails": []map[string]any{{"value": "s@example.com"}}},
		map[string]any{"userName": "nopassword"},
	))
	require.NoError(t, s.Seed("Group", map[string]any{"displayName": "G", "members": []map[string]any{{"value": "u-1"}}}))
	require.NoError(t, s.Seed(Containers, map[string]any{"name": "Vault"}))
	require.NoError(t, s.Seed(ContainerPermissions, map[string]any{"container": map[string]any{"value": "Vault"}, "user": map[string]any{"value": "seeded"}, "rights": []string{"ListAccounts"}}))
	require.NoError(t, s.Seed(PrivilegedData, map[string]any{"name": "root", "container": map[string]any{"value": "Vault"}}))
	assert.Equal(t, 2, s.Len(Users))
	assert.Equal(t, 2, s.Len("users"))
	assert.Equal(t, 1, s.Len(Groups))
	assert.Equal(t, 1, s.Len(ContainerPermissions))
	assert.Equal(t, 1, s.Len(PrivilegedData))
	assert.Zero(t, s.Len("Widgets"))

	snap := s.Snapshot()
	assert.Equal(t, "u-1", snap.Users[1]["id"], "Snapshot is sorted by id")
	assert.Equal(t, "/Scim/v2/Users/u-1", snap.Users[1]["meta"].(map[string]any)["location"], "relative links without a base URL")
	assert.Equal(t, "Vault:seeded", snap.ContainerPermissions[0]["id"])

	err = s.Seed(Users, map[string]any{"userName": "ok"}, map[string]any{"userName": "SEEDED"}, map[string]any{"userName": "never"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Users[1]")
	assert.Equal(t, 3, s.Len(Users), "objects before the bad one are kept")
	assert.Error(t, s.Seed("Widgets", map[string]any{}))
	assert.Error(t, s.Seed(Users, map[string]any{"userName": "x", "bogus": 1}))
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	_, c := setup(t, Config{})
	r := c.do(http.MethodGet, "/scim/v2/ServiceProviderConfig", nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, map[string]any{"supported": true}, r.body["patch"])
	assert.Equal(t, false, r.body["bulk"].(map[string]any)["supported"])
	assert.Equal(t, map[string]any{"supported": true, "maxResults": float64(1000)}, r.body["filter"])
	assert.Equal(t, map[string]any{"supported": false}, r.body["changePassword"])
	assert.Equal(t, map[string]any{"supported": false}, r.body["sort"])
	assert.Equal(t, map[string]any{"supported": false}, r.body["etag"])
	schemes := r.body["authenticationSchemes"].([]any)
	require.Len(t, schemes, 1)
	assert.Equal(t, "oauthbearertoken", schemes[0].(map[string]any)["type"])
	assert.Equal(t, c.base+"/Scim/ServiceProviderConfig", r.body["meta"].(map[string]any)["location"])
	requireSCIMError(t, c.do(http.MethodGet, "/scim/v2/ServiceProviderConfig?filter="+url.QueryEscape(`x eq "y"`), nil), http.StatusForbidden, "")

	r = c.do(http.MethodGet, "/scim/ResourceTypes", nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, float64(5), r.body["totalResults"])
	var names []string
	for _, rt := range r.body["Resources"].([]any) {
		names = append(names, rt.(map[string]any)["name"].(string))
	}
	assert.Equal(t, []string{"User", "Group", "Container", "ContainerPermission", "PrivilegedData"}, names)
	r = c.do(http.MethodGet, "/scim/v2/ResourceTypes/User", nil)
	assert.Equal(t, "/Users", r.body["endpoint"])
	requireSCIMError(t, c.do(http.MethodGet, "/scim/v2/ResourceTypes/Widget", nil), 404, "")

	r = c.do(http.MethodGet, "/scim/v2/Schemas", nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, float64(9), r.body["totalResults"])
	r = c.do(http.MethodGet, "/scim/v2/Schemas/"+userURN, nil)
	require.Equal(t, http.StatusOK, r.status)
	var userName map[string]any
	for _, a := range r.body["attributes"].([]any) {
		if a.(map[string]any)["name"] == "userName" {
			userName = a.(map[string]any)
		}
	}
	assert.Equal(t, map[string]any{"name": "userName", "type": "string", "multiValued": false, "required": true,
		"caseExact": false, "mutability": "readWrite", "returned": "default", "uniqueness": "server",
		"description": "Unique identifier for the User, case-insensitive"}, userName)
	requireSCIMError(t, c.do(http.MethodPut, "/scim/v2/Schemas", "{}"), 405, "")

	_, g := setup(t, Config{Generic: true, BasicAuth: true})
	r = g.do(http.MethodGet, "/scim/v2/ServiceProviderConfig", nil)
	assert.Equal(t, map[string]any{"supported": true}, r.body["changePassword"])
	assert.Len(t, r.body["authenticationSchemes"], 2)
	assert.Equal(t, float64(2), g.do(http.MethodGet, "/scim/v2/ResourceTypes", nil).body["totalResults"])
}

package cyberarksim

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUserLifecycle(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})

	r := c.do(http.MethodPost, "/scim/v2/Users", user("jdoe@example.com"))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	assert.Equal(t, scimMediaType, r.header.Get("Content-Type"))
	id := r.str("id")
	require.Len(t, id, 36, "a UUID")
	meta, _ := r.body["meta"].(map[string]any)
	require.NotNil(t, meta)
	assert.Equal(t, "User", meta["resourceType"])
	assert.Equal(t, c.base+"/Scim/v2/Users/"+id, meta["location"], "CyberArk writes /Scim/v2 links")
	assert.Equal(t, meta["location"], r.header.Get("Location"), "Location header equals meta.location")
	assert.Equal(t, `W/"1"`, meta["version"])
	created, err := time.Parse(time.RFC3339, meta["created"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), created, time.Minute)
	assert.Equal(t, meta["created"], meta["lastModified"])
	assert.NotContains(t, string(r.raw), "password", "passwords are never returned")
	assert.NotContains(t, string(r.raw), "Str0ngPassw0rd")
	pw, ok := s.UserPassword(id)
	assert.True(t, ok)
	assert.Equal(t, "Str0ngPassw0rd", pw)
	assert.Equal(t, []any{userURN}, r.body["schemas"])

	got := c.do(http.MethodGet, "/scim/v2/Users/"+id, nil)
	require.Equal(t, http.StatusOK, got.status)
	assert.Equal(t, r.body, got.body, "GET returns what POST returned")

	// The /scim/ prefix reaches the same store.
	assert.Equal(t, http.StatusOK, c.do(http.MethodGet, "/scim/Users/"+id, nil).status)

	put := user("jdoe@example.com", map[string]any{"title": "CTO"})
	delete(put, "password")
	r = c.do(http.MethodPut, "/scim/v2/Users/"+id, put)
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	assert.Equal(t, "CTO", r.body["title"])
	assert.Equal(t, `W/"2"`, r.body["meta"].(map[string]any)["version"])
	pw, _ = s.UserPassword(id)
	assert.Equal(t, "Str0ngPassw0rd", pw, "PUT without a password keeps it")

	r = c.do(http.MethodPut, "/scim/v2/Users/"+id, put)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, `W/"2"`, r.body["meta"].(map[string]any)["version"], "an identical PUT changes nothing")

	r = c.do(http.MethodDelete, "/scim/v2/Users/"+id, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	assert.Empty(t, r.raw)
	r = c.do(http.MethodGet, "/scim/v2/Users/"+id, nil)
	requireSCIMError(t, r, http.StatusNotFound, "")
	requireSCIMError(t, c.do(http.MethodDelete, "/scim/v2/Users/"+id, nil), http.StatusNotFound, "")
	assert.Equal(t, 0, s.Len(Users))
}

func TestCreateUserErrors(t *testing.T) {
	t.Parallel()
	_, c := setup(t, Config{})
	c.create(Users, user("taken@example.com"))
	mgr := "00000000-0000-4000-8000-000000000000"

	tests := []struct {
		name     string
		body     any
		status   int
		scimType string
		detail   string
	}{
		{"no schemas", map[string]any{"userName": "a", "password": "Str0ngPassw0rd"}, 400, scimInvalidSyntax, "schemas"},
		{"wrong core schema", map[string]any{"schemas": []any{groupURN}, "userName": "a", "password": "Str0ngPassw0rd"}, 400, scimInvalidSyntax, userURN},
		{"unknown schema", user("a", map[string]any{"schemas": []any{userURN, "urn:x:y"}}), 400, scimInvalidSyntax, "urn:x:y"},
		{"unknown attribute", user("a", map[string]any{"givenName": "A"}), 400, scimInvalidSyntax, "givenName"},
		{"unknown sub-attribute", user("a", map[string]any{"name": map[string]any{"first": "A"}}), 400, scimInvalidSyntax, "first"},
		{"missing userName", map[string]any{"schemas": []any{userURN}, "password": "Str0ngPassw0rd"}, 400, scimInvalidValue, "userName"},
		{"blank userName", user("  "), 400, scimInvalidValue, "userName"},
		{"no password", map[string]any{"schemas": []any{userURN}, "userName": "a"}, 400, scimInvalidValue, "password is required"},
		{"weak password", user("a", map[string]any{"password": "short"}), 400, scimInvalidValue, "password policy"},
		{"password not a string", user("a", map[string]any{"password": 12345678}), 400, scimInvalidValue, "password"},
		{"taken userName", user("taken@example.com"), 409, scimUniqueness, "userName"},
		{"taken userName other case", user("TAKEN@Example.com"), 409, scimUniqueness, "userName"},
		{"boolean as string", user("a", map[string]any{"active": "true"}), 400, scimInvalidValue, "active"},
		{"multi-valued as object", user("a", map[string]any{"emails": map[string]any{"value": "a"}}), 400, scimInvalidSyntax, "emails"},
		{"two primaries", user("a", map[string]any{"emails": []any{
			map[string]any{"value": "a", "primary": true}, map[string]any{"value": "b", "primary": true},
		}}), 400, scimInvalidValue, "primary"},
		{"extension not listed", user("a", map[string]any{enterpriseURN: map[string]any{"department": "R&D"}}), 400, scimInvalidSyntax, enterpriseURN},
		{"unknown extension", user("a", map[string]any{"urn:example:ext": map[string]any{"x": 1}}), 400, scimInvalidSyntax, "urn:example:ext"},
		{"unknown manager", user("a", map[string]any{
			"schemas":     []any{userURN, enterpriseURN},
			enterpriseURN: map[string]any{"manager": map[string]any{"value": mgr}},
		}), 400, scimInvalidValue, mgr},
		{"case duplicate", user("a", map[string]any{"UserName": "b"}), 400, scimInvalidSyntax, "case-insensitive"},
		{"malformed JSON", `{"schemas": [`, 400, scimInvalidSyntax, "JSON"},
		{"array body", `[]`, 400, scimInvalidSyntax, "object"},
		{"trailing data", `{"schemas":["` + userURN + `"],"userName":"a","password":"Str0ngPassw0rd"} {}`, 400, scimInvalidSyntax, "after"},
		{"empty body", ``, 400, scimInvalidSyntax, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := c.do(http.MethodPost, "/scim/v2/Users", tt.body)
			requireSCIMError(t, r, tt.status, tt.scimType)
			assert.Contains(t, r.str("detail"), tt.detail)
			assert.NotContains(t, r.str("detail"), "Str0ngPassw0rd", "details never echo passwords")
		})
	}
}

func TestRequestFormatErrors(t *testing.T) {
	t.Parallel()
	_, c := setup(t, Config{MaxBodyBytes: 4096})
	id := c.create(Users, user("fmt@example.com"))

	tests := []struct {
		name     string
		method   string
		path     string
		body     any
		edit     func(*http.Request)
		status   int
		scimType string
	}{
		{"text/plain body", http.MethodPost, "/scim/v2/Users", "{}", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 415, ""},
		{"no content type", http.MethodPost, "/scim/v2/Users", "{}", func(r *http.Request) { r.Header.Del("Content-Type") }, 415, ""},
		{"unacceptable Accept", http.MethodGet, "/scim/v2/Users/" + id, nil, func(r *http.Request) { r.Header.Set("Accept", "text/html") }, 406, ""},
		{"body too large", http.MethodPost, "/scim/v2/Users", user(strings.Repeat("x", 5000)), nil, 413, ""},
		{"DELETE collection", http.MethodDelete, "/scim/v2/Users", nil, nil, 405, ""},
		{"PATCH collection", http.MethodPatch, "/scim/v2/Users", "{}", nil, 405, ""},
		{"POST to a resource", http.MethodPost, "/scim/v2/Users/" + id, "{}", nil, 405, ""},
		{"unknown endpoint", http.MethodGet, "/scim/v2/Widgets", nil, nil, 404, ""},
		{"too deep", http.MethodGet, "/scim/v2/Users/" + id + "/extra", nil, nil, 404, ""},
		{"following a CyberArk link", http.MethodGet, "/Scim/v2/Users/" + id, nil, nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := c.doWith(tt.method, tt.path, tt.body, func(r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+c.token)
				if tt.edit != nil {
					tt.edit(r)
				}
			})
			requireSCIMError(t, r, tt.status, tt.scimType)
			if tt.status == http.StatusMethodNotAllowed {
				assert.NotEmpty(t, r.header.Get("Allow"))
			}
		})
	}

	for _, accept := range []string{"application/json", "application/scim+json", "*/*", "application/scim+json; charset=utf-8, text/html;q=0.5"} {
		r := c.doWith(http.MethodGet, "/scim/v2/Users/"+id, nil, func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+c.token)
			r.Header.Set("Accept", accept)
		})
		assert.Equal(t, http.StatusOK, r.status, "Accept %q", accept)
		assert.Equal(t, scimMediaType, r.header.Get("Content-Type"))
	}
	r := c.doWith(http.MethodPost, "/scim/v2/Users", user("json@example.com"), func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+c.token)
		r.Header.Set("Content-Type", "application/json; charset=utf-8")
	})
	assert.Equal(t, http.StatusCreated, r.status, "application/json bodies are accepted: %s", r.raw)
}

func TestReplaceUser(t *testing.T) {
	t.Parallel()
	_, c := setup(t, Config{})
	id := c.create(Users, user("put@example.com"))
	c.create(Users, user("other@example.com"))

	tests := []struct {
		name     string
		body     map[string]any
		status   int
		scimType string
	}{
		{"different id", user("put@example.com", map[string]any{"id": "someone-else"}), 400, scimMutability},
		{"userName taken", user("OTHER@example.com"), 409, scimUniqueness},
		{"userName dropped", map[string]any{"schemas": []any{userURN}}, 400, scimInvalidValue},
		{"weak new password", user("put@example.com", map[string]any{"password": "weak"}), 400, scimInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(http.MethodPut, "/scim/v2/Users/"+id, tt.body)
			requireSCIMError(t, r, tt.status, tt.scimType)
		})
	}
	requireSCIMError(t, c.do(http.MethodPut, "/scim/v2/Users/nope", user("x")), 404, "")

	// Same id and readOnly attributes in the body are fine; meta is ignored.
	body := user("put@example.com", map[string]any{"id": id, "meta": map[string]any{"version": "W/\"99\""}})
	delete(body, "emails")
	r := c.do(http.MethodPut, "/scim/v2/Users/"+id, body)
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	assert.NotContains(t, r.body, "emails", "PUT replaces: attributes left out are removed")
	assert.Equal(t, `W/"2"`, r.body["meta"].(map[string]any)["version"])
}

func TestExtensionsStoredAndReturned(t *testing.T) {
	t.Parallel()
	_, c := setup(t, Config{})
	mgr := c.create(Users, user("boss@example.com"))
	body := user("emp@example.com", map[string]any{
		"schemas": []any{userURN, enterpriseURN, customURN},
		enterpriseURN: map[string]any{
			"employeeNumber": "701984", "department": "Tour Operations",
			"manager": map[string]any{"value": mgr, "displayName": "ignored: readOnly"},
		},
		customURN: map[string]any{"CostCode": "X-1", "Clearance": 3, "Remote": true},
	})
	r := c.do(http.MethodPost, "/scim/v2/Users", body)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	assert.ElementsMatch(t, []any{userURN, enterpriseURN, customURN}, r.body["schemas"])
	ent := r.body[enterpriseURN].(map[string]any)
	assert.Equal(t, "701984", ent["employeeNumber"])
	assert.Equal(t, map[string]any{"value": mgr}, ent["manager"])
	assert.Equal(t, map[string]any{"CostCode": "X-1", "Clearance": float64(3), "Remote": true}, r.body[customURN])

	// Extension URNs and attribute names are case-insensitive on input.
	body = user("emp2@example.com", map[string]any{
		"schemas":                      []any{userURN, strings.ToUpper(enterpriseURN)},
		strings.ToUpper(enterpriseURN): map[string]any{"DEPARTMENT": "Sales"},
	})
	r = c.do(http.MethodPost, "/scim/v2/Users", body)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	assert.Equal(t, map[string]any{"department": "Sales"}, r.body[enterpriseURN], "stored under canonical names")
}

func TestGenericProfile(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{Generic: true})
	r := c.do(http.MethodPost, "/scim/v2/Users", map[string]any{"schemas": []any{userURN}, "userName": "plain"})
	require.Equal(t, http.StatusCreated, r.status, "no password needed: %s", r.raw)
	id := r.str("id")
	assert.Equal(t, c.base+"/scim/v2/Users/"+id, r.header.Get("Location"))
	g := c.do(http.MethodPost, "/scim/v2/Groups", group("plain-group", id))
	require.Equal(t, http.StatusCreated, g.status)
	assert.Equal(t, c.base+"/scim/v2/Groups/"+g.str("id"), g.body["meta"].(map[string]any)["location"])
	assert.Equal(t, c.base+"/scim/v2/Users/"+id, g.body["members"].([]any)[0].(map[string]any)["$ref"])
	for _, ep := range []string{Containers, ContainerPermissions, PrivilegedData} {
		requireSCIMError(t, c.do(http.MethodGet, "/scim/v2/"+ep, nil), http.StatusNotFound, "")
	}
	require.Error(t, s.Seed(Containers, map[string]any{"name": "x"}))
	assert.Zero(t, s.Len(Containers))
}

func TestGroups(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	alice := c.create(Users, user("alice@example.com", map[string]any{"displayName": "Alice A"}))
	bob := c.create(Users, user("bob@example.com"))

	r := c.do(http.MethodPost, "/scim/v2/Groups", group("Admins", alice, bob))
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	gid := r.str("id")
	assert.Equal(t, c.base+"/Scim/v2/Group/"+gid, r.header.Get("Location"), "CyberArk's singular Group link")
	assert.Equal(t, []any{
		map[string]any{"value": alice, "display": "Alice A", "type": "User", "$ref": c.base + "/Scim/v2/Users/" + alice},
		map[string]any{"value": bob, "display": "bob@example.com", "type": "User", "$ref": c.base + "/Scim/v2/Users/" + bob},
	}, r.body["members"])
	requireSCIMError(t, c.do(http.MethodGet, "/Scim/v2/Group/"+gid, nil), http.StatusNotFound, "")

	u := c.do(http.MethodGet, "/scim/v2/Users/"+alice, nil)
	assert.Equal(t, []any{map[string]any{
		"value": gid, "display": "Admins", "type": "direct", "$ref": c.base + "/Scim/v2/Group/" + gid,
	}}, u.body["groups"], "User.groups is derived from membership")

	requireSCIMError(t, c.do(http.MethodPost, "/scim/v2/Groups", group("admins")), 409, scimUniqueness)
	r = c.do(http.MethodPost, "/scim/v2/Groups", group("Ghosts", "2819c223"))
	requireSCIMError(t, r, 400, scimInvalidValue)
	assert.Contains(t, r.str("detail"), "2819c223")
	requireSCIMError(t, c.do(http.MethodPost, "/scim/v2/Groups", map[string]any{
		"schemas": []any{groupURN}, "displayName": "Typed", "members": []any{map[string]any{"value": alice, "type": "Group"}},
	}), 400, scimInvalidValue)

	nested := c.do(http.MethodPost, "/scim/v2/Groups", group("Nested", gid))
	require.Equal(t, http.StatusCreated, nested.status, "groups can contain groups: %s", nested.raw)
	assert.Equal(t, "Group", nested.body["members"].([]any)[0].(map[string]any)["type"])

	before := c.do(http.MethodGet, "/scim/v2/Groups/"+gid, nil).body["meta"].(map[string]any)["version"]
	require.Equal(t, http.StatusNoContent, c.do(http.MethodDelete, "/scim/v2/Users/"+alice, nil).status)
	g := c.do(http.MethodGet, "/scim/v2/Groups/"+gid, nil)
	assert.Len(t, g.body["members"], 1, "deleting a user removes it from every group")
	assert.Equal(t, bob, g.body["members"].([]any)[0].(map[string]any)["value"])
	assert.NotEqual(t, before, g.body["meta"].(map[string]any)["version"])

	require.Equal(t, http.StatusNoContent, c.do(http.MethodDelete, "/scim/v2/Groups/"+gid, nil).status)
	n := c.do(http.MethodGet, "/scim/v2/Groups/"+nested.str("id"), nil)
	assert.NotContains(t, n.body, "members", "deleting a group removes it from its parents")
	assert.NotContains(t, c.do(http.MethodGet, "/scim/v2/Users/"+bob, nil).body, "groups")
	assert.Equal(t, 1, s.Len(Groups))
}

func TestPAMResources(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	c.create(Users, user("vaultadmin@example.com"))
	gid := c.create(Groups, group("Auditors"))

	r := c.do(http.MethodPost, "/scim/v2/Containers", map[string]any{
		"schemas": []any{containerURN}, "name": "Finance", "description": "finance accounts", "type": "safe",
	})
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	assert.Equal(t, "Finance", r.str("id"), "a safe's id is its name")
	assert.Equal(t, "Finance", r.body["displayName"], "displayName defaults to the name")
	requireSCIMError(t, c.do(http.MethodPost, "/scim/v2/Containers", map[string]any{"schemas": []any{containerURN}, "name": "finance"}), 409, scimUniqueness)
	requireSCIMError(t, c.do(http.MethodPost, "/scim/v2/Containers", map[string]any{"schemas": []any{containerURN}, "name": "a:b"}), 400, scimInvalidValue)
	requireSCIMError(t, c.do(http.MethodPatch, "/scim/v2/Containers/Finance", patchBody(map[string]any{"op": "replace", "path": "description", "value": "x"})), 405, "")

	perm := map[string]any{
		"schemas":   []any{containerPermURN},
		"container": map[string]any{"value": "finance"},
		"user":      map[string]any{"value": "VaultAdmin@example.com"},
		"rights":    []any{"listaccounts", "UseAccounts", "ListAccounts"},
	}
	r = c.do(http.MethodPost, "/scim/v2/ContainerPermissions", perm)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	pid := r.str("id")
	assert.Equal(t, "Finance:vaultadmin@example.com", pid, "id is <safeName>:<memberName>")
	assert.Equal(t, []any{"ListAccounts", "UseAccounts"}, r.body["rights"], "rights are canonical and deduplicated")
	requireSCIMError(t, c.do(http.MethodPost, "/scim/v2/ContainerPermissions", perm), 409, scimUniqueness)

	perm["rights"] = []any{"RetrieveAccounts"}
	r = c.do(http.MethodPut, "/scim/v2/ContainerPermissions/"+pid, perm)
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	assert.Equal(t, []any{"RetrieveAccounts"}, r.body["rights"], "PUT replaces the rights list")
	perm["rights"] = []any{"FlyToTheMoon"}
	requireSCIMError(t, c.do(http.MethodPut, "/scim/v2/ContainerPermissions/"+pid, perm), 400, scimInvalidValue)
	perm["rights"] = []any{"ListAccounts"}
	perm["user"] = map[string]any{"value": "nobody"}
	requireSCIMError(t, c.do(http.MethodPut, "/scim/v2/ContainerPermissions/"+pid, perm), 400, scimInvalidValue)

	gperm := c.do(http.MethodPost, "/scim/v2/ContainerPermissions", map[string]any{
		"schemas": []any{containerPermURN}, "container": map[string]any{"value": "Finance"},
		"group": map[string]any{"value": gid}, "rights": []any{"ViewAuditLog"},
	})
	require.Equal(t, http.StatusCreated, gperm.status, "%s", gperm.raw)
	assert.Equal(t, "Finance:Auditors", gperm.str("id"))

	pd := c.do(http.MethodPost, "/scim/v2/PrivilegedData", map[string]any{
		"schemas": []any{privDataURN, privDataExtURN}, "name": "db-admin", "type": "password",
		"container": map[string]any{"value": "Finance"}, privDataExtURN: map[string]any{"address": "db.example.com"},
	})
	require.Equal(t, http.StatusCreated, pd.status, "%s", pd.raw)
	requireSCIMError(t, c.do(http.MethodPost, "/scim/v2/PrivilegedData", map[string]any{
		"schemas": []any{privDataURN}, "name": "DB-ADMIN", "container": map[string]any{"value": "Finance"},
	}), 409, scimUniqueness)
	safe := c.do(http.MethodGet, "/scim/v2/Containers/Finance", nil)
	assert.Equal(t, []any{map[string]any{
		"value": pd.str("id"), "display": "db-admin", "$ref": c.base + "/Scim/v2/PrivilegedData/" + pd.str("id"),
	}}, safe.body["privilegedData"])

	require.Equal(t, http.StatusNoContent, c.do(http.MethodDelete, "/scim/v2/Containers/Finance", nil).status)
	assert.Zero(t, s.Len(ContainerPermissions), "deleting a safe deletes its members")
	assert.Zero(t, s.Len(PrivilegedData), "and its accounts")
}

func TestTLSTestServer(t *testing.T) {
	t.Parallel()
	get := func(ts *httptest.Server, minV, maxV uint16) error {
		tr := ts.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.MinVersion, tr.TLSClientConfig.MaxVersion = minV, maxV
		resp, err := (&http.Client{Transport: tr}).Get(ts.URL + "/scim/v2/ServiceProviderConfig")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	_, old := NewTLSTestServer(t, Config{}, tls.VersionTLS10, tls.VersionTLS11)
	assert.Error(t, get(old, tls.VersionTLS12, tls.VersionTLS13), "a TLS 1.2+ client refuses a server capped at TLS 1.1")
	assert.NoError(t, get(old, tls.VersionTLS10, tls.VersionTLS11), "the capped server does speak TLS 1.0/1.1")
	_, modern := NewTLSTestServer(t, Config{}, tls.VersionTLS12, tls.VersionTLS13)
	assert.NoError(t, get(modern, tls.VersionTLS12, tls.VersionTLS13))
	assert.True(t, strings.HasPrefix(modern.URL, "https://"))
}

func TestContainerImmutability(t *testing.T) {
	t.Parallel()
	_, c := setup(t, Config{})
	c.create(Containers, map[string]any{"schemas": []any{containerURN}, "name": "Ops"})
	r := c.do(http.MethodPut, "/scim/v2/Containers/Ops", map[string]any{"schemas": []any{containerURN}, "name": "Ops2"})
	requireSCIMError(t, r, http.StatusBadRequest, scimMutability)
	r = c.do(http.MethodPut, "/scim/v2/Containers/Ops", map[string]any{"schemas": []any{containerURN}, "name": "Ops", "description": "d"})
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	assert.Equal(t, "d", r.body["description"])
	c.create(Containers, map[string]any{"schemas": []any{containerURN}, "name": "Other"})
	c.create(Users, user("m@example.com"))
	pd := c.create(PrivilegedData, map[string]any{"schemas": []any{privDataURN}, "name": "acct", "container": map[string]any{"value": "Ops"}})
	r = c.do(http.MethodPut, "/scim/v2/PrivilegedData/"+pd, map[string]any{"schemas": []any{privDataURN}, "name": "acct", "container": map[string]any{"value": "Other"}})
	requireSCIMError(t, r, http.StatusBadRequest, scimMutability)
	requireSCIMError(t, c.do(http.MethodPost, "/scim/v2/PrivilegedData", map[string]any{"schemas": []any{privDataURN}, "name": "x", "container": map[string]any{"value": "Nowhere"}}), 400, scimInvalidValue)
	requireSCIMError(t, c.do(http.MethodPost, "/scim/v2/ContainerPermissions", map[string]any{"schemas": []any{containerPermURN}, "container": map[string]any{"value": "Ops"}, "rights": []any{"ListAccounts"}}), 400, scimInvalidValue)
	requireSCIMError(t, c.do(http.MethodPatch, "/scim/v2/ContainerPermissions/Ops:m@example.com", patchBody(op("add", "rights", []any{"UseAccounts"}))), 405, "")
}

// A user whose manager was deleted keeps the dangling reference, as a directory does, and can still
// be changed; setting a manager that does not exist is refused.
func TestDanglingManagerDoesNotBlockChanges(t *testing.T) {
	t.Parallel()
	_, c := setup(t, Config{})
	boss := c.do(http.MethodPost, "/scim/v2/Users", user("boss@example.com"))
	require.Equal(t, http.StatusCreated, boss.status, "%s", boss.raw)
	rep := user("rep@example.com")
	rep[enterpriseURN] = map[string]any{"manager": map[string]any{"value": boss.str("id")}}
	rep["schemas"] = []any{userURN, enterpriseURN}
	r := c.do(http.MethodPost, "/scim/v2/Users", rep)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.raw)
	repID := r.str("id")
	require.Equal(t, http.StatusNoContent, c.do(http.MethodDelete, "/scim/v2/Users/"+boss.str("id"), nil).status)

	patch := map[string]any{"schemas": []any{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}
	r = c.do(http.MethodPatch, "/scim/v2/Users/"+repID, patch)
	assert.Equal(t, http.StatusOK, r.status, "a change that leaves the manager alone: %s", r.raw)

	patch["Operations"] = []any{map[string]any{"op": "replace", "path": enterpriseURN + ":manager.value", "value": "no-such-id"}}
	r = c.do(http.MethodPatch, "/scim/v2/Users/"+repID, patch)
	assert.Equal(t, http.StatusBadRequest, r.status, "setting a manager that does not exist: %s", r.raw)
}

package cyberarksim

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func op(o, path string, value ...any) map[string]any {
	m := map[string]any{"op": o}
	if path != "" {
		m["path"] = path
	}
	if len(value) > 0 {
		m["value"] = value[0]
	}
	return m
}

func TestPatchUser(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	mgr := c.create(Users, user("manager@example.com"))
	c.create(Users, user("taken@example.com"))
	base := func(name string) map[string]any {
		return user(name, map[string]any{
			"title": "Engineer",
			"emails": []any{
				map[string]any{"value": name, "type": "work", "primary": true},
				map[string]any{"value": "home-" + name, "type": "home"},
			},
		})
	}
	emails := func(r response) []any { v, _ := r.body["emails"].([]any); return v }
	ent := func(r response) map[string]any { v, _ := r.body[enterpriseURN].(map[string]any); return v }

	tests := []struct {
		name     string
		ops      []map[string]any
		status   int
		scimType string
		check    func(t *testing.T, r response)
		noop     bool // the PATCH changes nothing, so meta.version stays
	}{
		{name: "replace sub-attribute", ops: []map[string]any{op("replace", "name.givenName", "Johnny")},
			check: func(t *testing.T, r response) {
				assert.Equal(t, map[string]any{"givenName": "Johnny", "familyName": "Family"}, r.body["name"])
			}},
		{name: "case-insensitive op and path", ops: []map[string]any{op("Replace", "NAME.GIVENNAME", "Jo")},
			check: func(t *testing.T, r response) { assert.Equal(t, "Jo", r.body["name"].(map[string]any)["givenName"]) }},
		{name: "add absent attribute", ops: []map[string]any{op("add", "nickName", "JJ")},
			check: func(t *testing.T, r response) { assert.Equal(t, "JJ", r.body["nickName"]) }},
		{name: "add email", ops: []map[string]any{op("add", "emails", []any{map[string]any{"value": "new@example.com", "type": "other"}})},
			check: func(t *testing.T, r response) { assert.Len(t, emails(r), 3) }},
		{name: "add a single object to a multi-valued attribute", ops: []map[string]any{op("add", "emails", map[string]any{"value": "one@example.com"})},
			check: func(t *testing.T, r response) { assert.Len(t, emails(r), 3) }},
		{name: "add new primary clears the old one", ops: []map[string]any{op("add", "emails", []any{map[string]any{"value": "p@example.com", "primary": true}})},
			check: func(t *testing.T, r response) {
				primaries := 0
				for _, e := range emails(r) {
					if e.(map[string]any)["primary"] == true {
						primaries++
						assert.Equal(t, "p@example.com", e.(map[string]any)["value"])
					}
				}
				assert.Equal(t, 1, primaries)
			}},
		{name: "replace value selected by filter", ops: []map[string]any{op("replace", `emails[type eq "work"].value`, "w@example.com")},
			check: func(t *testing.T, r response) {
				assert.Equal(t, "w@example.com", emails(r)[0].(map[string]any)["value"])
				assert.Equal(t, true, emails(r)[0].(map[string]any)["primary"])
			}},
		{name: "replace element selected by filter", ops: []map[string]any{op("replace", `emails[type eq "home"]`, map[string]any{"value": "h@example.com", "type": "home"})},
			check: func(t *testing.T, r response) {
				assert.Equal(t, map[string]any{"value": "h@example.com", "type": "home"}, emails(r)[1])
			}},
		{name: "remove element selected by filter", ops: []map[string]any{op("remove", `emails[type eq "home"]`)},
			check: func(t *testing.T, r response) { assert.Len(t, emails(r), 1) }},
		{name: "remove sub-attribute selected by filter", ops: []map[string]any{op("remove", `emails[type eq "home"].type`)},
			check: func(t *testing.T, r response) { assert.NotContains(t, emails(r)[1], "type") }},
		{name: "remove with a filter that matches nothing is a no-op", ops: []map[string]any{op("remove", `emails[type eq "fax"]`)}, noop: true,
			check: func(t *testing.T, r response) { assert.Len(t, emails(r), 2) }},
		{name: "remove attribute", ops: []map[string]any{op("remove", "title")},
			check: func(t *testing.T, r response) { assert.NotContains(t, r.body, "title") }},
		{name: "replace with null unassigns", ops: []map[string]any{op("replace", "title", nil)},
			check: func(t *testing.T, r response) { assert.NotContains(t, r.body, "title") }},
		{name: "add without path merges complex attributes", ops: []map[string]any{op("add", "", map[string]any{"title": "CTO", "name": map[string]any{"familyName": "Doe"}})},
			check: func(t *testing.T, r response) {
				assert.Equal(t, "CTO", r.body["title"])
				assert.Equal(t, map[string]any{"givenName": "Given", "familyName": "Doe"}, r.body["name"])
			}},
		{name: "replace without path replaces multi-valued attributes", ops: []map[string]any{op("replace", "", map[string]any{"emails": []any{map[string]any{"value": "only@example.com"}}})},
			check: func(t *testing.T, r response) {
				assert.Equal(t, []any{map[string]any{"value": "only@example.com"}}, emails(r))
			}},
		{name: "null in a pathless value unassigns", ops: []map[string]any{op("add", "", map[string]any{"title": nil, "nickName": "N"})},
			check: func(t *testing.T, r response) {
				assert.NotContains(t, r.body, "title")
				assert.Equal(t, "N", r.body["nickName"])
			}},
		{name: "replace missing attribute adds it", ops: []map[string]any{op("replace", "locale", "en-GB")},
			check: func(t *testing.T, r response) { assert.Equal(t, "en-GB", r.body["locale"]) }},
		{name: "enterprise manager by path", ops: []map[string]any{op("add", enterpriseURN+":manager", map[string]any{"value": mgr})},
			check: func(t *testing.T, r response) {
				assert.Equal(t, map[string]any{"manager": map[string]any{"value": mgr}}, ent(r))
				assert.Contains(t, r.body["schemas"], enterpriseURN, "schemas lists extensions in use")
			}},
		{name: "enterprise sub-attribute by path", ops: []map[string]any{op("replace", enterpriseURN+":manager.value", mgr)},
			check: func(t *testing.T, r response) { assert.Equal(t, mgr, ent(r)["manager"].(map[string]any)["value"]) }},
		{name: "extension URN as path", ops: []map[string]any{op("add", enterpriseURN, map[string]any{"department": "Ops", "costCenter": "42"})},
			check: func(t *testing.T, r response) {
				assert.Equal(t, map[string]any{"department": "Ops", "costCenter": "42"}, ent(r))
			}},
		{name: "extension in a pathless value", ops: []map[string]any{op("add", "", map[string]any{enterpriseURN: map[string]any{"division": "EMEA"}})},
			check: func(t *testing.T, r response) { assert.Equal(t, "EMEA", ent(r)["division"]) }},
		{name: "remove extension attribute drops the empty extension", ops: []map[string]any{op("add", enterpriseURN+":department", "X"), op("remove", enterpriseURN+":department")}, noop: true,
			check: func(t *testing.T, r response) {
				assert.NotContains(t, r.body, enterpriseURN)
				assert.NotContains(t, r.body["schemas"], enterpriseURN)
			}},
		{name: "custom attribute", ops: []map[string]any{op("add", customURN+":Badge", "B-7")},
			check: func(t *testing.T, r response) { assert.Equal(t, map[string]any{"Badge": "B-7"}, r.body[customURN]) }},
		{name: "operations apply in order", ops: []map[string]any{op("replace", "title", "A"), op("replace", "title", "B")},
			check: func(t *testing.T, r response) { assert.Equal(t, "B", r.body["title"]) }},

		{name: "unmatched filter on replace", ops: []map[string]any{op("replace", `emails[type eq "fax"].value`, "x")}, status: 400, scimType: scimNoTarget},
		{name: "remove without path", ops: []map[string]any{op("remove", "")}, status: 400, scimType: scimNoTarget},
		{name: "readOnly id", ops: []map[string]any{op("replace", "id", "x")}, status: 400, scimType: scimMutability},
		{name: "readOnly meta", ops: []map[string]any{op("replace", "meta.version", "x")}, status: 400, scimType: scimMutability},
		{name: "readOnly groups", ops: []map[string]any{op("add", "groups", []any{map[string]any{"value": "g"}})}, status: 400, scimType: scimMutability},
		{name: "readOnly in pathless value", ops: []map[string]any{op("replace", "", map[string]any{"id": "x"})}, status: 400, scimType: scimMutability},
		{name: "unknown attribute", ops: []map[string]any{op("replace", "shoeSize", "44")}, status: 400, scimType: scimInvalidPath},
		{name: "malformed path", ops: []map[string]any{op("replace", "name..givenName", "x")}, status: 400, scimType: scimInvalidPath},
		{name: "unquoted filter value", ops: []map[string]any{op("replace", `emails[type eq work].value`, "x")}, status: 400, scimType: scimInvalidFilter},
		{name: "unknown filter attribute", ops: []map[string]any{op("replace", `emails[kind eq "work"].value`, "x")}, status: 400, scimType: scimInvalidFilter},
		{name: "unclosed filter", ops: []map[string]any{op("replace", `emails[type eq "work"`, "x")}, status: 400, scimType: scimInvalidPath},
		{name: "filter on a single-valued attribute", ops: []map[string]any{op("replace", `name[givenName eq "x"]`, "x")}, status: 400, scimType: scimInvalidPath},
		{name: "unfiltered sub-attribute of multi-valued", ops: []map[string]any{op("replace", "emails.value", "x")}, status: 400, scimType: scimInvalidPath},
		{name: "wrong value type", ops: []map[string]any{op("replace", "active", "yes")}, status: 400, scimType: scimInvalidValue},
		{name: "add without value", ops: []map[string]any{op("add", "title")}, status: 400, scimType: scimInvalidValue},
		{name: "unknown op", ops: []map[string]any{op("move", "title", "x")}, status: 400, scimType: scimInvalidSyntax},
		{name: "remove required userName", ops: []map[string]any{op("remove", "userName")}, status: 400, scimType: scimInvalidValue},
		{name: "userName taken", ops: []map[string]any{op("replace", "userName", "TAKEN@example.com")}, status: 409, scimType: scimUniqueness},
		{name: "weak password", ops: []map[string]any{op("replace", "password", "weak")}, status: 400, scimType: scimInvalidValue},
		{name: "unknown manager", ops: []map[string]any{op("replace", enterpriseURN+":manager.value", "nobody")}, status: 400, scimType: scimInvalidValue},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("patch%02d@example.com", i)
			id := c.create(Users, base(name))
			before := c.do(http.MethodGet, "/scim/v2/Users/"+id, nil)
			r := c.do(http.MethodPatch, "/scim/v2/Users/"+id, patchBody(tt.ops...))
			if tt.status != 0 {
				requireSCIMError(t, r, tt.status, tt.scimType)
				after := c.do(http.MethodGet, "/scim/v2/Users/"+id, nil)
				assert.Equal(t, before.body, after.body, "a failed PATCH changes nothing")
				return
			}
			require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
			tt.check(t, r)
			version := `W/"2"`
			if tt.noop {
				version = `W/"1"`
			}
			assert.Equal(t, version, r.body["meta"].(map[string]any)["version"])
			assert.Equal(t, r.body, c.do(http.MethodGet, "/scim/v2/Users/"+id, nil).body, "the response is the stored resource")
		})
	}

	t.Run("atomic", func(t *testing.T) {
		t.Parallel()
		id := c.create(Users, base("atomic@example.com"))
		r := c.do(http.MethodPatch, "/scim/v2/Users/"+id, patchBody(op("replace", "title", "Changed"), op("replace", "shoeSize", "44")))
		requireSCIMError(t, r, 400, scimInvalidPath)
		assert.Contains(t, r.str("detail"), "Operations[1]")
		assert.Equal(t, "Engineer", c.do(http.MethodGet, "/scim/v2/Users/"+id, nil).body["title"])
	})
	t.Run("no-op keeps the version", func(t *testing.T) {
		t.Parallel()
		id := c.create(Users, base("noop@example.com"))
		r := c.do(http.MethodPatch, "/scim/v2/Users/"+id, patchBody(
			op("add", "emails", []any{map[string]any{"value": "NOOP@example.com", "type": "work"}}),
			op("replace", "title", "Engineer"),
		))
		require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
		assert.Len(t, emails(r), 2, "adding a value that is present is a no-op (RFC 7644 §3.5.2.1)")
		assert.Equal(t, `W/"1"`, r.body["meta"].(map[string]any)["version"])
	})
	t.Run("password", func(t *testing.T) {
		t.Parallel()
		id := c.create(Users, base("pw@example.com"))
		r := c.do(http.MethodPatch, "/scim/v2/Users/"+id, patchBody(op("replace", "password", "N3wPassword!")))
		require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
		assert.NotContains(t, string(r.raw), "N3wPassword!")
		pw, _ := s.UserPassword(id)
		assert.Equal(t, "N3wPassword!", pw)
	})
	t.Run("request shape", func(t *testing.T) {
		t.Parallel()
		id := c.create(Users, base("shape@example.com"))
		for _, body := range []any{
			map[string]any{"Operations": []any{op("replace", "title", "x")}},
			map[string]any{"schemas": []any{userURN}, "Operations": []any{op("replace", "title", "x")}},
			map[string]any{"schemas": []any{patchOpURN}},
			map[string]any{"schemas": []any{patchOpURN}, "Operations": []any{}},
			map[string]any{"schemas": []any{patchOpURN}, "Operations": []any{"add"}},
			map[string]any{"schemas": []any{patchOpURN}, "Operations": []any{map[string]any{"op": "add", "path": "title", "value": "x", "from": "y"}}},
			map[string]any{"schemas": []any{patchOpURN}, "Operations": []any{op("add", "title", "x")}, "extra": 1},
		} {
			requireSCIMError(t, c.do(http.MethodPatch, "/scim/v2/Users/"+id, body), 400, scimInvalidSyntax)
		}
		requireSCIMError(t, c.do(http.MethodPatch, "/scim/v2/Users/nope", patchBody(op("add", "title", "x"))), 404, "")
	})
}

func TestPatchGroupMembers(t *testing.T) {
	t.Parallel()
	_, c := setup(t, Config{})
	var users []string
	for i := range 4 {
		users = append(users, c.create(Users, user(fmt.Sprintf("member%d@example.com", i))))
	}
	members := func(r response) []string {
		var ids []string
		list, _ := r.body["members"].([]any)
		for _, m := range list {
			ids = append(ids, m.(map[string]any)["value"].(string))
		}
		return ids
	}
	tests := []struct {
		name     string
		ops      []map[string]any
		want     []string
		version  string
		status   int
		scimType string
	}{
		{name: "add", ops: []map[string]any{op("add", "members", []any{map[string]any{"value": users[2]}})}, want: []string{users[0], users[1], users[2]}, version: `W/"2"`},
		{name: "add present member is a no-op", ops: []map[string]any{op("add", "members", []any{map[string]any{"value": users[0], "display": "whatever"}})}, want: []string{users[0], users[1]}, version: `W/"1"`},
		{name: "add without path", ops: []map[string]any{op("add", "", map[string]any{"members": []any{map[string]any{"value": users[3], "type": "User"}}})}, want: []string{users[0], users[1], users[3]}, version: `W/"2"`},
		{name: "remove by value filter", ops: []map[string]any{op("remove", `members[value eq "`+users[0]+`"]`)}, want: []string{users[1]}, version: `W/"2"`},
		{name: "remove absent member is a no-op", ops: []map[string]any{op("remove", `members[value eq "`+users[3]+`"]`)}, want: []string{users[0], users[1]}, version: `W/"1"`},
		{name: "remove by value", ops: []map[string]any{op("remove", "members", []any{map[string]any{"value": users[1]}})}, want: []string{users[0]}, version: `W/"2"`},
		{name: "remove all", ops: []map[string]any{op("remove", "members")}, want: nil, version: `W/"2"`},
		{name: "replace all", ops: []map[string]any{op("replace", "members", []any{map[string]any{"value": users[3]}})}, want: []string{users[3]}, version: `W/"2"`},
		{name: "rename and add together", ops: []map[string]any{op("replace", "displayName", "renamed"), op("add", "members", []any{map[string]any{"value": users[2]}})}, want: []string{users[0], users[1], users[2]}, version: `W/"2"`},
		{name: "add then remove", ops: []map[string]any{op("add", "members", []any{map[string]any{"value": users[2]}}), op("remove", `members[value eq "`+users[2]+`"]`)}, want: []string{users[0], users[1]}, version: `W/"1"`},
		{name: "unknown member", ops: []map[string]any{op("add", "members", []any{map[string]any{"value": "2819c223"}})}, status: 400, scimType: scimInvalidValue},
		{name: "member of wrong type", ops: []map[string]any{op("add", "members", []any{map[string]any{"value": users[2], "type": "Group"}})}, status: 400, scimType: scimInvalidValue},
		{name: "second op fails", ops: []map[string]any{op("add", "members", []any{map[string]any{"value": users[2]}}), op("add", "members", []any{map[string]any{"value": "nope"}})}, status: 400, scimType: scimInvalidValue},
		{name: "display is readOnly", ops: []map[string]any{op("replace", `members[value eq "`+users[0]+`"].display`, "x")}, status: 400, scimType: scimMutability},
		{name: "value is immutable", ops: []map[string]any{op("replace", `members[value eq "`+users[0]+`"].value`, users[3])}, status: 400, scimType: scimMutability},
		{name: "member without value", ops: []map[string]any{op("add", "members", []any{map[string]any{"display": "x"}})}, status: 400, scimType: scimInvalidValue},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gid := c.create(Groups, group(fmt.Sprintf("g%02d", i), users[0], users[1]))
			r := c.do(http.MethodPatch, "/scim/v2/Groups/"+gid, patchBody(tt.ops...))
			if tt.status != 0 {
				requireSCIMError(t, r, tt.status, tt.scimType)
				assert.Equal(t, []string{users[0], users[1]}, members(c.do(http.MethodGet, "/scim/v2/Groups/"+gid, nil)))
				return
			}
			require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
			assert.Equal(t, tt.want, members(r))
			assert.Equal(t, tt.version, r.body["meta"].(map[string]any)["version"])
			list, _ := r.body["members"].([]any)
			for _, m := range list {
				mm := m.(map[string]any)
				assert.Equal(t, "User", mm["type"])
				assert.Equal(t, c.base+"/Scim/v2/Users/"+mm["value"].(string), mm["$ref"])
				assert.NotEmpty(t, mm["display"])
			}
		})
	}
}

// TestMemberFastPathMatchesGeneralPath checks that membership PATCHes applied on the member list
// give exactly what the general PATCH engine gives.
func TestMemberFastPathMatchesGeneralPath(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		s, err := New(Config{})
		require.NoError(t, err)
		var ids []string
		for i := range 6 {
			require.NoError(t, s.Seed(Users, map[string]any{"userName": fmt.Sprintf("u%d", i)}))
		}
		for _, u := range s.Snapshot().Users {
			ids = append(ids, u["id"].(string))
		}
		idGen := rapid.SampledFrom(append(ids, "missing-id"))
		opGen := rapid.Custom(func(t *rapid.T) map[string]any {
			id := idGen.Draw(t, "id")
			switch rapid.IntRange(0, 3).Draw(t, "kind") {
			case 0:
				return op("add", "members", []any{map[string]any{"value": id}})
			case 1:
				return op("remove", `members[value eq "`+id+`"]`)
			case 2:
				return op("remove", "members", []any{map[string]any{"value": id}})
			default:
				return op("add", "", map[string]any{"members": []any{map[string]any{"value": id}}})
			}
		})
		ops := rapid.SliceOfN(opGen, 1, 6).Draw(t, "ops")
		initial := rapid.SliceOfDistinct(rapid.SampledFrom(ids), rapid.ID[string]).Draw(t, "initial")
		seed := map[string]any{"displayName": "g"}
		var ms []any
		for _, id := range initial {
			ms = append(ms, map[string]any{"value": id})
		}
		if len(ms) > 0 {
			seed["members"] = ms
		}

		run := func(fast bool) ([]string, error) {
			s.Reset()
			for i := range 6 {
				require.NoError(t, s.Seed(Users, map[string]any{"id": ids[i], "userName": fmt.Sprintf("u%d", i)}))
			}
			require.NoError(t, s.Seed(Groups, seed))
			c := s.db.cols[Groups]
			var g *record
			c.order.each(func(r *record) bool { g = r; return false })
			parsed, err := parsePatchRequest(groupType, patchBody(ops...))
			require.NoError(t, err)
			s.mu.Lock()
			defer s.mu.Unlock()
			if fast {
				done, err := s.patchMembersFast(c, g, parsed)
				require.True(t, done, "membership-only PATCHes take the fast path")
				if err != nil {
					return nil, err
				}
			} else {
				work := s.resourceMap(c, g, "")
				delete(work, "meta")
				delete(work, "schemas")
				if err := applyPatch(groupType, work, parsed); err != nil {
					return nil, err
				}
				n, err := normalizeResource(groupType, work, modePatched)
				if err != nil {
					return nil, err
				}
				if err := s.updateResource(c, g, n, modePatched); err != nil {
					return nil, err
				}
			}
			return g.members.list(), nil
		}
		fastIDs, fastErr := run(true)
		slowIDs, slowErr := run(false)
		require.Equal(t, slowErr != nil, fastErr != nil, "fast %v, general %v", fastErr, slowErr)
		if slowErr == nil {
			require.ElementsMatch(t, slowIDs, fastIDs)
		}
	})
}

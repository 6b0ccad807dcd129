package provision

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGeneratePassword(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 200 {
		pw, err := GeneratePassword()
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(pw), 20)
		var upper, lower, digit, symbol bool
		for _, r := range pw {
			switch {
			case unicode.IsUpper(r):
				upper = true
			case unicode.IsLower(r):
				lower = true
			case unicode.IsDigit(r):
				digit = true
			case strings.ContainsRune(pwSymbol, r):
				symbol = true
			default:
				t.Fatalf("unexpected character %q", r)
			}
		}
		require.True(t, upper && lower && digit && symbol, pw)
		require.False(t, seen[pw])
		seen[pw] = true
	}
}

func TestPrepareCyberArk(t *testing.T) {
	t.Parallel()
	decode := func(b []byte) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		return m
	}
	// POST Users without a password gets one; numbers survive the round trip exactly.
	p, err := prepareCyberArk("POST", "Users", []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","x":12345678901234567890}`))
	require.NoError(t, err)
	require.NotEmpty(t, p.secret)
	m := decode(p.body)
	assert.Equal(t, p.secret.Reveal(), m["password"])
	assert.Contains(t, string(p.body), "12345678901234567890")

	// Bodies that take the fast path (no custom schema, no escape) get what the slow path gives:
	// a password for a user's create, nothing else changed.
	for _, raw := range []string{`{"userName":"a"}`, ` { } `, `{"userName":"b","emails":[{"value":"b@x"}],"active":true}`} {
		p, err := prepareCyberArk("POST", "Users", []byte(raw))
		require.NoError(t, err)
		m := decode(p.body)
		require.NotEmpty(t, p.secret)
		assert.Equal(t, p.secret.Reveal(), m["password"], raw)
		delete(m, "password")
		want := decode([]byte(raw))
		assert.Equal(t, want, m, raw)
	}
	for _, raw := range []string{`{"userName":"a","Password":"x"}`, `{"userName":"a\u0022"}`, `{"userName":"a","title":"password"}`} {
		p, err := prepareCyberArk("POST", "Users", []byte(raw))
		require.NoError(t, err)
		assert.Equal(t, p.secret.Reveal(), decode(p.body)["password"], "%s gets its own password", raw)
	}
	p, err = prepareCyberArk("POST", "Users", []byte(`{"userName":"a"} trailing`))
	require.NoError(t, err)
	assert.Empty(t, p.secret, "not JSON: left for the target to refuse")

	// A mapped password is kept.
	body := []byte(`{"userName":"a","password":"Mapped-1!"}`)
	p, err = prepareCyberArk("POST", "Users", body)
	require.NoError(t, err)
	assert.Equal(t, body, p.body)
	assert.Empty(t, p.secret)

	// Not for other resources, other methods or sub-paths.
	for _, tc := range [][2]string{{"POST", "Groups"}, {"PUT", "Users/1"}, {"POST", "Users/1"}} {
		p, err = prepareCyberArk(tc[0], tc[1], []byte(`{"userName":"a"}`))
		require.NoError(t, err)
		assert.Empty(t, p.secret, tc)
	}

	// The custom extension is listed in schemas.
	p, err = prepareCyberArk("PUT", "Groups/9", []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"urn:scim:schemas:extension:custom:2.0":{"costCenter":"7"}}`))
	require.NoError(t, err)
	assert.Equal(t, []any{"urn:ietf:params:scim:schemas:core:2.0:Group", CustomSchema}, decode(p.body)["schemas"])
	listed := []byte(`{"schemas":["urn:scim:schemas:extension:custom:2.0"],"urn:scim:schemas:extension:custom:2.0":{}}`)
	p, err = prepareCyberArk("PUT", "Groups/9", listed)
	require.NoError(t, err)
	assert.Equal(t, listed, p.body, "already listed: body untouched")

	// PATCH on PAM resources is refused with the reason.
	_, err = prepareCyberArk("PATCH", "ContainerPermissions/Safe:jdoe", []byte(`{}`))
	assert.ErrorContains(t, err, "CyberArk does not support PATCH on ContainerPermissions; send PUT with the full object")
	_, err = prepareCyberArk("PATCH", "Users/1", []byte(`{}`))
	assert.NoError(t, err)

	// Not JSON: left for the target to refuse.
	p, err = prepareCyberArk("POST", "Users", []byte(`not json`))
	require.NoError(t, err)
	assert.Equal(t, "not json", string(p.body))
}

func TestContainerPermissionID(t *testing.T) {
	t.Parallel()
	id := ContainerPermissionID("Finance Safe", "corp:jdoe")
	safe, member, ok := SplitContainerPermissionID(id)
	assert.True(t, ok)
	assert.Equal(t, "Finance Safe", safe)
	assert.Equal(t, "corp:jdoe", member)
	_, _, ok = SplitContainerPermissionID("nocolon")
	assert.False(t, ok)
	assert.Equal(t, "ContainerPermissions/Finance%20Safe:corp:jdoe", ResourcePath(ResourceContainerPermissions, id))
}

// Whether a body is read by scanTop or decoded, a create gets what the decoding reading gives: a
// password unless the body names one, the custom extension listed in schemas when the body uses
// it, and nothing else changed.
func TestPrepareCyberArkScansAsItDecodes(t *testing.T) {
	t.Parallel()
	// want is what the decoding path makes of body (a POST of Users): the members as a map, and
	// whether a password was generated.
	want := func(body string) (map[string]any, bool) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &m))
		_, named := m["password"]
		if _, ok := m[CustomSchema]; ok {
			if ss, ok := m["schemas"].([]any); ok {
				listed := false
				for _, s := range ss {
					if str, _ := s.(string); strings.EqualFold(str, CustomSchema) {
						listed = true
					}
				}
				if !listed {
					m["schemas"] = append(ss, CustomSchema)
				}
			}
		}
		delete(m, "password")
		return m, !named
	}
	for _, body := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:scim:schemas:extension:custom:2.0"],"userName":"a","urn:scim:schemas:extension:custom:2.0":{"costCenter":"7"}}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","urn:scim:schemas:extension:custom:2.0":{"costCenter":"7"}}`,
		`{"schemas":["URN:SCIM:SCHEMAS:EXTENSION:CUSTOM:2.0"],"urn:scim:schemas:extension:custom:2.0":{}}`,
		`{"schemas":"not an array","urn:scim:schemas:extension:custom:2.0":{}}`,
		`{"schemas":[1,null,{"a":"urn:scim:schemas:extension:custom:2.0"}],"urn:scim:schemas:extension:custom:2.0":{}}`,
		`{"schemas":["urn:scim:schemas:extension:custom:2.0"],"schemas":["x"],"urn:scim:schemas:extension:custom:2.0":{}}`,
		`{"schemas":["x"],"urn:scim:schemas:extension:custom:2.0":{},"urn:scim:schemas:extension:custom:2.0":1}`,
		`{"schemas":["x"],"urn:scim:schemas:extension:custom:2.\u0030":{}}`,
		`{"schemas":["urn:scim:schemas:extension:custom:2.\u0030"],"urn:scim:schemas:extension:custom:2.0":{}}`,
		`{"userName":"a","password":null}`,
		`{"userName":"a","pass\u0077ord":"x"}`,
		`{"userName":"a","password":"x","password":"y"}`,
		`{"userName":"a","title":"urn:scim:schemas:extension:custom:2.0"}`,
		` {  "userName" : "a" } `,
		`{}`,
	} {
		p, err := prepareCyberArk("POST", "Users", []byte(body))
		require.NoError(t, err, body)
		var got map[string]any
		require.NoError(t, json.Unmarshal(p.body, &got), body)
		wantM, generated := want(body)
		if generated {
			require.NotEmpty(t, p.secret, body)
			assert.Equal(t, p.secret.Reveal(), got["password"], body)
		} else {
			assert.Empty(t, p.secret, body)
		}
		delete(got, "password")
		assert.Equal(t, wantM, got, body)
	}
}

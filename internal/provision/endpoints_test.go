package provision

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestURLComposition follows the Omada parameter table: Base URI, Entity root, Query address.
func TestURLComposition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                          string
		base, entityRoot, queryAddr   string
		wantEntityUsers, wantQueryUsr string
	}{
		{name: "same address: both fields empty, base carries it", base: "https://127.0.0.1/",
			wantEntityUsers: "https://127.0.0.1/Users", wantQueryUsr: "https://127.0.0.1/Users"},
		{name: "entity root v2 (seed example)", base: "http://127.0.0.1:8888", entityRoot: "v2",
			wantEntityUsers: "http://127.0.0.1:8888/v2/Users", wantQueryUsr: "http://127.0.0.1:8888/v2/Users"},
		{name: "query address appended to base (seed example)", base: "https://127.0.0.1/", queryAddr: "query",
			wantEntityUsers: "https://127.0.0.1/Users", wantQueryUsr: "https://127.0.0.1/query/Users"},
		{name: "entity root and query address", base: "https://host/api/", entityRoot: "/v2/", queryAddr: "search/v2",
			wantEntityUsers: "https://host/api/v2/Users", wantQueryUsr: "https://host/api/search/v2/Users"},
		{name: "cyberark /scim", base: "https://t.id.cyberark.cloud/scim",
			wantEntityUsers: "https://t.id.cyberark.cloud/scim/Users", wantQueryUsr: "https://t.id.cyberark.cloud/scim/Users"},
		{name: "cyberark /scim/v2 as entity root", base: "https://t.id.cyberark.cloud/scim", entityRoot: "v2",
			wantEntityUsers: "https://t.id.cyberark.cloud/scim/v2/Users", wantQueryUsr: "https://t.id.cyberark.cloud/scim/v2/Users"},
		{name: "escaped base path kept", base: "https://host/tenant%2Fa/scim",
			wantEntityUsers: "https://host/tenant%2Fa/scim/Users", wantQueryUsr: "https://host/tenant%2Fa/scim/Users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep, err := newEndpoints(tt.base, tt.entityRoot, tt.queryAddr, false)
			require.NoError(t, err)
			u, err := ep.url(false, "Users", nil)
			require.NoError(t, err)
			assert.Equal(t, tt.wantEntityUsers, u.String())
			u, err = ep.url(true, "Users", nil)
			require.NoError(t, err)
			assert.Equal(t, tt.wantQueryUsr, u.String())
		})
	}
}

func TestURLCompositionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base, entityRoot, queryAddr string
		want                        string
	}{
		{base: "", want: "baseURI: required"},
		{base: "127.0.0.1/scim", want: "baseURI: \"127.0.0.1/scim\" must be an absolute http or https URL"},
		{base: "ftp://host/scim", want: "must be an absolute http or https URL"},
		{base: "https://u:p@host/scim", want: "baseURI: must not carry credentials"},
		{base: "https://host/scim?x=1", want: "must not have a query or fragment"},
		{base: "http://scim.example.com/scim", want: "plain http to a remote host"},
		{base: "https://host/a/../b", want: `baseURI: path "a/../b" has a ".." segment`},
		{base: "https://host", entityRoot: "https://other/v2", want: "entityRoot: \"https://other/v2\" must be a relative path"},
		{base: "https://host", entityRoot: "../admin", want: `entityRoot: path "../admin" has a ".." segment`},
		{base: "https://host", queryAddr: "q?x=1", want: "queryAddress:"},
		{base: "https://host", queryAddr: "a//b", want: "queryAddress: path \"a//b\" has an empty segment"},
	}
	for _, tt := range tests {
		_, err := newEndpoints(tt.base, tt.entityRoot, tt.queryAddr, false)
		if assert.Error(t, err, tt) {
			assert.Contains(t, err.Error(), tt.want)
		}
	}
	_, err := newEndpoints("http://scim.example.com/scim", "", "", true)
	assert.NoError(t, err, "allowHTTP permits plain http")
	_, err = newEndpoints("http://localhost:8080/scim", "", "", false)
	assert.NoError(t, err, "loopback http is fine")
}

func TestRequestPaths(t *testing.T) {
	t.Parallel()
	ep, err := newEndpoints("https://host/scim/v2", "", "", false)
	require.NoError(t, err)
	tests := []struct {
		path  string
		query url.Values
		want  string
		err   string
	}{
		{path: ResourcePath("Users", "2819c223"), want: "https://host/scim/v2/Users/2819c223"},
		{path: ResourcePath("ContainerPermissions", ContainerPermissionID("Safe A", "jdoe@example.com")),
			want: "https://host/scim/v2/ContainerPermissions/Safe%20A:jdoe@example.com"},
		{path: ResourcePath("Users", "a/b"), want: "https://host/scim/v2/Users/a%2Fb"},
		{path: ResourcePath("Users", "é?#%"), want: "https://host/scim/v2/Users/%C3%A9%3F%23%25"},
		{path: "Users", query: url.Values{"filter": {`userName eq "a b+c&d"`}},
			want: "https://host/scim/v2/Users?filter=userName%20eq%20%22a%20b%2Bc%26d%22"},
		{path: ResourcePath("Users", ".."), err: `has a ".." segment`},
		{path: ResourcePath("Users", "."), err: `has a "." segment`},
		{path: "Users/%2e%2e", err: `has a ".." segment`},
		{path: "Users/a b", err: `has ' ' unescaped`},
		{path: "/Users", err: "empty segment"},
		{path: "", err: "path is empty"},
		{path: "Users/%zz", err: "not validly escaped"},
	}
	for _, tt := range tests {
		u, err := ep.url(false, tt.path, tt.query)
		if tt.err != "" {
			if assert.Error(t, err, tt.path) {
				assert.Contains(t, err.Error(), tt.err)
			}
			continue
		}
		require.NoError(t, err, tt.path)
		assert.Equal(t, tt.want, u.String())
		// What the server sees decodes back to the same segments.
		back, err := url.Parse(u.String())
		require.NoError(t, err)
		assert.Equal(t, u.Path, back.Path)
	}
}

func TestSplitTestQuery(t *testing.T) {
	t.Parallel()
	p, q, err := splitTestQuery(`Users?filter=userName eq "x"&count=1`)
	require.NoError(t, err)
	assert.Equal(t, "Users", p)
	assert.Equal(t, `userName eq "x"`, q.Get("filter"))
	_, _, err = splitTestQuery("https://host/Users")
	assert.ErrorContains(t, err, "must be relative to the query address")
	_, _, err = splitTestQuery("../Users")
	assert.ErrorContains(t, err, `".." segment`)
}

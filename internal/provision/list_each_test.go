package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListEach(t *testing.T) {
	t.Parallel()
	st := startTarget(t, ProfileCyberArk, nil)
	for i := range 7 {
		require.NoError(t, st.sim.Seed("Users", map[string]any{"userName": fmt.Sprintf("each%d@example.com", i)}))
	}
	c, err := New(st.config())
	require.NoError(t, err)
	var names []string
	info, err := listEach(c, "Users", 3, 4, func(m map[string]any) error {
		names = append(names, m["userName"].(string))
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"each2@example.com", "each3@example.com", "each4@example.com", "each5@example.com"}, names)
	assert.Positive(t, info.Bytes)
	info.Bytes = 0
	assert.Equal(t, PageInfo{TotalResults: 7, StartIndex: 3, ItemsPerPage: 4, Count: 4, Asked: 4}, info)

	stop := errors.New("stop")
	n := 0
	_, err = listEach(c, "Users", 1, 0, func(map[string]any) error { n++; return stop })
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 1, n, "an error of fn ends the page")
}

// A target that sends neither totalResults nor itemsPerPage, and a null Resources, is read.
func TestListEachToleratesMissingCounts(t *testing.T) {
	t.Parallel()
	bodies := []string{
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"Resources":[{"id":"a"},{"id":"b"}]}`,
		`{"Resources":null}`,
		`{"totalResults":"5","Resources":[]}`,
	}
	i := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/scim+json")
		fmt.Fprint(w, bodies[i])
		i++
	}))
	t.Cleanup(ts.Close)
	c, err := New(Config{BaseURI: ts.URL})
	require.NoError(t, err)
	var ids []string
	info, err := listEach(c, "Users", 1, 10, func(m map[string]any) error {
		ids = append(ids, m["id"].(string))
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, ids)
	assert.Equal(t, PageInfo{TotalResults: -1, StartIndex: 1, ItemsPerPage: -1, Count: 2, Asked: 10, Bytes: len(bodies[0])}, info)
	info, err = listEach(c, "Users", 3, 10, func(map[string]any) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, 0, info.Count)
	info, err = listEach(c, "Users", 3, 10, func(map[string]any) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, 5, info.TotalResults, "a numeric string is read as a number")
}

// listEach reads a page as the inventory does, each resource decoded whole.
func listEach(c *Client, resource string, start, count int, fn func(map[string]any) error) (PageInfo, error) {
	return c.ListRaw(context.Background(), resource, start, count, func(raw []byte) error {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
		return fn(m)
	})
}

// An answer that is not a ListResponse is a permanent error that names the resource, the page and
// what is wrong, also when the resources before the fault were read; the resources are handed over
// as their own JSON text.
func TestListRawNamesWhatIsWrongWithAPage(t *testing.T) {
	t.Parallel()
	cases := []struct{ body, want string }{
		{`[{"id":"a"}]`, "list Users from 4: the answer is not a JSON object"},
		{`{"Resources":{"id":"a"}}`, "list Users from 4: Resources is not an array"},
		{`{"Resources":[{"id":"a"},"b"]}`, "list Users from 4: Resources[1] is not an object"},
		{`{"totalResults":2,"Resources":[{"id":"a"},{"id":"b",}]}`, "list Users from 4: invalid character '}' looking for beginning of object key string (at byte 53 of 55)"}, // the 53rd byte is the "}" after "b",,
		{`{"Resources":[{"id":"a"}]`, "list Users from 4: unexpected end of JSON input (at byte 25 of 25)"},
		{``, "list Users from 4: the answer is not a JSON object"},
	}
	for _, tc := range cases {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/scim+json")
			fmt.Fprint(w, tc.body)
		}))
		c, err := New(Config{BaseURI: ts.URL})
		require.NoError(t, err)
		var got []string
		_, err = c.ListRaw(context.Background(), "Users", 4, 10, func(raw []byte) error {
			got = append(got, string(raw))
			return nil
		})
		ts.Close()
		var pe *Error
		require.ErrorAs(t, err, &pe, "%s", tc.body)
		assert.Equal(t, ClassPermanent, pe.Class, "%s", tc.body)
		assert.Equal(t, tc.want, pe.Detail, "%s", tc.body)
		if strings.Contains(tc.body, `{"id":"a"}`) && !strings.HasPrefix(tc.body, "[") && !strings.Contains(tc.body, `"Resources":{`) {
			assert.Equal(t, []string{`{"id":"a"}`}, got, "what came before the fault was read: %s", tc.body)
		}
	}
}

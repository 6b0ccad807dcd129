package provision

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	info, err := c.ListEach(context.Background(), "Users", 3, 4, func(m map[string]any) error {
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
	_, err = c.ListEach(context.Background(), "Users", 1, 0, func(map[string]any) error { n++; return stop })
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
	info, err := c.ListEach(context.Background(), "Users", 1, 10, func(m map[string]any) error {
		ids = append(ids, m["id"].(string))
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, ids)
	assert.Equal(t, PageInfo{TotalResults: -1, StartIndex: 1, ItemsPerPage: -1, Count: 2, Asked: 10, Bytes: len(bodies[0])}, info)
	info, err = c.ListEach(context.Background(), "Users", 3, 10, func(map[string]any) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, 0, info.Count)
	info, err = c.ListEach(context.Background(), "Users", 3, 10, func(map[string]any) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, 5, info.TotalResults, "a numeric string is read as a number")
}

package cyberarksim

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// page lists a collection page and returns the ids and the decoded ListResponse.
func (c *client) page(path string) ([]string, response) {
	c.t.Helper()
	r := c.do(http.MethodGet, path, nil)
	require.Equal(c.t, http.StatusOK, r.status, "%s", r.raw)
	var ids []string
	for _, res := range r.body["Resources"].([]any) {
		ids = append(ids, res.(map[string]any)["id"].(string))
	}
	return ids, r
}

func TestPaging(t *testing.T) {
	t.Parallel()
	_, c := setup(t, Config{})
	var all []string
	for i := range 25 {
		all = append(all, c.create(Users, user(fmt.Sprintf("page%02d@example.com", i))))
	}

	tests := []struct {
		query      string
		want       []string
		startIndex int
		total      int
	}{
		{"startIndex=1&count=10", all[:10], 1, 25},
		{"startIndex=11&count=10", all[10:20], 11, 25},
		{"startIndex=21&count=10", all[20:], 21, 25},
		{"startIndex=26&count=10", nil, 26, 25},
		{"startIndex=0&count=3", all[:3], 1, 25},
		{"startIndex=-5&count=3", all[:3], 1, 25},
		{"count=0", nil, 1, 25},
		{"count=-1", nil, 1, 25},
		{"", all, 1, 25},
		{"startIndex=24", all[23:], 24, 25},
		{"filter=" + url.QueryEscape(`userName sw "page1"`) + "&startIndex=4&count=4", all[13:17], 4, 10},
		{"filter=" + url.QueryEscape(`userName co "page"`) + "&startIndex=24", all[23:], 24, 25},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			ids, r := c.page("/scim/v2/Users?" + tt.query)
			assert.Equal(t, tt.want, ids)
			assert.Equal(t, float64(len(tt.want)), r.body["itemsPerPage"])
			assert.Equal(t, float64(tt.startIndex), r.body["startIndex"])
			assert.Equal(t, float64(tt.total), r.body["totalResults"])
			assert.NotNil(t, r.body["Resources"], "Resources is [] rather than absent")
		})
	}
	for _, bad := range []string{"count=ten", "startIndex=1.5"} {
		requireSCIMError(t, c.do(http.MethodGet, "/scim/v2/Users?"+bad, nil), http.StatusBadRequest, scimInvalidValue)
	}

	t.Run("changes between pages", func(t *testing.T) {
		first, _ := c.page("/scim/v2/Users?startIndex=1&count=10")
		c.create(Users, user("late@example.com"))
		second, _ := c.page("/scim/v2/Users?startIndex=11&count=10")
		assert.Equal(t, all[10:20], second, "creating appends: earlier pages do not move")

		require.Equal(t, http.StatusNoContent, c.do(http.MethodDelete, "/scim/v2/Users/"+first[0], nil).status)
		third, _ := c.page("/scim/v2/Users?startIndex=21&count=10")
		assert.Equal(t, all[21], third[0], "a delete shifts later records left by one, as in any offset-paged server")
	})
}

func TestPagingLimits(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	require.NoError(t, s.SeedSyntheticUsers(1205))
	ids, r := c.page("/scim/v2/Users?count=5000")
	assert.Len(t, ids, maxCount, "count is clamped to maxResults")
	assert.Equal(t, float64(1205), r.body["totalResults"])
	ids, _ = c.page("/scim/v2/Users")
	assert.Len(t, ids, maxCount, "the default page is maxResults")

	// A full inventory in pages of 1000 sees every user exactly once, in creation order.
	seen := map[string]bool{}
	var order []string
	for start := 1; ; start += maxCount {
		page, _ := c.page(fmt.Sprintf("/scim/v2/Users?startIndex=%d&count=%d&attributes=userName", start, maxCount))
		if len(page) == 0 {
			break
		}
		for _, id := range page {
			assert.False(t, seen[id], "duplicate %s", id)
			seen[id] = true
		}
		order = append(order, page...)
	}
	assert.Len(t, seen, 1205)
	snap := s.Snapshot()
	byName := map[string]string{}
	for _, u := range snap.Users {
		byName[u["id"].(string)] = u["userName"].(string)
	}
	assert.Equal(t, SyntheticUserName(1), byName[order[0]])
	assert.Equal(t, SyntheticUserName(1205), byName[order[len(order)-1]])
}

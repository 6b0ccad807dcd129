package cyberarksim

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParallelWriters runs writers and readers at once (meaningful under -race) and checks the
// store is consistent afterwards: every kept user is in the shared group exactly once, deleted
// users are in no group, indexes agree with the documents.
func TestParallelWriters(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	gid := c.create(Groups, group("Everyone"))
	const writers, perWriter = 6, 25

	var mu sync.Mutex
	kept := map[string]string{} // id → userName
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				name := fmt.Sprintf("w%d-u%02d@example.com", w, i)
				r := c.do(http.MethodPost, "/scim/v2/Users", user(name))
				if !assert.Equal(t, http.StatusCreated, r.status, "%s", r.raw) {
					return
				}
				id := r.str("id")
				r = c.do(http.MethodPatch, "/scim/v2/Groups/"+gid, patchBody(op("add", "members", []any{map[string]any{"value": id}})))
				assert.Equal(t, http.StatusOK, r.status, "%s", r.raw)
				r = c.do(http.MethodPatch, "/scim/v2/Users/"+id, patchBody(op("replace", "title", fmt.Sprintf("T%d", i))))
				assert.Equal(t, http.StatusOK, r.status, "%s", r.raw)
				if i%5 == 0 {
					assert.Equal(t, http.StatusNoContent, c.do(http.MethodDelete, "/scim/v2/Users/"+id, nil).status)
					continue
				}
				mu.Lock()
				kept[id] = name
				mu.Unlock()
			}
		}()
	}
	for range 2 { // readers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				assert.Equal(t, http.StatusOK, c.do(http.MethodGet, "/scim/v2/Groups/"+gid, nil).status)
				f := url.QueryEscape(fmt.Sprintf(`userName sw "w%d"`, i%writers))
				assert.Equal(t, http.StatusOK, c.do(http.MethodGet, "/scim/v2/Users?count=50&filter="+f, nil).status)
				_ = s.Snapshot()
				_ = s.Stats()
			}
		}()
	}
	wg.Wait()

	require.Equal(t, len(kept), s.Len(Users))
	g := c.do(http.MethodGet, "/scim/v2/Groups/"+gid, nil)
	var members []string
	for _, m := range g.body["members"].([]any) {
		members = append(members, m.(map[string]any)["value"].(string))
	}
	assert.Len(t, members, len(kept))
	for _, id := range members {
		assert.Contains(t, kept, id)
	}
	for id, name := range kept {
		r := c.do(http.MethodGet, "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "`+name+`"`), nil)
		require.Equal(t, float64(1), r.body["totalResults"], name)
		assert.Equal(t, id, r.body["Resources"].([]any)[0].(map[string]any)["id"])
	}
	st := s.Stats()
	assert.Equal(t, writers*perWriter, st.Requests["POST /scim/v2/Users"])
	assert.Zero(t, st.InFlight)
}

// TestResetDuringTraffic resets the store while requests run: no request may fail with a 5xx or
// write into a collection that a reset discarded.
func TestResetDuringTraffic(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r := c.do(http.MethodPost, "/scim/v2/Users", user(fmt.Sprintf("r%d-%d@example.com", w, i)))
				assert.Less(t, r.status, 500, "%s", r.raw)
				assert.Less(t, c.do(http.MethodGet, "/scim/v2/Users?count=5", nil).status, 500)
			}
		}()
	}
	for range 20 {
		s.Reset()
	}
	close(stop)
	wg.Wait()
	s.Reset()
	c.create(Users, user("after@example.com"))
	assert.Equal(t, 1, s.Len(Users))
	assert.Len(t, s.Snapshot().Users, 1)
}

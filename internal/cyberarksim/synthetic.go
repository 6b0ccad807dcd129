package cyberarksim

import (
	"fmt"
)

var (
	syntheticGiven  = []string{"Ada", "Alan", "Barbara", "Claude", "Donald", "Edsger", "Frances", "Grace", "Hedy", "Ivan", "Joan", "Ken", "Leslie", "Margaret", "Niklaus", "Radia"}
	syntheticFamily = []string{"Lovelace", "Turing", "Liskov", "Shannon", "Knuth", "Dijkstra", "Allen", "Hopper", "Lamarr", "Sutherland", "Clarke", "Thompson", "Lamport", "Hamilton", "Wirth", "Perlman"}
)

// SyntheticUserName is the userName of the i-th synthetic user (1-based):
// "user0000001@example.com". Its externalId is "E0000001".
func SyntheticUserName(i int) string { return fmt.Sprintf("user%07d@example.com", i) }

// SeedSyntheticUsers adds n generated Users for load tests, numbered after the Users already
// stored: userName and emails[0].value SyntheticUserName(i), externalId "E%07d", name.givenName
// and name.familyName from small lists, displayName "<given> <family> <i>", active true. It
// skips request validation, so a million users load in seconds.
func (s *Server) SeedSyntheticUsers(n int) error {
	if n < 0 {
		return fmt.Errorf("seed synthetic users: n %d must not be negative", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.db.cols[Users]
	userNames := c.indexOn("userName")
	first := c.order.live + 1
	now := s.now().UnixNano()
	for i := first; i < first+n; i++ {
		userName := SyntheticUserName(i)
		if userNames.first(userName) != nil {
			return fmt.Errorf("seed synthetic users: userName %q is already in use", userName)
		}
		given := syntheticGiven[i%len(syntheticGiven)]
		family := syntheticFamily[(i/len(syntheticGiven))%len(syntheticFamily)]
		doc := map[string]any{
			"userName":    userName,
			"externalId":  fmt.Sprintf("E%07d", i),
			"displayName": fmt.Sprintf("%s %s %d", given, family, i),
			"name":        map[string]any{"givenName": given, "familyName": family, "formatted": given + " " + family},
			"emails":      []any{map[string]any{"value": userName, "type": "work", "primary": true}},
			"active":      true,
		}
		rec := &record{id: newUUID(), created: now, modified: now, version: 1}
		rec.display, _ = doc["displayName"].(string)
		s.db.insert(c, rec, doc)
	}
	return nil
}

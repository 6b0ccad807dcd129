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

// SyntheticGroupName is the displayName of the i-th synthetic group (1-based): "group000001".
func SyntheticGroupName(i int) string { return fmt.Sprintf("group%06d", i) }

// SeedSyntheticGroups adds n generated Groups numbered after the Groups already stored, holding
// memberships members in all, spread evenly over the groups: group i takes the next users in
// creation order, wrapping around, so that the membership load of a directory (10,000 groups,
// 1,000,000 memberships) loads in seconds. Users must exist when memberships > 0. It skips request
// validation as SeedSyntheticUsers does.
func (s *Server) SeedSyntheticGroups(n, memberships int) error {
	if n < 0 || memberships < 0 {
		return fmt.Errorf("seed synthetic groups: n %d and memberships %d must not be negative", n, memberships)
	}
	if n == 0 && memberships > 0 {
		return fmt.Errorf("seed synthetic groups: %d memberships need groups", memberships)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	users := make([]string, 0, s.db.cols[Users].order.live)
	s.db.cols[Users].order.each(func(r *record) bool {
		users = append(users, r.id)
		return true
	})
	if memberships > 0 && len(users) == 0 {
		return fmt.Errorf("seed synthetic groups: %d memberships but no users", memberships)
	}
	c := s.db.cols[Groups]
	names := c.indexOn("displayName")
	first := c.order.live + 1
	now := s.now().UnixNano()
	next := 0
	for k := range n {
		i := first + k
		name := SyntheticGroupName(i)
		if names.first(name) != nil {
			return fmt.Errorf("seed synthetic groups: displayName %q is already in use", name)
		}
		size := memberships / n
		if k < memberships%n {
			size++
		}
		size = min(size, len(users))
		rec := &record{id: newUUID(), created: now, modified: now, version: 1, display: name}
		s.db.insert(c, rec, map[string]any{"displayName": name})
		rec.members = newMemberList()
		ids := make([]string, size)
		for j := range ids {
			ids[j] = users[next%len(users)]
			next++
		}
		s.db.setMembers(rec, ids)
	}
	return nil
}

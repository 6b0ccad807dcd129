package cyberarksim

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// State is a deep copy of every stored resource, each in the representation GET returns
// (passwords never included), sorted by id. Numbers decode as float64. The PAM slices are empty
// in the generic profile.
type State struct {
	Users                []map[string]any `json:"Users"`
	Groups               []map[string]any `json:"Groups"`
	Containers           []map[string]any `json:"Containers"`
	ContainerPermissions []map[string]any `json:"ContainerPermissions"`
	PrivilegedData       []map[string]any `json:"PrivilegedData"`
}

// Snapshot returns a deep copy of every resource, sorted by id. Links use Config.BaseURL (or the
// test server's URL); they are relative when neither is known.
func (s *Server) Snapshot() State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	base := s.base(nil)
	dump := func(endpoint string) []map[string]any {
		c := s.db.cols[endpoint]
		ids := make([]string, 0, len(c.byID))
		for id := range c.byID {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		out := make([]map[string]any, 0, len(ids))
		for _, id := range ids {
			var m map[string]any
			_ = json.Unmarshal(s.renderResource(c, c.byID[id], base, nil), &m)
			out = append(out, m)
		}
		return out
	}
	return State{
		Users:                dump(Users),
		Groups:               dump(Groups),
		Containers:           dump(Containers),
		ContainerPermissions: dump(ContainerPermissions),
		PrivilegedData:       dump(PrivilegedData),
	}
}

// resourceCollection resolves a resource name for Seed and Len: the endpoint ("Users") or the
// resource type ("User"), case-insensitively, among the profile's resource types.
func (s *Server) resourceCollection(resource string) *collection {
	for _, rt := range s.served {
		if strings.EqualFold(rt.endpoint, resource) || strings.EqualFold(rt.name, resource) {
			return s.db.cols[rt.endpoint]
		}
	}
	return nil
}

// Seed inserts fixtures into resource ("Users", "Groups", "Containers", "ContainerPermissions",
// "PrivilegedData"; the singular resource type names work too) as if a client had POSTed them,
// with three differences: an "id" in the object is kept (one is assigned when missing),
// "schemas" may be omitted, and the CyberArk password requirement and policy do not apply. Each
// object is validated like a request body; Seed stops at the first invalid one, keeping the ones
// before it.
func (s *Server) Seed(resource string, objs ...map[string]any) error {
	c := s.resourceCollection(resource)
	if c == nil {
		return fmt.Errorf("seed %s: unknown resource (profile serves %s)", resource, s.servedNames())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, obj := range objs {
		raw, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("seed %s[%d]: encode fixture: %w", resource, i, err)
		}
		body, err := decodeBody(raw)
		if err != nil {
			return fmt.Errorf("seed %s[%d]: %w", resource, i, err)
		}
		if _, err := s.createResource(c, body, modeSeed); err != nil {
			return fmt.Errorf("seed %s[%d]: %w", resource, i, err)
		}
	}
	return nil
}

func (s *Server) servedNames() string {
	names := make([]string, len(s.served))
	for i, rt := range s.served {
		names[i] = rt.endpoint
	}
	return strings.Join(names, ", ")
}

// Len returns the number of stored resources of resource (names as for Seed), 0 for unknown names.
func (s *Server) Len(resource string) int {
	c := s.resourceCollection(resource)
	if c == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return c.order.live
}

// UserPassword returns the password stored for the User with id, so tests can check what a
// client generated (length, character classes). It is never exposed over HTTP.
func (s *Server) UserPassword(id string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.db.cols[Users].byID[id]
	if r == nil || r.password == "" {
		return "", false
	}
	return r.password, true
}

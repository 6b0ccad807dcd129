package reconcile

import "context"

// Match is one "attribute eq value" condition of a lookup; several are joined with "and"
// (the seed's Resolve Object ID: "only the AND operator is used").
type Match struct{ Attr, Value string }

// Reader is how the planner reads the target. It never writes.
//
// Resolve looks an object up the way the seed's Resolve Object ID and Resolve Reference Property
// do (GET {query}/{resource}?filter=...) and returns the id at the root resource path; found is
// false when nothing matches. Get reads one object. Errors pass through the planner wrapped with %w.
type Reader interface {
	Resolve(ctx context.Context, resource string, match []Match) (id string, found bool, err error)
	Get(ctx context.Context, resource, id string) (map[string]any, error)
}

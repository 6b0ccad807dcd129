package reconcile

import (
	"errors"
	"fmt"
	"strings"
)

// Errors the pipeline classifies with errors.Is.
var (
	// ErrInvalidChange: the event does not fit the data model (unknown object or property, a value of
	// the wrong type, a missing key). Retrying can't help: dead-letter it.
	ErrInvalidChange = errors.New("event does not fit the data model")
	// ErrModel: a configuration problem found while planning (a JSONPath property that matches nothing
	// in the prepared request, a template whose shape contradicts a property path, ...). Dead-letter.
	ErrModel = errors.New("data model error")
	// ErrObjectNotFound: the operation needs an existing object (Update, AddAssignment,
	// RemoveAssignment, Delete with onMissing fail) and the target has none with the event's key.
	ErrObjectNotFound = errors.New("object not found in the target")
)

// UnresolvedReferenceError says that a reference value has no target object yet, e.g. a group
// member whose user is not created yet. The pipeline retries it and later defers it.
type UnresolvedReferenceError struct {
	Property string  // the data-model property holding the reference, e.g. members[].value
	Resource string  // where it was looked up, e.g. Users
	Match    []Match // what was looked for
}

func (e *UnresolvedReferenceError) Error() string {
	return fmt.Sprintf("reference %q: no %s where %s", e.Property, e.Resource, describeMatch(e.Match))
}

func describeMatch(ms []Match) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s eq %q", m.Attr, m.Value)
	}
	return strings.Join(parts, " and ")
}

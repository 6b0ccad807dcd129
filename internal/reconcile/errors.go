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
	// ErrTargetResponse: a read succeeded but the target's answer can't be used: a lookup hit
	// without an id, a GET whose object is not a JSON object. Permanent, like the connector's own
	// unreadable-answer errors: the same target answers the same way on a retry, and an operator
	// needs the dead letter's reason to fix the target or its root resource path. Dead-letter it.
	ErrTargetResponse = errors.New("unusable answer from the target")
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

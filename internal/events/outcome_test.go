package events

import (
	"bytes"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/schemas"
)

// schemaViolations checks an outcome against schemas/outcome.schema.json.
func schemaViolations(t *testing.T, o *Outcome) []schemas.Violation {
	t.Helper()
	raw, err := o.Encode()
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	vs, err := schemas.Validate("outcome.schema.json", doc)
	require.NoError(t, err)
	return vs
}

func TestOutcomeSchemaRejectsInconsistentOutcomes(t *testing.T) {
	t.Parallel()
	bad := &Outcome{ID: "x", InputID: "x", Object: "User", Status: StatusDeadLettered, Final: true, Attempt: 1}
	require.NotEmpty(t, schemaViolations(t, bad), "a dead letter without an error must fail the schema")
	bad = &Outcome{ID: "x", InputID: "x", Object: "User", Status: StatusDeferred, Final: true, Attempt: 1,
		Error: &OutcomeError{Class: "retryable", Message: "m"}}
	require.NotEmpty(t, schemaViolations(t, bad), "a deferred outcome is not final")
	good := &Outcome{ID: "x", InputID: "x", Object: "User", Status: StatusSucceeded, Final: true, Attempt: 1}
	require.Empty(t, schemaViolations(t, good))
}

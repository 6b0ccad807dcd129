package reconcile

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The lead's semantics where the seed is silent (DESIGN.md §4, docs/datamodel.md): PATCH
// derivation, reconciled PATCH diffs, Delete, missing objects, Upsert, ResolveFirst, references,
// types and the errors the pipeline classifies.

// plannerModel is a User and a Group; details (a flow mapping) and extra YAML (appended to the
// User object) vary per case.
func plannerModel(details, extra string) string {
	s := `objects:
  - name: User
    resource: Users
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"]
    properties:
      - {name: userName, isKey: true}
      - {name: name.givenName}
      - {name: title}
      - {name: active, type: bool}
      - {name: "emails[].value"}
      - {name: "emails[].type"}
      - {name: "roles[]"}
      - {name: employeeNumber, path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", type: int}
      - {name: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}
      - {name: "urn:scim:schemas:extension:custom:2.0:costCenter"}
      - {name: badge, type: long}
      - {name: preferences, type: complex}
      - {name: manager, path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", referenceObject: Users, referenceLookupProperty: userName}
`
	if details != "" {
		s += "    details: " + details + "\n"
	}
	s += extra
	return s + `  - name: Group
    resource: Groups
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"]
    properties:
      - {name: displayName, isKey: true}
      - {name: "members[].value", referenceObject: Users, referenceLookupProperty: userName}
`
}

const patchSchema = `"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`

func patchBody(ops string) string { return `{` + patchSchema + `,"Operations":[` + ops + `]}` }

func change(op Operation, user string, attrs map[string]any) Change {
	return Change{Object: "User", Operation: op, Key: map[string]any{"userName": user}, Attributes: attrs}
}

func groupChange(op Operation, members ...any) Change {
	return Change{Object: "Group", Operation: op, Key: map[string]any{"displayName": "Admins"}, Attributes: map[string]any{"members[].value": members}}
}

// firstOpPath decodes a PATCH body and returns its first operation's path.
func firstOpPath(t *testing.T, p *Plan) string {
	t.Helper()
	require.Len(t, p.Requests, 1)
	var body struct {
		Operations []struct{ Path string } `json:"Operations"`
	}
	require.NoError(t, json.Unmarshal(p.Requests[0].Body, &body))
	require.NotEmpty(t, body.Operations)
	return body.Operations[0].Path
}

func TestPlanPatchDerivation(t *testing.T) {
	t.Parallel()
	cases := []planCase{
		{
			name:   "modify becomes replace, in the model's property order",
			model:  plannerModel("", ""),
			store:  users,
			change: change(OpUpdate, "jdoe", map[string]any{"title": "Engineer", "name.givenName": "John"}),
			want: []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"replace","path":"name.givenName","value":"John"},
				{"op":"replace","path":"title","value":"Engineer"}`)}},
		},
		{
			name:   "a null value with modify clears the attribute",
			model:  plannerModel("", ""),
			store:  users,
			change: change(OpUpdate, "jdoe", map[string]any{"title": nil}),
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"remove","path":"title"}`)}},
		},
		{
			name:   "add on a single-valued property is a PATCH add",
			model:  plannerModel("", ""),
			store:  users,
			change: Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "jdoe"}, Attributes: map[string]any{"title": "Engineer"}, Actions: map[string]string{"title": "add"}},
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"add","path":"title","value":"Engineer"}`)}},
		},
		{
			name:   "add of a multivalue group is one add of element objects, zipped by index",
			model:  plannerModel("", ""),
			store:  users,
			change: change(OpUpdate, "jdoe", map[string]any{"emails[].value": []any{"a@example.org", "b@example.org"}, "emails[].type": []any{"work", "home"}}),
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"add","path":"emails","value":[{"value":"a@example.org","type":"work"},{"value":"b@example.org","type":"home"}]}`)}},
		},
		{
			name:    "a multivalue group whose value lists differ in length is refused",
			model:   plannerModel("", ""),
			store:   users,
			change:  change(OpUpdate, "jdoe", map[string]any{"emails[].value": []any{"a@example.org", "b@example.org"}, "emails[].type": []any{"work", "home", "other"}}),
			wantErr: ErrInvalidChange,
			errText: []string{"multivalue properties of emails have different numbers of values"},
		},
		{
			name:  "remove on an array selects the element with a filter quoted like RFC 7644 filter values",
			model: plannerModel("", ""),
			store: users,
			change: Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "jdoe"},
				Attributes: map[string]any{"emails[].value": `a"b\c@example.org`}, Actions: map[string]string{"emails[].value": "remove"}},
			want: []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"remove","path":"emails[value eq \"a\\\"b\\\\c@example.org\"]"}`)}},
			check: func(t *testing.T, p *Plan, _ *memoryReader) {
				assert.Equal(t, `emails[value eq "a\"b\\c@example.org"]`, firstOpPath(t, p))
			},
		},
		{
			name:  "remove of a multivalue group selects the element by all its fields",
			model: plannerModel("", ""),
			store: users,
			change: Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "jdoe"},
				Attributes: map[string]any{"emails[].value": "x@example.org", "emails[].type": "home"},
				Actions:    map[string]string{"emails[].value": "remove", "emails[].type": "remove"}},
			check: func(t *testing.T, p *Plan, _ *memoryReader) {
				assert.Equal(t, `emails[type eq "home" and value eq "x@example.org"]`, firstOpPath(t, p))
			},
			want: []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"remove","path":"emails[type eq \"home\" and value eq \"x@example.org\"]"}`)}},
		},
		{
			name:   "remove on an object property removes the path, whatever the value",
			model:  plannerModel("", ""),
			store:  users,
			change: Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "jdoe"}, Attributes: map[string]any{"title": "whatever"}, Actions: map[string]string{"title": "remove"}},
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"remove","path":"title"}`)}},
		},
		{
			name:   "extension attributes use the URN attribute path; text is not HTML-escaped",
			model:  plannerModel("", ""),
			store:  users,
			change: change(OpUpdate, "jdoe", map[string]any{enterpriseURN + ":department": "R&D"}),
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"R&D"}`)}},
			check: func(t *testing.T, p *Plan, _ *memoryReader) {
				assert.Contains(t, string(p.Requests[0].Body), `"R&D"`)
			},
		},
		{
			name:   "a simple multi-valued attribute adds plain values",
			model:  plannerModel("", ""),
			store:  users,
			change: change(OpUpdate, "jdoe", map[string]any{"roles[]": []any{"auditor", "admin"}}),
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"add","path":"roles","value":["auditor","admin"]}`)}},
		},
		{
			name:   "a simple multi-valued attribute removes through its implicit value",
			model:  plannerModel("", ""),
			store:  users,
			change: Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "jdoe"}, Attributes: map[string]any{"roles[]": "auditor"}, Actions: map[string]string{"roles[]": "remove"}},
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"remove","path":"roles[value eq \"auditor\"]"}`)}},
		},
		{
			name:    "an update that maps to no operation sends nothing",
			model:   plannerModel("", ""),
			store:   users,
			change:  change(OpUpdate, "jdoe", nil),
			skipped: "nothing to change",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runPlanCase(t, c)
		})
	}
}

func TestPlanReconciledPatch(t *testing.T) {
	t.Parallel()
	stored := map[string][]string{"Users": {`{"id":"u1","schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"userName":"jdoe","title":"CTO","emails":[{"value":"a@example.org","type":"work"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Ops","employeeNumber":"7"}}`}}
	cases := []planCase{
		{
			name:   "replace of every top-level attribute that differs, one level deeper in an extension",
			model:  plannerModel("{ReconcileOnUpdate: true}", ""),
			store:  stored,
			change: change(OpUpdate, "jdoe", map[string]any{"title": "Engineer", "emails[].value": "b@example.org", enterpriseURN + ":department": "R&D"}),
			gets:   []string{"Users/u1"},
			want: []wantRequest{{"PATCH", "Users/u1", patchBody(`
				{"op":"replace","path":"emails","value":[{"value":"a@example.org","type":"work"},{"value":"b@example.org"}]},
				{"op":"replace","path":"title","value":"Engineer"},
				{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"R&D"}`)}},
			check: func(t *testing.T, p *Plan, _ *memoryReader) {
				assert.Contains(t, p.Requests[0].Sources, Source{Pointer: "/Operations/1", Rule: `task mapping "title" (modify, Update; default mapping)`})
			},
		},
		{
			name:    "nothing differs: no request",
			model:   plannerModel("{ReconcileOnUpdate: true}", ""),
			store:   stored,
			change:  change(OpUpdate, "jdoe", map[string]any{"title": "CTO", "emails[].value": "a@example.org"}),
			skipped: "already in the desired state",
		},
		{
			name:   "an attribute the merge removes becomes a PATCH remove",
			model:  plannerModel("{ReconcileOnUpdate: true}", ""),
			store:  stored,
			change: Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "jdoe"}, Attributes: map[string]any{"title": "CTO"}, Actions: map[string]string{"title": "remove"}},
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"remove","path":"title"}`)}},
		},
		{
			name:     "the current object can't be read: the Reader's error passes through",
			model:    plannerModel("{ReconcileOnUpdate: true}", ""),
			store:    stored,
			setup:    func(r *memoryReader) { r.failGet = &scimError{Status: 503, Detail: "unavailable"} },
			change:   change(OpUpdate, "jdoe", map[string]any{"title": "Engineer"}),
			errText:  []string{"read Users/u1", "SCIM 503"},
			checkErr: func(t *testing.T, err error) { var se *scimError; assert.True(t, errors.As(err, &se)) },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runPlanCase(t, c)
		})
	}
}

func TestPlanDeleteAndMissingObjects(t *testing.T) {
	t.Parallel()
	cases := []planCase{
		{
			name:   "Delete sends DELETE without a body",
			model:  plannerModel("", ""),
			store:  users,
			change: change(OpDelete, "jdoe", nil),
			want:   []wantRequest{{"DELETE", "Users/u1", ""}},
		},
		{
			name:    "Delete of an absent object is skipped by default",
			model:   plannerModel("", ""),
			store:   users,
			change:  change(OpDelete, "ghost", nil),
			skipped: `no Users where userName eq "ghost": already absent`,
		},
		{
			name:    "Delete of an absent object fails with onMissing Delete: fail",
			model:   plannerModel("", "    onMissing: {Delete: fail}\n"),
			store:   users,
			change:  change(OpDelete, "ghost", nil),
			wantErr: ErrObjectNotFound,
		},
		{
			name:   "Delete task mappings make a soft delete: a PATCH from the mappings",
			model:  plannerModel("", "    taskMappings:\n      Delete: [{name: active, action: modify, value: false}]\n"),
			store:  users,
			change: change(OpDelete, "jdoe", nil),
			notes:  []string{"soft delete"},
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"replace","path":"active","value":false}`)}},
			check: func(t *testing.T, p *Plan, _ *memoryReader) {
				assert.Contains(t, p.Requests[0].Sources, Source{Pointer: "/Operations/0", Rule: `task mapping "active" (modify, Delete; constant value)`})
			},
		},
		{
			name:   "a DeleteRequest template makes a soft delete too",
			model:  plannerModel(`{DeleteRequest: '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}'}`, ""),
			store:  users,
			change: change(OpDelete, "jdoe", nil),
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"replace","path":"active","value":false}`)}},
		},
		{
			name:    "attributes of a hard delete have no mapping",
			model:   plannerModel("", ""),
			store:   users,
			change:  change(OpDelete, "jdoe", map[string]any{"title": "x"}),
			wantErr: ErrInvalidChange,
			errText: []string{`attribute "title" has no task mapping for Delete in object User`},
		},
		{
			name:   "unmappedAttributes: ignore turns them into notes",
			model:  plannerModel("", "    unmappedAttributes: ignore\n"),
			store:  users,
			change: change(OpDelete, "jdoe", map[string]any{"title": "x"}),
			notes:  []string{`attribute "title" is not mapped for Delete: ignored`},
			want:   []wantRequest{{"DELETE", "Users/u1", ""}},
		},
		{
			name:    "Update of an absent object fails by default",
			model:   plannerModel("", ""),
			store:   users,
			change:  change(OpUpdate, "ghost", map[string]any{"title": "x"}),
			wantErr: ErrObjectNotFound,
			errText: []string{`no Users where userName eq "ghost"`},
		},
		{
			name:   "onMissing Update: create creates it with the Create mappings",
			model:  plannerModel("", "    onMissing: {Update: create}\n"),
			store:  users,
			change: change(OpUpdate, "ghost", map[string]any{"title": "x"}),
			notes:  []string{"onMissing Update is create"},
			want:   []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ghost","title":"x"}`}},
		},
		{
			name:    "onMissing Update: skip skips",
			model:   plannerModel("", "    onMissing: {Update: skip}\n"),
			store:   users,
			change:  change(OpUpdate, "ghost", map[string]any{"title": "x"}),
			skipped: "onMissing Update: skip",
		},
		{
			name:    "AddAssignment to an absent group fails",
			model:   plannerModel("", ""),
			store:   users,
			change:  groupChange(OpAddAssignment, "jdoe"),
			wantErr: ErrObjectNotFound,
		},
		{
			name:    "an operation that needs the object id on an object without keys is a model error",
			model:   sampleUserModel,
			change:  Change{Object: "SampleUser", Operation: OpUpdate},
			wantErr: ErrModel,
			errText: []string{"object SampleUser has no isKey property"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runPlanCase(t, c)
		})
	}
}

func TestPlanUpsertAndResolveFirst(t *testing.T) {
	t.Parallel()
	cases := []planCase{
		{
			name:   "Upsert of an absent object creates it",
			model:  plannerModel("", ""),
			store:  users,
			change: change(OpUpsert, "jsmith", map[string]any{"title": "Engineer"}),
			notes:  []string{`Upsert: no Users where userName eq "jsmith": creating it`},
			want:   []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jsmith","title":"Engineer"}`}},
		},
		{
			name:   "Upsert of an existing object updates it",
			model:  plannerModel("", ""),
			store:  users,
			change: change(OpUpsert, "jdoe", map[string]any{"title": "Engineer"}),
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"replace","path":"title","value":"Engineer"}`)}},
		},
		{
			name:     "Create without ResolveFirst does not look the key up",
			model:    plannerModel("", ""),
			store:    users,
			change:   change(OpCreate, "jdoe", map[string]any{"title": "Engineer"}),
			resolves: []resolveCall{},
			want:     []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jdoe","title":"Engineer"}`}},
		},
		{
			name:     "Create with ResolveFirst of an absent object creates it",
			model:    plannerModel("", ""),
			store:    users,
			change:   Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "jsmith"}, ResolveFirst: true},
			resolves: []resolveCall{{Resource: "Users", Match: []Match{{Attr: "userName", Value: "jsmith"}}}},
			want:     []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jsmith"}`}},
		},
		{
			name:  "Create with ResolveFirst of an existing object converges it: single-valued add becomes replace, multivalue add stays add",
			model: plannerModel("", ""),
			store: users,
			change: Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "jdoe"}, ResolveFirst: true,
				Attributes: map[string]any{"title": "Engineer", "emails[].value": "jdoe@example.com"}},
			notes: []string{"object exists (id u1): Create converges it with an update"},
			want: []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"replace","path":"title","value":"Engineer"},
				{"op":"add","path":"emails","value":[{"value":"jdoe@example.com"}]}`)}},
		},
		{
			name:  "Create with ResolveFirst on a PUT object sends the Create body as a PUT",
			model: plannerModel(`{UpdateMethod: put, CreateRequest: '{"active":true}'}`, ""),
			store: users,
			change: Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "jdoe"}, ResolveFirst: true,
				Attributes: map[string]any{"title": "Engineer"}},
			want: []wantRequest{{"PUT", "Users/u1", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"active":true,"userName":"jdoe","title":"Engineer"}`}},
		},
		{
			name:  "Create with ResolveFirst on a reconciled object merges into the current one",
			model: plannerModel(`{ReconcileOnUpdate: true}`, ""),
			store: users,
			change: Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "jdoe"}, ResolveFirst: true,
				Attributes: map[string]any{"title": "CTO", "emails[].value": "jdoe@example.com"}},
			skipped: "already in the desired state",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runPlanCase(t, c)
		})
	}
}

func TestPlanReferences(t *testing.T) {
	t.Parallel()
	cyberark := exampleSource(t, "cyberark.yaml")
	groups := map[string][]string{"Users": {jdoe, boss}, "Groups": {admins}}
	cases := []planCase{
		{
			name:    "a member that doesn't exist yet is an UnresolvedReferenceError",
			model:   plannerModel("", ""),
			store:   groups,
			change:  groupChange(OpAddAssignment, "jdoe", "newbie"),
			errText: []string{`reference "members[].value": no Users where userName eq "newbie"`},
			checkErr: func(t *testing.T, err error) {
				var ure *UnresolvedReferenceError
				require.True(t, errors.As(err, &ure))
				assert.Equal(t, UnresolvedReferenceError{Property: "members[].value", Resource: "Users", Match: []Match{{Attr: "userName", Value: "newbie"}}}, *ure)
			},
		},
		{
			name:   "a manager that doesn't exist yet is an UnresolvedReferenceError on Create",
			model:  plannerModel("", ""),
			store:  groups,
			change: change(OpCreate, "jsmith", map[string]any{"manager": "nobody"}),
			checkErr: func(t *testing.T, err error) {
				var ure *UnresolvedReferenceError
				assert.True(t, errors.As(err, &ure))
			},
		},
		{
			name:    "removing members that don't exist is a no-op with notes",
			model:   plannerModel("", ""),
			store:   groups,
			change:  groupChange(OpRemoveAssignment, "ghost1", "ghost2"),
			skipped: `nothing to change: members[].value "ghost1" is already absent (no Users where userName eq "ghost1"); members[].value "ghost2" is already absent (no Users where userName eq "ghost2")`,
			notes:   []string{`no Users where userName eq "ghost1", so there is nothing to remove`, `"ghost2"`},
		},
		{
			// Issue 7 item 11: the skip reason names the member that was already absent instead
			// of "no task mapping of the event yields an operation".
			name:    "removing a member that is not there says so, naming the value",
			model:   cyberark,
			store:   groups,
			change:  groupChange(OpRemoveAssignment, "ghost@example.com"),
			skipped: `nothing to change: members[].value "ghost@example.com" is already absent (no Users where userName eq "ghost@example.com")`,
			check: func(t *testing.T, p *Plan, _ *memoryReader) {
				assert.NotContains(t, p.Skipped, "no task mapping")
			},
		},
		{
			name:  "a whole-object PUT whose only rule removes a reference that names nothing is not sent",
			model: plannerModel("{UpdateMethod: put}", ""),
			store: groups,
			change: Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "jdoe"},
				Attributes: map[string]any{"manager": "nobody"}, Actions: map[string]string{"manager": "remove"}},
			skipped: `nothing to change: manager "nobody" is already absent (no Users where userName eq "nobody")`,
		},
		{
			name:   "removing an absent member and a present one removes the present one",
			model:  cyberark,
			store:  groups,
			change: groupChange(OpRemoveAssignment, "ghost@example.com", "boss"),
			want:   []wantRequest{{"PATCH", "Groups/g1", patchBody(`{"op":"remove","path":"members[value eq \"u2\"]"}`)}},
			notes:  []string{`no Users where userName eq "ghost@example.com", so there is nothing to remove`},
			check: func(t *testing.T, p *Plan, _ *memoryReader) {
				assert.Empty(t, p.Skipped)
			},
		},
		{
			name:   "a repeated member is looked up once and added once",
			model:  plannerModel("", ""),
			store:  groups,
			change: groupChange(OpAddAssignment, "jdoe", "JDOE", "jdoe"),
			resolves: []resolveCall{
				{Resource: "Groups", Match: []Match{{Attr: "displayName", Value: "Admins"}}},
				{Resource: "Users", Match: []Match{{Attr: "userName", Value: "jdoe"}}},
				{Resource: "Users", Match: []Match{{Attr: "userName", Value: "JDOE"}}},
			},
			want: []wantRequest{{"PATCH", "Groups/g1", patchBody(`{"op":"add","path":"members","value":[{"value":"u1"}]}`)}},
		},
		{
			name:   "useNumericValues sends a reference as a number when the id is an integer",
			model:  plannerModel("", ""),
			store:  map[string][]string{"Users": {`{"id":"123","userName":"boss"}`, `{"id":"7","userName":"jdoe"}`}},
			opt:    Options{UseNumericValues: true},
			change: change(OpUpdate, "jdoe", map[string]any{"manager": "boss"}),
			want:   []wantRequest{{"PATCH", "Users/7", patchBody(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":123}`)}},
		},
		{
			name:   "useNumericValues keeps an id that isn't a canonical integer as text",
			model:  plannerModel("", ""),
			store:  map[string][]string{"Users": {`{"id":"007","userName":"boss"}`, `{"id":"7","userName":"jdoe"}`}},
			opt:    Options{UseNumericValues: true},
			change: change(OpUpdate, "jdoe", map[string]any{"manager": "boss"}),
			want:   []wantRequest{{"PATCH", "Users/7", patchBody(`{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":"007"}`)}},
		},
		{
			name:     "a Resolve error passes through wrapped",
			model:    plannerModel("", ""),
			store:    groups,
			setup:    func(r *memoryReader) { r.fail = &scimError{Status: 429, Detail: "slow down"} },
			change:   change(OpUpdate, "jdoe", map[string]any{"title": "x"}),
			errText:  []string{`resolve Users where userName eq "jdoe"`, "SCIM 429"},
			checkErr: func(t *testing.T, err error) { var se *scimError; assert.True(t, errors.As(err, &se)) },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runPlanCase(t, c)
		})
	}
}

func TestPlanTypesAndValidation(t *testing.T) {
	t.Parallel()
	create := func(attrs map[string]any) Change { return change(OpCreate, "jsmith", attrs) }
	post := func(fields string) []wantRequest {
		return []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jsmith"` + fields + `}`}}
	}
	postExt := func(fields string) []wantRequest {
		return []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"jsmith"` + fields + `}`}}
	}
	cases := []planCase{
		{name: "int is sent as text without useNumericValues", model: plannerModel("", ""), change: create(map[string]any{"employeeNumber": json.Number("42")}),
			want: postExt(`,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"42"}`)},
		{name: "int is a JSON number with useNumericValues", model: plannerModel("", ""), opt: Options{UseNumericValues: true}, change: create(map[string]any{"employeeNumber": "42"}),
			want: postExt(`,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":42}`),
			check: func(t *testing.T, p *Plan, _ *memoryReader) {
				assert.Contains(t, string(p.Requests[0].Body), `"employeeNumber":42`)
			}},
		{name: "long holds 64 bits", model: plannerModel("", ""), opt: Options{UseNumericValues: true}, change: create(map[string]any{"badge": "9007199254740993"}),
			want: post(`,"badge":9007199254740993`),
			check: func(t *testing.T, p *Plan, _ *memoryReader) {
				assert.Contains(t, string(p.Requests[0].Body), `"badge":9007199254740993`)
			}},
		{name: "int refuses text that is not a number", model: plannerModel("", ""), change: create(map[string]any{"employeeNumber": "4x"}),
			wantErr: ErrInvalidChange, errText: []string{`attribute "employeeNumber" of User: want an integer, got "4x"`}},
		{name: "int refuses a value beyond 32 bits", model: plannerModel("", ""), change: create(map[string]any{"employeeNumber": 3000000000.0}),
			wantErr: ErrInvalidChange, errText: []string{"3000000000 is out of range for a 32-bit integer"}},
		{name: "int refuses a fraction", model: plannerModel("", ""), change: create(map[string]any{"employeeNumber": 4.5}),
			wantErr: ErrInvalidChange, errText: []string{"want an integer, got 4.5"}},
		{name: "bool accepts text true", model: plannerModel("", ""), change: create(map[string]any{"active": "true"}), want: post(`,"active":true`)},
		{name: "bool refuses other text", model: plannerModel("", ""), change: create(map[string]any{"active": "maybe"}),
			wantErr: ErrInvalidChange, errText: []string{`attribute "active" of User: want a bool, got "maybe"`}},
		{name: "string accepts a number as its text", model: plannerModel("", ""), change: create(map[string]any{"title": json.Number("7")}), want: post(`,"title":"7"`)},
		{name: "string refuses an object", model: plannerModel("", ""), change: create(map[string]any{"title": map[string]any{"a": 1}}),
			wantErr: ErrInvalidChange, errText: []string{`attribute "title" of User: want a string, got an object`}},
		{name: "complex takes an object", model: plannerModel("", ""), change: create(map[string]any{"preferences": map[string]any{"theme": "dark"}}), want: post(`,"preferences":{"theme":"dark"}`)},
		{name: "complex takes JSON object text", model: plannerModel("", ""), change: create(map[string]any{"preferences": `{"theme":"dark"}`}), want: post(`,"preferences":{"theme":"dark"}`)},
		{name: "complex refuses plain text", model: plannerModel("", ""), change: create(map[string]any{"preferences": "dark"}),
			wantErr: ErrInvalidChange, errText: []string{"want a JSON object"}},
		{name: "a single-valued property refuses a list", model: plannerModel("", ""), change: create(map[string]any{"title": []any{"a", "b"}}),
			wantErr: ErrInvalidChange, errText: []string{`attribute "title" of User: is single-valued, got a list`}},
		{name: "a multi-valued property takes a single value as a list of one", model: plannerModel("", ""), change: create(map[string]any{"roles[]": "auditor"}), want: post(`,"roles":["auditor"]`)},
		{name: "custom extension attributes nest under their URN, which joins schemas", model: plannerModel("", ""),
			change: create(map[string]any{"urn:scim:schemas:extension:custom:2.0:costCenter": "CC-1"}),
			want: []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:scim:schemas:extension:custom:2.0"],
				"userName":"jsmith","urn:scim:schemas:extension:custom:2.0":{"costCenter":"CC-1"}}`}}},
		{name: "unknown object", model: plannerModel("", ""), change: Change{Object: "Usr", Operation: OpCreate, Key: map[string]any{"userName": "x"}},
			wantErr: ErrInvalidChange, errText: []string{`unknown object "Usr": did you mean "User"? (the data model has User, Group)`}},
		{name: "unknown operation", model: plannerModel("", ""), change: Change{Object: "User", Operation: "Rename", Key: map[string]any{"userName": "x"}},
			wantErr: ErrInvalidChange, errText: []string{`unknown operation "Rename"`}},
		{name: "unknown property", model: plannerModel("", ""), change: create(map[string]any{"nickName": "x"}),
			wantErr: ErrInvalidChange, errText: []string{`unknown property "nickName" of User (properties: userName,`}},
		{name: "missing key", model: plannerModel("", ""), change: Change{Object: "User", Operation: OpCreate, Key: map[string]any{}},
			wantErr: ErrInvalidChange, errText: []string{`key "userName" of User is missing`}},
		{name: "empty key", model: plannerModel("", ""), change: Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": ""}},
			wantErr: ErrInvalidChange, errText: []string{`key "userName" of User is empty`}},
		{name: "a key that is not a key property", model: plannerModel("", ""), change: Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "x", "title": "y"}},
			wantErr: ErrInvalidChange, errText: []string{`key "title" is not a key property of User (keys: userName)`}},
		{name: "an action that is not add, modify or remove", model: plannerModel("", ""),
			change:  Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "x"}, Attributes: map[string]any{"title": "y"}, Actions: map[string]string{"title": "replace"}},
			wantErr: ErrInvalidChange, errText: []string{`action of "title": want add, modify or remove, got "replace"`}},
		{name: "Create whose key and key attribute differ", model: plannerModel("", ""), change: create(map[string]any{"userName": "other"}),
			wantErr: ErrInvalidChange, errText: []string{`key "userName" is "jsmith" but attribute "userName" is "other"`}},
		{name: "an attribute that explicit mappings don't cover", model: plannerModel("", "    taskMappings:\n      Create: [{name: title}]\n"),
			change: create(map[string]any{"title": "x", "active": true}), wantErr: ErrInvalidChange,
			errText: []string{`attribute "active" has no task mapping for Create in object User (map it, or set unmappedAttributes: ignore)`}},
		{name: "a mapping without action uses the operation's default", model: plannerModel("", "    taskMappings:\n      Create: [{name: title}]\n"),
			change: create(map[string]any{"title": "x"}), want: post(`,"title":"x"`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runPlanCase(t, c)
		})
	}
}

func TestPlanSourcesNameEveryRule(t *testing.T) {
	t.Parallel()
	m, err := ParseModel("case.yaml", []byte(plannerModel("", "")))
	require.NoError(t, err)
	r := newMemoryReader()
	r.add(t, "Users", boss)
	p, err := NewPlanner(m, Options{}).Plan(t.Context(), r, change(OpCreate, "jsmith", map[string]any{
		"name.givenName": "John", "emails[].value": "j@example.org", "emails[].type": "work", "manager": "boss"}))
	require.NoError(t, err)
	require.Len(t, p.Requests, 1)
	assert.Equal(t, []Source{
		{Pointer: "/schemas", Rule: "object schemas"},
		{Pointer: "/userName", Rule: `key "userName"`},
		{Pointer: "/name/givenName", Rule: `task mapping "name.givenName" (add, Create; default mapping)`},
		{Pointer: "/emails/0/value", Rule: `task mapping "emails[].value" (add, Create; default mapping)`},
		{Pointer: "/emails/0/type", Rule: `task mapping "emails[].type" (add, Create; default mapping)`},
		{Pointer: "/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/manager/value", Rule: `task mapping "manager" (add, Create; default mapping)`},
		{Pointer: "/schemas/1", Rule: `extension schema used by task mapping "manager" (add, Create; default mapping)`},
	}, p.Requests[0].Sources)
	var b strings.Builder
	require.NoError(t, p.Render(&b))
	assert.Contains(t, b.String(), "request 1: POST Users\n")
	assert.Contains(t, b.String(), `/name/givenName`)
}

func TestPlanUnreconciledPut(t *testing.T) {
	t.Parallel()
	cases := []planCase{
		{
			name:   "a PUT without reconciliation says it replaces the whole object",
			model:  plannerModel("{UpdateMethod: put}", ""),
			store:  users,
			change: change(OpUpdate, "jdoe", map[string]any{"title": "Engineer"}),
			notes:  []string{"User PUTs without reconciliation: the body built from the event replaces the whole object"},
			want:   []wantRequest{{"PUT", "Users/u1", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jdoe","title":"Engineer"}`}},
		},
		{
			name:    "a PUT without reconciliation and without any rule sends nothing rather than wiping the object",
			model:   plannerModel("{UpdateMethod: put}", ""),
			store:   users,
			change:  change(OpUpdate, "jdoe", nil),
			skipped: "nothing to change",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runPlanCase(t, c)
		})
	}
}

// TestPlannerIsSafeForConcurrentUse shares one planner and model across goroutines (run with -race).
func TestPlannerIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	m := loadExample(t, "scim-generic.yaml")
	p := NewPlanner(m, Options{UseNumericValues: true})
	r := newMemoryReader()
	r.add(t, "Users", `{"id":"1","userName":"boss@example.com"}`)
	r.add(t, "Users", `{"id":"2","userName":"jdoe@example.com","emails":[{"value":"a@example.org"}]}`)
	r.add(t, "Groups", `{"id":"3","displayName":"Admins"}`)
	changes := []Change{
		change(OpCreate, "new@example.com", map[string]any{"emails[].value": []any{"n@example.org"}, "emails[].type": "work", enterpriseURN + ":manager.value": "boss@example.com"}),
		change(OpUpdate, "jdoe@example.com", map[string]any{"title": "x", "emails[].value": "b@example.org"}),
		groupChange(OpAddAssignment, "jdoe@example.com", "boss@example.com"),
	}
	want := make([]*Plan, len(changes))
	for i, ch := range changes {
		plan, err := p.Plan(t.Context(), r, ch)
		require.NoError(t, err)
		want[i] = plan
	}
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			for i := range 20 {
				k := (g + i) % len(changes)
				var plan *Plan
				if plan, err = p.Plan(t.Context(), r, changes[k]); err == nil && !assert.ObjectsAreEqual(want[k].Requests, plan.Requests) {
					err = errors.New("a concurrent plan differs")
				}
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		require.NoError(t, <-done)
	}
}

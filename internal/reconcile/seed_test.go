package reconcile

import (
	"testing"
)

// The Omada seed (../shared/seeds/003_7f168490c5eac93a.txt), sections "Data model" through "Task
// Mappings", sentence by sentence: each normative sentence is quoted in a case name, and each case
// asserts the exact requests the planner produces (method, path, JSON body compared semantically).

const (
	coreUserSchema  = "urn:ietf:params:scim:schemas:core:2.0:User"
	coreGroupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group"
	enterpriseURN   = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

// userModel is a User object; details and the Update task mappings vary per case.
func userModel(details, update string) string {
	s := `objects:
  - name: User
    resource: Users
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"]
    properties:
      - {name: userName, isKey: true}
      - {name: name.givenName}
      - {name: name.familyName}
      - {name: title}
      - {name: active, type: bool}
      - {name: "emails[].value"}
      - {name: "emails[].type"}
      - {name: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", referenceObject: Users, referenceLookupProperty: userName}
      - {name: "$.title"}
      - {name: "$.Operations[0].value"}
`
	if details != "" {
		s += "    details: " + details + "\n"
	}
	if update != "" {
		s += "    taskMappings:\n      Update: " + update + "\n"
	}
	return s
}

const (
	reconcilePUT = "{ReconcileOnUpdate: true, ReconcileOnDelete: true, UpdateMethod: put}"

	groupModel = `objects:
  - name: Group
    resource: Groups
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"]
    properties:
      - {name: displayName, isKey: true}
      - {name: "members[].value", type: reference, referenceObject: Users, referenceLookupProperty: userName}
    taskMappings:
      AddAssignment: [{name: "members[].value", action: add}]
      RemoveAssignment: [{name: "members[].value", action: remove}]
`

	// perObjectModel reconciles Users but not Groups.
	perObjectModel = `objects:
  - name: User
    resource: Users
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"]
    properties:
      - {name: userName, isKey: true}
      - {name: title}
    details: {ReconcileOnUpdate: true, UpdateMethod: put}
  - name: Group
    resource: Groups
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:Group"]
    properties:
      - {name: displayName, isKey: true}
      - {name: "members[].value", referenceObject: Users, referenceLookupProperty: userName}
`

	// sampleUserModel is the seed's JSONPath and request-template examples as a YAML model.
	sampleUserModel = `objects:
  - name: SampleUser
    properties:
      - name: $.added[0].loginId
      - name: $.added[0].roles
        multiValued: true
      - name: $.added[0].sampleArray
        multiValued: true
      - name: $.added[0].organization
      - name: $.added[0].nickname
      - name: $..name
    details:
      CreateRequest: |
        {
        "added":[
        {
        "organization":{
        "name":"my company",
        "type":"Company"
        },
        "roles":[
        {
        "name":"Role 1"
        },
        {
        "name":"Role 2"
        }
        ],
        "sampleArray":[],
        "loginId":"myLogin"
        }
        ]
        }
`

	// sampleUserXML is the same, in the seed's XML shapes. The seed's excerpt stops after
	// </objectDetail>; the closing tags are ours.
	sampleUserXML = `<object name="SampleUser">
<properties>
<property name="$.added[0].loginId" />
<property name="$.added[0].roles" multiValued="true" />
<property name="$.added[0].sampleArray" multiValued="true" />
<property name="$.added[0].organization" />
<property name="$.added[0].nickname" />
<property name="$..name" />
</properties>
<objectDetails>
<objectDetail name="CreateRequest">
<largeDataField>
{
"added":[
{
"organization":{
"name":"my company",
"type":"Company"
},
"roles":[
{
"name":"Role 1"
},
{
"name":"Role 2"
}
],
"sampleArray":[],
"loginId":"myLogin"
}
]
}
</largeDataField>
</objectDetail>
</objectDetails>
</object>`

	sampleUserTemplate = `{"added":[{"organization":{"name":"my company","type":"Company"},"roles":[{"name":"Role 1"},{"name":"Role 2"}],"sampleArray":[],"loginId":"myLogin"}]}`

	jdoe = `{"id":"u1","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jdoe","name":{"familyName":"Doe"},"title":"CTO","active":true,
		"emails":[{"value":"jdoe@example.com","type":"work","primary":true}]}`
	boss   = `{"id":"u2","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"boss"}`
	admins = `{"id":"g1","schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Admins","members":[{"value":"u2","display":"boss"}]}`
)

// jdoeAfter is jdoe as a reconciled PUT sends it back (meta removed) with fields replaced.
func jdoeAfter(fields string) string {
	return `{"id":"u1","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jdoe","name":{"familyName":"Doe"},"title":"CTO","active":true,
		"emails":[{"value":"jdoe@example.com","type":"work","primary":true}]` + fields + `}`
}

var users = map[string][]string{"Users": {jdoe, boss}}

func userUpdate(attrs map[string]any) Change {
	return Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "jdoe"}, Attributes: attrs}
}

func TestSeedSentences(t *testing.T) {
	t.Parallel()
	cases := []planCase{
		// ---- Data model ----
		{
			name:   `Data model: "This connector overrides the default REST connector behavior of the Resolve Reference Property method and Resolve Object ID. The base address for both requests is taken from the URI for accessing REST query configuration parameter."`,
			model:  userModel("", ""),
			store:  users,
			change: userUpdate(map[string]any{enterpriseURN + ":manager.value": "boss"}),
			// Both lookups go through Reader.Resolve, which the connector sends to the query address.
			resolves: []resolveCall{
				{Resource: "Users", Match: []Match{{Attr: "userName", Value: "jdoe"}}},
				{Resource: "Users", Match: []Match{{Attr: "userName", Value: "boss"}}},
			},
			want: []wantRequest{{"PATCH", "Users/u1", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
				{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":"u2"}]}`}},
		},
		{
			name:  `Resolve Reference Property: "The Resolve Reference Property method only calculates those properties that do not have the isKey property set to true."`,
			model: userModel("", ""),
			store: users,
			change: Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "jsmith"},
				Attributes: map[string]any{enterpriseURN + ":manager.value": "boss"}},
			// The key is sent as given; only the manager is looked up.
			resolves: []resolveCall{{Resource: "Users", Match: []Match{{Attr: "userName", Value: "boss"}}}},
			want: []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
				"userName":"jsmith","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"u2"}}}`}},
		},
		{
			name:  `Resolve Reference Property: "GET https://<scim server address>/A?filter=B eq 'C'" with A referenceObject, B ReferenceLookupProperty, C property value`,
			model: groupModel,
			store: map[string][]string{"Users": {jdoe, boss}, "Groups": {admins}},
			change: Change{Object: "Group", Operation: OpAddAssignment, Key: map[string]any{"displayName": "Admins"},
				Attributes: map[string]any{"members[].value": []any{"jdoe"}}},
			resolves: []resolveCall{
				{Resource: "Groups", Match: []Match{{Attr: "displayName", Value: "Admins"}}},
				{Resource: "Users", Match: []Match{{Attr: "userName", Value: "jdoe"}}},
			},
			want: []wantRequest{{"PATCH", "Groups/g1", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"add","path":"members","value":[{"value":"u1"}]}]}`}},
		},
		{
			name:     `Resolve Object ID: "it only works on the properties where isKey is set to true."`,
			model:    userModel("", ""),
			store:    users,
			change:   userUpdate(map[string]any{"title": "Engineer"}),
			resolves: []resolveCall{{Resource: "Users", Match: []Match{{Attr: "userName", Value: "jdoe"}}}},
			want: []wantRequest{{"PATCH", "Users/u1", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"replace","path":"title","value":"Engineer"}]}`}},
		},
		{
			name: `Resolve Object ID: "You can also have multiple properties of this kind. If you have multiple properties, the referenceKeyProperty and the referenceObject must be the same in each of them. In that case, only the AND operator is used." (GET .../A?filter=B eq 'C' and D eq 'E')`,
			model: `objects:
  - name: ContainerPermission
    resource: ContainerPermissions
    properties:
      - {name: container.name, isKey: true}
      - {name: user.display, isKey: true}
`,
			store: map[string][]string{"ContainerPermissions": {
				`{"id":"p1","container":{"name":"Safe1"},"user":{"display":"jane"}}`,
				`{"id":"p2","container":{"name":"Safe1"},"user":{"display":"jdoe"}}`,
				`{"id":"p3","container":{"name":"Safe2"},"user":{"display":"jdoe"}}`,
			}},
			change: Change{Object: "ContainerPermission", Operation: OpDelete, Key: map[string]any{"container.name": "Safe1", "user.display": "jdoe"}},
			resolves: []resolveCall{{Resource: "ContainerPermissions", Match: []Match{
				{Attr: "container.name", Value: "Safe1"}, {Attr: "user.display", Value: "jdoe"}}}},
			want: []wantRequest{{"DELETE", "ContainerPermissions/p2", ""}},
		},
		{
			name: `Resolve Object ID: "the ... referenceObject must be the same in each of them" (a model with two key objects is refused)`,
			model: `objects:
  - name: ContainerPermission
    resource: ContainerPermissions
    properties:
      - {name: container.name, isKey: true, referenceObject: Containers}
      - {name: user.display, isKey: true}
`,
			modelErr: []string{"case.yaml:6: objects[0].properties[1].referenceObject: several key properties with different referenceObject"},
		},

		// ---- JSONPath property names ----
		{
			name:   `JSONPath: "You can use the JSONPath to update existing field values in the request." ($.added[0].loginId)`,
			model:  sampleUserModel,
			change: Change{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{"$.added[0].loginId": "jdoe"}},
			want: []wantRequest{{"POST", "SampleUser", `{"added":[{"organization":{"name":"my company","type":"Company"},
				"roles":[{"name":"Role 1"},{"name":"Role 2"}],"sampleArray":[],"loginId":"jdoe"}]}`}},
		},
		{
			name:    `JSONPath: "The JSONPath properties can be utilized with appropriate fields present in the JSON file path. The JSONPath can't create new fields."`,
			model:   sampleUserModel,
			change:  Change{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{"$.added[0].nickname": "JD"}},
			wantErr: ErrModel,
			errText: []string{`JSONPath property "$.added[0].nickname" of object SampleUser matches no field`, "(template CreateRequest)", "can't create new fields"},
		},
		{
			name:   `JSONPath: "If you don't use reconciliation, add other properties to build localization of this JSON Path." (title creates the field $.title then updates)`,
			model:  userModel("", ""),
			change: Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "jsmith"}, Attributes: map[string]any{"title": "Engineer", "$.title": "Staff Engineer"}},
			want:   []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jsmith","title":"Staff Engineer"}`}},
		},
		{
			name:    `JSONPath: "If you don't use reconciliation, add other properties to build localization of this JSON Path." (without title there is nothing to update)`,
			model:   userModel("", ""),
			change:  Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "jsmith"}, Attributes: map[string]any{"$.title": "Staff Engineer"}},
			wantErr: ErrModel,
			errText: []string{`"$.title" of object User matches no field of the prepared request (no template)`},
		},
		{
			name:   `JSONPath: "The property names starting with $. are interpreted by the connector as a JSON path." ($..name reaches every name)`,
			model:  sampleUserModel,
			change: Change{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{"$..name": "X"}},
			want: []wantRequest{{"POST", "SampleUser", `{"added":[{"organization":{"name":"X","type":"Company"},
				"roles":[{"name":"X"},{"name":"X"}],"sampleArray":[],"loginId":"myLogin"}]}`}},
		},
		{
			name:  `JSONPath: "The values of those properties can be either text or JSON format. In the latter instance the connector adds an appropriate structure in the designated location." (JSON text)`,
			model: sampleUserModel,
			change: Change{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{
				"$.added[0].organization": `{"name":"ACME","type":"Company","size":7}`,
				"$.added[0].loginId":      "jdoe"}},
			want: []wantRequest{{"POST", "SampleUser", `{"added":[{"organization":{"name":"ACME","type":"Company","size":7},
				"roles":[{"name":"Role 1"},{"name":"Role 2"}],"sampleArray":[],"loginId":"jdoe"}]}`}},
		},
		{
			name:  `JSONPath: "The values of those properties can be either text or JSON format." (a JSON object in the event)`,
			model: sampleUserModel,
			change: Change{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{
				"$.added[0].organization": map[string]any{"name": "ACME"}}},
			want: []wantRequest{{"POST", "SampleUser", `{"added":[{"organization":{"name":"ACME"},
				"roles":[{"name":"Role 1"},{"name":"Role 2"}],"sampleArray":[],"loginId":"myLogin"}]}`}},
		},
		{
			name:    `JSONPath: "The values of those properties can be either text or JSON format." (text that starts like JSON but is not is refused)`,
			model:   sampleUserModel,
			change:  Change{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{"$.added[0].organization": `{"name":`}},
			wantErr: ErrInvalidChange,
			errText: []string{`JSONPath property "$.added[0].organization"`, "not valid JSON"},
		},
		{
			name:   `JSONPath: "The JSONPath properties can be combined with the existing properties and they are applied on top of the prepared request." (on top of the PATCH)`,
			model:  userModel("", ""),
			store:  users,
			change: userUpdate(map[string]any{"title": "Engineer", "$.Operations[0].value": "Principal Engineer"}),
			want: []wantRequest{{"PATCH", "Users/u1", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"replace","path":"title","value":"Principal Engineer"}]}`}},
		},
		{
			name:   `JSONPath: "This feature is useful for reconciliation or when utilizing request template object details." (reconciliation: a field of the current object)`,
			model:  userModel(reconcilePUT, ""),
			store:  users,
			change: userUpdate(map[string]any{"$.title": "Chief Technology Officer"}),
			gets:   []string{"Users/u1"},
			want:   []wantRequest{{"PUT", "Users/u1", jdoeAfter(`,"title":"Chief Technology Officer"`)}},
		},
		{
			name:  `JSONPath: the seed's properties example (<property name="$.added[0].roles" multiValued="true" />, sampleArray)`,
			model: sampleUserModel,
			change: Change{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{
				"$.added[0].loginId":     "jdoe",
				"$.added[0].roles":       []any{`{"name":"Role 3"}`, map[string]any{"name": "Role 4"}},
				"$.added[0].sampleArray": []any{"x", "y"}}},
			want: []wantRequest{{"POST", "SampleUser", `{"added":[{"organization":{"name":"my company","type":"Company"},
				"roles":[{"name":"Role 3"},{"name":"Role 4"}],"sampleArray":["x","y"],"loginId":"jdoe"}]}`}},
		},

		// ---- Request templates ----
		{
			name:   `Request templates: the seed's SampleUser CreateRequest template is the Create body`,
			model:  sampleUserModel,
			change: Change{Object: "SampleUser", Operation: OpCreate},
			want:   []wantRequest{{"POST", "SampleUser", sampleUserTemplate}},
		},
		{
			name:   `Request templates: "As shown in the example below values should be stored within the <largeDataField> element." (the seed's XML)`,
			xml:    sampleUserXML,
			change: Change{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{"$.added[0].loginId": "jdoe"}},
			want: []wantRequest{{"POST", "SampleUser", `{"added":[{"organization":{"name":"my company","type":"Company"},
				"roles":[{"name":"Role 1"},{"name":"Role 2"}],"sampleArray":[],"loginId":"jdoe"}]}`}},
		},
		{
			name: `Request templates: "You can provide JSON request template in the object details with the request template being defined per operation." (CreateRequest for Create)`,
			model: userModel(`{CreateRequest: '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"active":true,"title":"Employee"}',
      UpdateRequest: '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":true}]}'}`, ""),
			change: Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "jsmith"}, Attributes: map[string]any{"name.givenName": "John"}},
			want: []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"active":true,"title":"Employee",
				"userName":"jsmith","name":{"givenName":"John"}}`}},
		},
		{
			name: `Request templates: "... the request template being defined per operation." (UpdateRequest for Update: its operations come first)`,
			model: userModel(`{CreateRequest: '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"active":true,"title":"Employee"}',
      UpdateRequest: '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":true}]}'}`, ""),
			store:  users,
			change: userUpdate(map[string]any{"title": "Engineer"}),
			want: []wantRequest{{"PATCH", "Users/u1", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
				{"op":"replace","path":"active","value":true},{"op":"replace","path":"title","value":"Engineer"}]}`}},
		},
		{
			name: `Request templates: "{Operation}Request" (AddAssignmentRequest for AddAssignment)`,
			model: groupModel + `    details:
      AddAssignmentRequest: '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"urn:example:params:scim:schemas:extension:audit:2.0:Group:source","value":"scimflow"}]}'
`,
			store: map[string][]string{"Users": {jdoe, boss}, "Groups": {admins}},
			change: Change{Object: "Group", Operation: OpAddAssignment, Key: map[string]any{"displayName": "Admins"},
				Attributes: map[string]any{"members[].value": []any{"jdoe"}}},
			want: []wantRequest{{"PATCH", "Groups/g1", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
				{"op":"replace","path":"urn:example:params:scim:schemas:extension:audit:2.0:Group:source","value":"scimflow"},
				{"op":"add","path":"members","value":[{"value":"u1"}]}]}`}},
		},

		// ---- Schemas ----
		{
			name:   `Schemas: "For every operation, for example, Create a User, Add/Delete assignments, one of the JSON body properties must be schemas" (Create a User; a template without schemas gets the object's)`,
			model:  userModel(`{CreateRequest: '{"active":true}'}`, ""),
			change: Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "jsmith"}},
			want:   []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"active":true,"userName":"jsmith"}`}},
		},
		{
			name:  `Schemas: "... one of the JSON body properties must be schemas" (Add assignments)`,
			model: groupModel,
			store: map[string][]string{"Users": {jdoe, boss}, "Groups": {admins}},
			change: Change{Object: "Group", Operation: OpAddAssignment, Key: map[string]any{"displayName": "Admins"},
				Attributes: map[string]any{"members[].value": []any{"jdoe", "boss"}}},
			want: []wantRequest{{"PATCH", "Groups/g1", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"add","path":"members","value":[{"value":"u1"},{"value":"u2"}]}]}`}},
		},
		{
			name:  `Schemas: "... one of the JSON body properties must be schemas" (Delete assignments)`,
			model: groupModel,
			store: map[string][]string{"Users": {jdoe, boss}, "Groups": {admins}},
			change: Change{Object: "Group", Operation: OpRemoveAssignment, Key: map[string]any{"displayName": "Admins"},
				Attributes: map[string]any{"members[].value": []any{"boss"}}},
			want: []wantRequest{{"PATCH", "Groups/g1", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"remove","path":"members[value eq \"u2\"]"}]}`}},
		},

		// ---- Reconciliation ----
		{
			name: `Reconciliation: "triggered in the data model by setting objectDetails with names ReconcileOnUpdate or ReconcileOnDelete to have the value True" (<objectDetail name="ReconcileOnUpdate" value="True"/>)`,
			xml: `<object name="User" resource="Users" schemas="urn:ietf:params:scim:schemas:core:2.0:User">
<properties><property name="userName" isKey="true"/><property name="title"/></properties>
<objectDetails>
<objectDetail name="ReconcileOnUpdate" value="True"/>
<objectDetail name="ReconcileOnDelete" value="True"/>
<objectDetail name="UpdateMethod" value="PUT"/>
</objectDetails>
</object>`,
			store:  users,
			change: userUpdate(map[string]any{"title": "Engineer"}),
			gets:   []string{"Users/u1"},
			want:   []wantRequest{{"PUT", "Users/u1", `{"id":"u1","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jdoe","name":{"familyName":"Doe"},"title":"Engineer","active":true,"emails":[{"value":"jdoe@example.com","type":"work","primary":true}]}`}},
		},
		{
			name:   `Reconciliation: "This setting works on a per object basis, so it is possible to have it enabled for certain objects and disabled for others." (User: reconciled)`,
			model:  perObjectModel,
			store:  map[string][]string{"Users": {jdoe, boss}, "Groups": {admins}},
			change: userUpdate(map[string]any{"title": "Engineer"}),
			gets:   []string{"Users/u1"},
			want:   []wantRequest{{"PUT", "Users/u1", jdoeAfter(`,"title":"Engineer"`)}},
		},
		{
			name:  `Reconciliation: "This setting works on a per object basis ..." (Group of the same model: not reconciled, no read)`,
			model: perObjectModel,
			store: map[string][]string{"Users": {jdoe, boss}, "Groups": {admins}},
			change: Change{Object: "Group", Operation: OpAddAssignment, Key: map[string]any{"displayName": "Admins"},
				Attributes: map[string]any{"members[].value": []any{"jdoe"}}},
			gets: []string{},
			want: []wantRequest{{"PATCH", "Groups/g1", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"add","path":"members","value":[{"value":"u1"}]}]}`}},
		},
		{
			name: `Reconciliation: "If the operation is Update or Delete, and the relevant property is set to True, the connector merges between the current object in the external system and operations defined in Task Mapping." (Delete)`,
			model: userModel(reconcilePUT, "") + `    taskMappings:
      Delete: [{name: active, action: modify, value: false}]
`,
			store:  users,
			change: Change{Object: "User", Operation: OpDelete, Key: map[string]any{"userName": "jdoe"}},
			gets:   []string{"Users/u1"},
			notes:  []string{"soft delete"},
			want:   []wantRequest{{"PUT", "Users/u1", jdoeAfter(`,"active":false`)}},
		},
		{
			name:   `Reconciliation: "When Reconciliation is turned off, a request is created based on task mapping alone. Each task mapping rule is converted to a JSON property (or array entry). The request is then sent out to a server."`,
			model:  userModel("{UpdateMethod: put}", ""),
			store:  users,
			change: userUpdate(map[string]any{"title": "Engineer", "emails[].value": []any{"j.doe@example.org"}}),
			gets:   []string{},
			want: []wantRequest{{"PUT", "Users/u1", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jdoe",
				"title":"Engineer","emails":[{"value":"j.doe@example.org"}]}`}},
		},
		{
			name:   `Reconciliation: "When Reconciliation is turned on, the first step is taking the object/entity that is being read from an external system (SCIM server). Then, each task mapping rule is merged into this object based on the action and multivalued attributes. The result of this operation is then sent to the external system."`,
			model:  userModel(reconcilePUT, `[{name: title, action: modify}, {name: "emails[].value", action: add, multivalue: true}, {name: "emails[].type", action: add, multivalue: true}]`),
			store:  users,
			change: userUpdate(map[string]any{"title": "Engineer", "emails[].value": []any{"j.doe@example.org"}, "emails[].type": []any{"home"}}),
			gets:   []string{"Users/u1"},
			want: []wantRequest{{"PUT", "Users/u1", `{"id":"u1","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jdoe","name":{"familyName":"Doe"},
				"title":"Engineer","active":true,"emails":[{"value":"jdoe@example.com","type":"work","primary":true},{"value":"j.doe@example.org","type":"home"}]}`}},
		},

		// ---- Task Mappings ----
		{
			name: `Task Mappings: "You can apply the following action attributes to task mappings: Add, Modify, Delete."`,
			xml: `<object name="User" resource="Users" schemas="urn:ietf:params:scim:schemas:core:2.0:User">
<properties><property name="userName" isKey="true"/><property name="name.givenName"/><property name="title"/><property name="emails[].value"/></properties>
<objectDetails><objectDetail name="ReconcileOnUpdate" value="True"/><objectDetail name="UpdateMethod" value="put"/></objectDetails>
<taskMappings><taskMapping operation="Update">
<fieldMapping name="name.givenName" action="Add"/>
<fieldMapping name="title" action="Modify"/>
<fieldMapping name="emails[].value" action="Delete"/>
</taskMapping></taskMappings>
</object>`,
			store:  users,
			change: userUpdate(map[string]any{"name.givenName": "John", "title": "Engineer", "emails[].value": "jdoe@example.com"}),
			want: []wantRequest{{"PUT", "Users/u1", `{"id":"u1","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jdoe",
				"name":{"familyName":"Doe","givenName":"John"},"title":"Engineer","active":true,"emails":[]}`}},
		},
		{
			name:   `Task Mappings: "The Multivalue attribute can be set to true or false." (false: each rule makes its own array entry)`,
			model:  userModel(reconcilePUT, `[{name: "emails[].value", action: add}, {name: "emails[].type", action: add}]`),
			store:  users,
			change: userUpdate(map[string]any{"emails[].value": "j.doe@example.org", "emails[].type": "home"}),
			want:   []wantRequest{{"PUT", "Users/u1", jdoeAfter(`,"emails":[{"value":"jdoe@example.com","type":"work","primary":true},{"value":"j.doe@example.org"},{"type":"home"}]`)}},
		},
		{
			name:   `Task Mappings: "In the entity taken from an external system, the task mapping name attribute points to a JSON property. The dot character (“.”) indicates a child of a parent property."`,
			model:  userModel("", ""),
			change: Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "jsmith"}, Attributes: map[string]any{"name.givenName": "John", "name.familyName": "Smith"}},
			want:   []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jsmith","name":{"givenName":"John","familyName":"Smith"}}`}},
		},
		{
			name: `Task Mappings: "In the following example, the name attribute performs an operation on the members array item and in the value property. <fieldMapping name="members[].value""`,
			xml: `<object name="Group" resource="Groups" schemas="urn:ietf:params:scim:schemas:core:2.0:Group">
<properties>
<property name="displayName" isKey="true"/>
<property name="members[].value" type="referenceType" referenceObject="Users" referenceLookupProperty="userName" multiValued="true"/>
</properties>
<objectDetails><objectDetail name="ReconcileOnUpdate" value="True"/><objectDetail name="UpdateMethod" value="put"/></objectDetails>
<fieldMapping name="members[].value"/>
</object>`,
			store: map[string][]string{"Users": {jdoe, boss}, "Groups": {admins}},
			change: Change{Object: "Group", Operation: OpAddAssignment, Key: map[string]any{"displayName": "Admins"},
				Attributes: map[string]any{"members[].value": []any{"jdoe"}}},
			want: []wantRequest{{"PUT", "Groups/g1", `{"id":"g1","schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Admins",
				"members":[{"value":"u2","display":"boss"},{"value":"u1"}]}`}},
		},

		// ---- Task Mappings: Addition ----
		{
			name:   `Addition: "In this action attribute, the SCIM 2.0 Connector searches for a property on an existing structure. If the parent property is an array, it adds elements to it."`,
			model:  userModel(reconcilePUT, `[{name: "emails[].value", action: add}]`),
			store:  users,
			change: userUpdate(map[string]any{"emails[].value": []any{"j.doe@example.org"}}),
			want:   []wantRequest{{"PUT", "Users/u1", jdoeAfter(`,"emails":[{"value":"jdoe@example.com","type":"work","primary":true},{"value":"j.doe@example.org"}]`)}},
		},
		{
			name:   `Addition: "If the parent property is an object, it adds the property to this object."`,
			model:  userModel(reconcilePUT, `[{name: name.givenName, action: add}]`),
			store:  users,
			change: userUpdate(map[string]any{"name.givenName": "John"}),
			want:   []wantRequest{{"PUT", "Users/u1", jdoeAfter(`,"name":{"familyName":"Doe","givenName":"John"}`)}},
		},
		{
			name:    `Addition: "The property is only added when there is no property of that name"`,
			model:   userModel(reconcilePUT, `[{name: title, action: add}]`),
			store:   users,
			change:  userUpdate(map[string]any{"title": "Intern"}),
			skipped: "already in the desired state",
		},
		{
			name:    `Addition: "... and it does not add duplicates."`,
			model:   userModel(reconcilePUT, `[{name: "emails[].value", action: add}]`),
			store:   users,
			change:  userUpdate(map[string]any{"emails[].value": []any{"jdoe@example.com"}}),
			skipped: "already in the desired state",
		},
		{
			name:   `Addition: "If the Multivalue attribute is set to true, the SCIM 2.0 Connector does not [sic: does] gather all the properties, which also has the Multivalue attribute set to true and has the same parent path."`,
			model:  userModel(reconcilePUT, `[{name: "emails[].value", action: add, multivalue: true}, {name: title, action: modify}, {name: "emails[].type", action: add, multivalue: true}]`),
			store:  users,
			change: userUpdate(map[string]any{"emails[].value": "j.doe@example.org", "emails[].type": "home", "title": "CTO"}),
			want:   []wantRequest{{"PUT", "Users/u1", jdoeAfter(`,"emails":[{"value":"jdoe@example.com","type":"work","primary":true},{"value":"j.doe@example.org","type":"home"}]`)}},
		},
		{
			name:     `Addition: "The addition of properties to the Multivalue attribute works only on array."`,
			model:    userModel(reconcilePUT, `[{name: title, action: add, multivalue: true}]`),
			modelErr: []string{"objects[0].taskMappings.Update[0].multivalue", "works only on array"},
		},
		{
			name:   `Addition: "When you add properties, they create an entry based on all the multivalue fields that have the same parent path."`,
			model:  userModel(reconcilePUT, `[{name: "emails[].value", action: add, multivalue: true}, {name: "emails[].type", action: add, multivalue: true}]`),
			store:  users,
			change: userUpdate(map[string]any{"emails[].value": []any{"a@example.org", "b@example.org"}, "emails[].type": []any{"home", "other"}}),
			want: []wantRequest{{"PUT", "Users/u1", jdoeAfter(`,"emails":[{"value":"jdoe@example.com","type":"work","primary":true},
				{"value":"a@example.org","type":"home"},{"value":"b@example.org","type":"other"}]`)}},
		},
		{
			name:    `Addition: "If there is a duplicate entry, a new one is not added."`,
			model:   userModel(reconcilePUT, `[{name: "emails[].value", action: add, multivalue: true}, {name: "emails[].type", action: add, multivalue: true}]`),
			store:   users,
			change:  userUpdate(map[string]any{"emails[].value": "jdoe@example.com", "emails[].type": "work"}),
			skipped: "already in the desired state",
		},
		{
			name:   `Addition: "If there is a duplicate entry, a new one is not added." (an entry that differs in one field is not a duplicate)`,
			model:  userModel(reconcilePUT, `[{name: "emails[].value", action: add, multivalue: true}, {name: "emails[].type", action: add, multivalue: true}]`),
			store:  users,
			change: userUpdate(map[string]any{"emails[].value": "jdoe@example.com", "emails[].type": "home"}),
			want:   []wantRequest{{"PUT", "Users/u1", jdoeAfter(`,"emails":[{"value":"jdoe@example.com","type":"work","primary":true},{"value":"jdoe@example.com","type":"home"}]`)}},
		},

		// ---- Task Mappings: Modification ----
		{
			name:   `Modification: "In this action attribute, the SCIM 2.0 Connector searches for a property on the existing structure and modifies it accordingly."`,
			model:  userModel(reconcilePUT, `[{name: title, action: modify}]`),
			store:  users,
			change: userUpdate(map[string]any{"title": "Engineer"}),
			want:   []wantRequest{{"PUT", "Users/u1", jdoeAfter(`,"title":"Engineer"`)}},
		},
		{
			name:     `Modification: "Modification works only on objects, not on the array." (a mapping is refused)`,
			model:    userModel(reconcilePUT, `[{name: "emails[].value", action: modify}]`),
			modelErr: []string{"objects[0].taskMappings.Update[0].action", "modification works only on objects, not on the array"},
		},
		{
			name:  `Modification: "Modification works only on objects, not on the array." (an event's action override is refused)`,
			model: userModel(reconcilePUT, ""),
			store: users,
			change: Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "jdoe"},
				Attributes: map[string]any{"emails[].value": "x@example.org"}, Actions: map[string]string{"emails[].value": "modify"}},
			wantErr: ErrInvalidChange,
			errText: []string{"modification works only on objects, not on the array"},
		},

		// ---- Task Mappings: Deletion ----
		{
			name:   `Deletion: "In this action attribute, the SCIM 2.0 Connector searches for a property on the existing structure. If the parent property is array, it searches for an array element with the property that matches the value. If the SCIM 2.0 Connector finds the array element, it removes the entire entry."`,
			model:  userModel(reconcilePUT, `[{name: "emails[].value", action: remove}]`),
			store:  map[string][]string{"Users": {`{"id":"u1","userName":"jdoe","emails":[{"value":"a@example.org","type":"work"},{"value":"b@example.org","type":"home","primary":true}]}`}},
			change: userUpdate(map[string]any{"emails[].value": "b@example.org"}),
			want:   []wantRequest{{"PUT", "Users/u1", `{"id":"u1","userName":"jdoe","emails":[{"value":"a@example.org","type":"work"}]}`}},
			notes:  []string{`removed /emails/1 {"primary":true,"type":"home","value":"b@example.org"}`},
		},
		{
			name:   `Deletion: "If the parent property is an object, it removes the property if it exists in the object."`,
			model:  userModel(reconcilePUT, `[{name: title, action: remove}]`),
			store:  users,
			change: userUpdate(map[string]any{"title": "CTO"}),
			want: []wantRequest{{"PUT", "Users/u1", `{"id":"u1","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jdoe","name":{"familyName":"Doe"},"active":true,
				"emails":[{"value":"jdoe@example.com","type":"work","primary":true}]}`}},
		},
		{
			name:    `Deletion: "... it removes the property if it exists in the object." (absent: nothing to send)`,
			model:   userModel(reconcilePUT, `[{name: name.givenName, action: remove}]`),
			store:   users,
			change:  userUpdate(map[string]any{"name.givenName": "John"}),
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

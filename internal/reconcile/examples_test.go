package reconcile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func examplePath(name string) string {
	return filepath.Join("..", "..", "deploy", "examples", "models", name)
}

func loadExample(t *testing.T, name string) *Model {
	t.Helper()
	m, err := LoadModel(examplePath(name))
	require.NoError(t, err)
	return m
}

func exampleSource(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(examplePath(name))
	require.NoError(t, err)
	return string(raw)
}

// TestExampleModels plans typical events with the shipped models.
func TestExampleModels(t *testing.T) {
	t.Parallel()
	generic, cyberark := exampleSource(t, "scim-generic.yaml"), exampleSource(t, "cyberark.yaml")
	people := map[string][]string{
		"Users": {
			`{"id":"u1","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jdoe@example.com","name":{"givenName":"J"},"emails":[{"value":"jdoe@example.com","type":"work"}]}`,
			`{"id":"u2","userName":"boss@example.com"}`,
		},
		"Groups":     {`{"id":"g1","displayName":"Admins","members":[{"value":"u2"}]}`},
		"Containers": {`{"id":"Payroll","name":"Payroll","displayName":"Payroll","type":"safe","schemas":["urn:ietf:params:scim:schemas:pam:1.0:Container","urn:ietf:params:scim:schemas:cyberark:1.0:Safe"],"urn:scim:schemas:extension:custom:2.0":{"NumberOfDaysRetention":7}}`},
		"ContainerPermissions": {`{"id":"Payroll:jdoe@example.com","container":{"name":"Payroll","value":"Payroll"},"user":{"value":"u1","display":"jdoe@example.com"},
			"schemas":["urn:ietf:params:scim:schemas:pam:1.0:ContainerPermission","urn:ietf:params:scim:schemas:cyberark:1.0:ContainerPermission"],
			"urn:ietf:params:scim:schemas:cyberark:1.0:ContainerPermission":{"rights":["ListContent"]}}`},
	}
	cases := []planCase{
		{
			name:  "generic: a new hire with grouped emails, the enterprise extension and a manager",
			model: generic,
			store: people,
			change: change(OpCreate, "new@example.com", map[string]any{
				"name.givenName": "New", "name.familyName": "Hire", "active": true,
				"emails[].value": []any{"new@example.com", "new@home.example"}, "emails[].type": []any{"work", "home"},
				enterpriseURN + ":department": "R&D", enterpriseURN + ":manager.value": "boss@example.com"}),
			want: []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
				"userName":"new@example.com","name":{"givenName":"New","familyName":"Hire"},"active":true,
				"emails":[{"value":"new@example.com","type":"work"},{"value":"new@home.example","type":"home"}],
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","manager":{"value":"u2"}}}`}},
		},
		{
			name:   "generic: an update patches what the event names",
			model:  generic,
			store:  people,
			change: change(OpUpdate, "jdoe@example.com", map[string]any{"name.givenName": "John", "active": false}),
			want: []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"replace","path":"name.givenName","value":"John"},
				{"op":"replace","path":"active","value":false}`)}},
		},
		{
			name:   "generic: leaving a group",
			model:  generic,
			store:  people,
			change: groupChange(OpRemoveAssignment, "boss@example.com"),
			want:   []wantRequest{{"PATCH", "Groups/g1", patchBody(`{"op":"remove","path":"members[value eq \"u2\"]"}`)}},
		},
		{
			name:   "cyberark: custom attributes live in urn:scim:schemas:extension:custom:2.0",
			model:  cyberark,
			store:  people,
			change: change(OpUpdate, "jdoe@example.com", map[string]any{"urn:scim:schemas:extension:custom:2.0:costCenter": "CC-7"}),
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"replace","path":"urn:scim:schemas:extension:custom:2.0:costCenter","value":"CC-7"}`)}},
		},
		{
			name:  "cyberark: a new safe from the CreateRequest template",
			model: cyberark,
			store: people,
			change: Change{Object: "Container", Operation: OpCreate, Key: map[string]any{"name": "Finance"},
				Attributes: map[string]any{"description": "Finance accounts", "owner.value": "boss@example.com", "urn:scim:schemas:extension:custom:2.0:NumberOfDaysRetention": 30}},
			want: []wantRequest{{"POST", "Containers", `{"schemas":["urn:ietf:params:scim:schemas:pam:1.0:Container","urn:ietf:params:scim:schemas:cyberark:1.0:Safe","urn:scim:schemas:extension:custom:2.0"],
				"type":"safe","name":"Finance","description":"Finance accounts","owner":{"value":"u2"},"urn:scim:schemas:extension:custom:2.0":{"NumberOfDaysRetention":"30"}}`}},
		},
		{
			name:  "cyberark: a safe update reads the safe and PUTs it back (no PATCH on Containers)",
			model: cyberark,
			store: people,
			opt:   Options{UseNumericValues: true},
			change: Change{Object: "Container", Operation: OpUpdate, Key: map[string]any{"name": "Payroll"},
				Attributes: map[string]any{"urn:scim:schemas:extension:custom:2.0:NumberOfDaysRetention": "14"}},
			gets: []string{"Containers/Payroll"},
			// The stored safe holds custom data without naming the schema: the write names it.
			want: []wantRequest{{"PUT", "Containers/Payroll", `{"id":"Payroll","name":"Payroll","displayName":"Payroll","type":"safe",
				"schemas":["urn:ietf:params:scim:schemas:pam:1.0:Container","urn:ietf:params:scim:schemas:cyberark:1.0:Safe","urn:scim:schemas:extension:custom:2.0"],
				"urn:scim:schemas:extension:custom:2.0":{"NumberOfDaysRetention":14}}`}},
		},
		{
			name:  "cyberark: a safe member is found by safe and user and gains a right",
			model: cyberark,
			store: people,
			change: Change{Object: "ContainerPermission", Operation: OpUpdate, Key: map[string]any{"container.name": "Payroll", "user.display": "jdoe@example.com"},
				Attributes: map[string]any{"urn:ietf:params:scim:schemas:cyberark:1.0:ContainerPermission:rights[]": []any{"ListContent", "UseAccounts"}}},
			resolves: []resolveCall{{Resource: "ContainerPermissions", Match: []Match{{Attr: "container.name", Value: "Payroll"}, {Attr: "user.display", Value: "jdoe@example.com"}}}},
			want: []wantRequest{{"PUT", "ContainerPermissions/Payroll:jdoe@example.com", `{"id":"Payroll:jdoe@example.com","container":{"name":"Payroll","value":"Payroll"},
				"user":{"value":"u1","display":"jdoe@example.com"},
				"schemas":["urn:ietf:params:scim:schemas:pam:1.0:ContainerPermission","urn:ietf:params:scim:schemas:cyberark:1.0:ContainerPermission"],
				"urn:ietf:params:scim:schemas:cyberark:1.0:ContainerPermission":{"rights":["ListContent","UseAccounts"]}}`}},
		},
		{
			name:  "cyberark: a new safe member",
			model: cyberark,
			store: people,
			change: Change{Object: "ContainerPermission", Operation: OpCreate, Key: map[string]any{"container.name": "Payroll", "user.display": "boss@example.com"},
				Attributes: map[string]any{"container.value": "Payroll", "user.value": "boss@example.com",
					"urn:ietf:params:scim:schemas:cyberark:1.0:ContainerPermission:rights[]": []any{"ListContent"}}},
			want: []wantRequest{{"POST", "ContainerPermissions", `{"schemas":["urn:ietf:params:scim:schemas:pam:1.0:ContainerPermission","urn:ietf:params:scim:schemas:cyberark:1.0:ContainerPermission"],
				"container":{"name":"Payroll","value":"Payroll"},"user":{"display":"boss@example.com","value":"u2"},
				"urn:ietf:params:scim:schemas:cyberark:1.0:ContainerPermission":{"rights":["ListContent"]}}`}},
		},
		{
			name:  "cyberark: a privileged account",
			model: cyberark,
			store: people,
			change: Change{Object: "PrivilegedData", Operation: OpCreate, Key: map[string]any{"name": "db-admin"},
				Attributes: map[string]any{"type": "password", "urn:ietf:params:scim:schemas:cyberark:1.0:PrivilegedData:safe": "Payroll",
					"urn:ietf:params:scim:schemas:cyberark:1.0:PrivilegedData:properties.address": "db.example.com"}},
			want: []wantRequest{{"POST", "PrivilegedData", `{"schemas":["urn:ietf:params:scim:schemas:pam:1.0:PrivilegedData","urn:ietf:params:scim:schemas:cyberark:1.0:PrivilegedData"],
				"name":"db-admin","type":"password",
				"urn:ietf:params:scim:schemas:cyberark:1.0:PrivilegedData":{"safe":"Payroll","properties":{"address":"db.example.com"}}}`}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runPlanCase(t, c)
		})
	}
}

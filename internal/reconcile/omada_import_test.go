package reconcile

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	// membersXML uses the seed's <fieldMapping name="members[].value" (no operation, no action) and
	// <objectDetail name="ReconcileOnUpdate" value="True"/>.
	membersXML = `<?xml version="1.0" encoding="utf-8"?>
<dataModel>
  <object name="Group" resource="Groups" schemas="urn:ietf:params:scim:schemas:core:2.0:Group">
    <properties>
      <property name="displayName" isKey="true"/>
      <property name="members[].value" type="referenceType" multiValued="true" referenceObject="Users" referenceLookupProperty="userName"/>
    </properties>
    <objectDetails>
      <objectDetail name="ReconcileOnUpdate" value="True"/>
      <objectDetail name="ReconcileOnDelete" value="True"/>
    </objectDetails>
    <fieldMapping name="members[].value"/>
  </object>
</dataModel>`
	membersYAML = `objects:
  - name: Group
    resource: Groups
    schemas: [urn:ietf:params:scim:schemas:core:2.0:Group]
    properties:
      - {name: displayName, isKey: true}
      - {name: "members[].value", type: reference, multiValued: true, referenceObject: Users, referenceLookupProperty: userName}
    details: {ReconcileOnUpdate: true, ReconcileOnDelete: true}
    taskMappings:
      Create: [{name: "members[].value"}]
      Update: [{name: "members[].value"}]
      AddAssignment: [{name: "members[].value"}]
      RemoveAssignment: [{name: "members[].value"}]
`
	actionsXML = `<objects>
<object name="User" resource="Users" schemas="urn:ietf:params:scim:schemas:core:2.0:User urn:ietf:params:scim:schemas:extension:enterprise:2.0:User">
<properties>
<property name="userName" isKey="true"/>
<property name="title"/>
<property name="badge" type="longType"/>
<property name="emails[].value"/>
<property name="emails[].type"/>
</properties>
<objectDetails><objectDetail name="UpdateMethod" value="PUT"/><objectDetail name="ReconcileOnUpdate" value="true"/></objectDetails>
<taskMappings>
<taskMapping operation="Create"><fieldMapping name="title" action="Add"/><fieldMapping name="badge" action="add"/></taskMapping>
<taskMapping operation="Update">
<fieldMapping name="title" action="Modify"/>
<fieldMapping name="emails[].value" action="Add" multivalue="True"/>
<fieldMapping name="emails[].type" action="Add" multivalue="True"/>
</taskMapping>
<taskMapping operation="Delete"><fieldMapping name="title" action="Delete" value="left"/></taskMapping>
</taskMappings>
</object>
</objects>`
	actionsYAML = `objects:
  - name: User
    resource: Users
    schemas: [urn:ietf:params:scim:schemas:core:2.0:User, urn:ietf:params:scim:schemas:extension:enterprise:2.0:User]
    properties:
      - {name: userName, isKey: true}
      - {name: title}
      - {name: badge, type: long}
      - {name: "emails[].value"}
      - {name: "emails[].type"}
    details: {UpdateMethod: put, ReconcileOnUpdate: true}
    taskMappings:
      Create: [{name: title, action: add}, {name: badge, action: add}]
      Update:
        - {name: title, action: modify}
        - {name: "emails[].value", action: add, multivalue: true}
        - {name: "emails[].type", action: add, multivalue: true}
      Delete: [{name: title, action: remove, value: left}]
`
)

func TestImportOmadaPlansLikeTheEquivalentYAML(t *testing.T) {
	t.Parallel()
	store := map[string][]string{"Users": {jdoe, boss}, "Groups": {admins}}
	pairs := []struct {
		name      string
		xml, yaml string
		changes   []Change
	}{
		{
			name: "the seed's SampleUser properties and CreateRequest template",
			xml:  sampleUserXML, yaml: sampleUserModel,
			changes: []Change{
				{Object: "SampleUser", Operation: OpCreate},
				{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{"$.added[0].loginId": "jdoe"}},
				{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{"$.added[0].roles": []any{`{"name":"Role 3"}`}, "$.added[0].sampleArray": []any{"a"}}},
				{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{"$.added[0].nickname": "JD"}},
			},
		},
		{
			name: "the seed's members[].value field mapping with ReconcileOnUpdate",
			xml:  membersXML, yaml: membersYAML,
			changes: []Change{
				groupChange(OpAddAssignment, "jdoe"),
				groupChange(OpRemoveAssignment, "boss"),
				groupChange(OpAddAssignment, "boss"),
				{Object: "Group", Operation: OpCreate, Key: map[string]any{"displayName": "Ops"}, Attributes: map[string]any{"members[].value": []any{"jdoe", "boss"}}},
			},
		},
		{
			name: "the actions Add, Modify, Delete in task mappings per operation",
			xml:  actionsXML, yaml: actionsYAML,
			changes: []Change{
				change(OpCreate, "jsmith", map[string]any{"title": "Engineer", "badge": 12}),
				change(OpUpdate, "jdoe", map[string]any{"title": "Engineer", "emails[].value": []any{"a@example.org"}, "emails[].type": []any{"home"}}),
				change(OpDelete, "jdoe", nil),
			},
		},
	}
	for _, pair := range pairs {
		t.Run(pair.name, func(t *testing.T) {
			t.Parallel()
			fromXML, err := ImportOmada(strings.NewReader(pair.xml), "seed.xml")
			require.NoError(t, err)
			fromYAML, err := ParseModel("seed.yaml", []byte(pair.yaml))
			require.NoError(t, err)
			var written bytes.Buffer
			require.NoError(t, fromXML.WriteYAML(&written))
			roundTrip, err := ParseModel("written.yaml", written.Bytes())
			require.NoError(t, err, "written YAML:\n%s", written.String())
			for _, ch := range pair.changes {
				want, wantErr := planOn(t, fromYAML, store, ch)
				for name, m := range map[string]*Model{"imported": fromXML, "imported and written": roundTrip} {
					got, gotErr := planOn(t, m, store, ch)
					if wantErr != nil {
						require.Error(t, gotErr, name)
						assert.Equal(t, wantErr.Error(), gotErr.Error(), name)
						continue
					}
					require.NoError(t, gotErr, name)
					assert.Equal(t, want, got, "%s: %+v", name, ch)
				}
			}
		})
	}
}

func planOn(t *testing.T, m *Model, store map[string][]string, ch Change) (*Plan, error) {
	t.Helper()
	r := newMemoryReader()
	for _, res := range sortedKeys(store) {
		for _, obj := range store[res] {
			r.add(t, res, obj)
		}
	}
	return NewPlanner(m, Options{}).Plan(context.Background(), r, ch)
}

func TestImportOmadaWritesTidyYAML(t *testing.T) {
	t.Parallel()
	m, err := ImportOmada(strings.NewReader(sampleUserXML), "seed.xml")
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, m.WriteYAML(&b))
	out := b.String()
	assert.Contains(t, out, "# scimflow data model (schemas/datamodel.schema.json), written from seed.xml\n")
	assert.Contains(t, out, "- name: SampleUser\n")
	assert.Contains(t, out, "- name: $.added[0].roles\n        multiValued: true\n")
	assert.Contains(t, out, "CreateRequest: |-\n        {\n          \"added\": [\n", "the template is a readable literal block")
}

func TestImportOmadaTypesAndBooleans(t *testing.T) {
	t.Parallel()
	m, err := ImportOmada(strings.NewReader(`<object name="Account">
<properties>
<property name="login" isKey="TRUE"/>
<property name="uid" type="intType"/>
<property name="big" type="LongType"/>
<property name="enabled" type="boolean"/>
<property name="owner" type="referenceType" referenceObject="Users" referenceKeyProperty="userName"/>
<property name="extra" type="complex"/>
</properties>
</object>`), "types.xml")
	require.NoError(t, err)
	o, _ := m.Object("Account")
	want := map[string]PropertyType{"login": TypeString, "uid": TypeInt, "big": TypeLong, "enabled": TypeBool, "owner": TypeReference, "extra": TypeComplex}
	for name, typ := range want {
		p, ok := o.Property(name)
		require.True(t, ok, name)
		assert.Equal(t, typ, p.Type(), name)
	}
	owner, _ := o.Property("owner")
	assert.Equal(t, "userName", owner.ReferenceLookupProperty(), "referenceKeyProperty is the seed's other name for the lookup property")
	assert.True(t, o.Keys()[0].IsKey())
}

func TestImportOmadaErrorsNameTheLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, xml, want string
	}{
		{
			name: "the seed's excerpt as printed stops before </objectDetails></object>",
			xml:  strings.TrimSuffix(sampleUserXML, "\n</objectDetails>\n</object>"),
			want: "case.xml:34: not well-formed XML: unexpected EOF",
		},
		{
			name: "an element the importer doesn't know",
			xml:  "<object name=\"User\">\n<properties><property name=\"userName\" isKey=\"true\"/></properties>\n<events/>\n</object>",
			want: `case.xml:3: <events>: unexpected element <events> in <object>`,
		},
		{
			name: "an attribute the importer doesn't know",
			xml:  "<object name=\"User\">\n<properties>\n<property name=\"userName\" isKey=\"true\" caseExact=\"false\"/>\n</properties>\n</object>",
			want: `case.xml:3: <property name="userName">: unknown attribute "caseExact"`,
		},
		{
			name: "a boolean that isn't one",
			xml:  "<object name=\"User\">\n<properties>\n<property name=\"userName\" isKey=\"ja\"/>\n</properties>\n</object>",
			want: `case.xml:3: <property name="userName">: isKey: want True or False, got "ja"`,
		},
		{
			name: "a field mapping with an action but no operation",
			xml:  "<object name=\"User\">\n<properties><property name=\"userName\" isKey=\"true\"/></properties>\n<fieldMapping name=\"userName\" action=\"modify\"/>\n</object>",
			want: `case.xml:3: <fieldMapping name="userName">: a <fieldMapping> with an action needs an operation`,
		},
		{
			name: "a task mapping without an operation",
			xml:  "<object name=\"User\">\n<properties><property name=\"userName\" isKey=\"true\"/></properties>\n<taskMappings>\n<taskMapping>\n</taskMapping>\n</taskMappings>\n</object>",
			want: `case.xml:4: <taskMapping>: <taskMapping> needs operation`,
		},
		{
			name: "an object detail scimflow doesn't understand",
			xml:  "<object name=\"User\">\n<properties><property name=\"userName\" isKey=\"true\"/></properties>\n<objectDetails>\n<objectDetail name=\"UpsertRequest\" value=\"{}\"/>\n</objectDetails>\n</object>",
			want: `case.xml:4: <objectDetail name="UpsertRequest">: unknown object detail "UpsertRequest"`,
		},
		{
			name: "an unknown type",
			xml:  "<object name=\"User\">\n<properties>\n<property name=\"userName\" type=\"dateType\"/>\n</properties>\n</object>",
			want: `case.xml:3: <property name="userName">: unknown type "dateType"`,
		},
		{
			name: "a model error is reported at the XML line of its element",
			xml:  "<object name=\"User\">\n<properties><property name=\"userName\" isKey=\"true\"/></properties>\n<taskMappings><taskMapping operation=\"Update\">\n<fieldMapping name=\"titel\"/>\n</taskMapping></taskMappings>\n</object>",
			want: `case.xml:4: objects[0].taskMappings.Update[0].name: unknown property "titel"`,
		},
		{
			name: "a schema error is reported at the XML line of its element",
			xml:  "<objects>\n<object name=\"9User\">\n<properties><property name=\"userName\" isKey=\"true\"/></properties>\n</object>\n</objects>",
			want: `case.xml:2: objects[0].name: "9User" does not match`,
		},
		{
			name: "a template that is not JSON",
			xml:  "<object name=\"User\">\n<properties><property name=\"userName\" isKey=\"true\"/></properties>\n<objectDetails>\n<objectDetail name=\"CreateRequest\"><largeDataField>{\"a\": </largeDataField></objectDetail>\n</objectDetails>\n</object>",
			want: `case.xml:4: objects[0].details.CreateRequest: template CreateRequest: not valid JSON`,
		},
		{
			name: "loose properties with several objects",
			xml:  "<dataModel>\n<properties><property name=\"x\"/></properties>\n<object name=\"A\"><properties><property name=\"k\" isKey=\"true\"/></properties></object>\n<object name=\"B\"><properties><property name=\"k\" isKey=\"true\"/></properties></object>\n</dataModel>",
			want: `case.xml:2: <properties>: <properties> outside an <object> belong to the document's only object, but there are 2 objects`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := ImportOmada(strings.NewReader(c.xml), "case.xml")
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), c.want), "want prefix %s\ngot         %s", c.want, err)
		})
	}
}

func TestImportOmadaLooseProperties(t *testing.T) {
	t.Parallel()
	// The seed shows <properties> and <object> as separate excerpts: side by side, the properties
	// belong to the object.
	m, err := ImportOmada(strings.NewReader(`<dataModel>
<properties>
<property name="$.added[0].loginId" />
<property name="$.added[0].roles" multiValued="true" />
<property name="$.added[0].sampleArray" multiValued="true" />
</properties>
<object name="SampleUser">
<objectDetails>
<objectDetail name="CreateRequest">
<largeDataField>{"added":[{"loginId":"myLogin","roles":[],"sampleArray":[]}]}</largeDataField>
</objectDetail>
</objectDetails>
</object>
</dataModel>`), "seed.xml")
	require.NoError(t, err)
	p, err := planOn(t, m, nil, Change{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{"$.added[0].loginId": "jdoe", "$.added[0].roles": []any{"r1", "r2"}}})
	require.NoError(t, err)
	require.Len(t, p.Requests, 1)
	assert.JSONEq(t, `{"added":[{"loginId":"jdoe","roles":["r1","r2"],"sampleArray":[]}]}`, string(p.Requests[0].Body))
}

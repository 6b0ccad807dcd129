package reconcile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseModelErrorsNameFileLineAndField(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		yaml string
		want []string // each a full line of the error
	}{
		{
			name: "a type outside the enum",
			yaml: `objects:
  - name: User
    properties:
      - name: userName
        isKey: true
      - name: title
        type: strng
`,
			want: []string{`models/x.yaml:7: objects[0].properties[1].type: must be one of string,int,long,bool,reference,complex (got "strng")`},
		},
		{
			name: "an unknown field points at its key",
			yaml: `objects:
  - name: User
    properties:
      - name: userName
        isKy: true
`,
			want: []string{`models/x.yaml:5: objects[0].properties[0].isKy: unknown field`},
		},
		{
			name: "a missing required field",
			yaml: `objects:
  - properties:
      - name: userName
`,
			want: []string{`models/x.yaml:2: objects[0].name: required field is missing`},
		},
		{
			name: "a wrong type",
			yaml: `objects:
  - name: User
    properties:
      - name: userName
        isKey: "yes"
`,
			want: []string{`models/x.yaml:5: objects[0].properties[0].isKey: must be boolean, not string`},
		},
		{
			name: "several errors, in line order",
			yaml: `objects:
  - name: 1User
    properties:
      - name: userName
        type: text
`,
			want: []string{
				`models/x.yaml:2: objects[0].name: "1User" does not match ^[A-Za-z][A-Za-z0-9_]*$`,
				`models/x.yaml:5: objects[0].properties[0].type: must be one of string,int,long,bool,reference,complex (got "text")`,
			},
		},
		{
			name: "a task mapping naming an unknown property",
			yaml: `objects:
  - name: User
    properties:
      - {name: userName, isKey: true}
      - {name: title}
    taskMappings:
      Update:
        - {name: title}
        - {name: titel, action: modify}
`,
			want: []string{`models/x.yaml:9: objects[0].taskMappings.Update[1].name: unknown property "titel": did you mean "title"? (object User has userName, title)`},
		},
		{
			name: "a template that is not JSON",
			yaml: `objects:
  - name: User
    properties:
      - {name: userName, isKey: true}
    details:
      CreateRequest: |
        {"schemas": [
          "urn:ietf:params:scim:schemas:core:2.0:User",
        }
`,
			want: []string{`models/x.yaml:6: objects[0].details.CreateRequest: template CreateRequest: not valid JSON: line 3: invalid character '}' looking for beginning of value`},
		},
		{
			name: "a template that is not an object",
			yaml: `objects:
  - name: User
    properties:
      - {name: userName, isKey: true}
    details:
      CreateRequest: '[1, 2]'
`,
			want: []string{`models/x.yaml:6: objects[0].details.CreateRequest: template CreateRequest: must be a JSON object, got a list`},
		},
		{
			name: "a PATCH template with bad operations",
			yaml: `objects:
  - name: User
    properties:
      - {name: userName, isKey: true}
    details:
      UpdateRequest: '{"Operations": [{"op": "merge"}]}'
`,
			want: []string{`models/x.yaml:6: objects[0].details.UpdateRequest: template UpdateRequest: "Operations"[0].op must be add, replace or remove, got "merge"`},
		},
		{
			name: "a JSONPath that doesn't parse",
			yaml: `objects:
  - name: User
    properties:
      - {name: userName, isKey: true}
      - {name: "$.a[?(@.b ==", multiValued: true}
`,
			want: []string{`models/x.yaml:5: objects[0].properties[1].name: "$.a[?(@.b ==" is not a valid JSONPath`},
		},
		{
			name: "a JSONPath property can't be a key",
			yaml: `objects:
  - name: User
    properties:
      - {name: "$.a", isKey: true}
`,
			want: []string{`models/x.yaml:4: objects[0].properties[0].isKey: a JSONPath property ($.a) is applied where it points: it can't have isKey`},
		},
		{
			name: "a bad path",
			yaml: `objects:
  - name: User
    properties:
      - {name: userName, isKey: true}
      - {name: "emails[].types[].x"}
      - {name: manager, path: "name..x"}
`,
			want: []string{
				`models/x.yaml:5: objects[0].properties[1].name: "emails[].types[].x": at most one [] per path`,
				`models/x.yaml:6: objects[0].properties[2].path: "name..x": empty attribute name`,
			},
		},
		{
			name: "a reference without referenceObject or lookup",
			yaml: `objects:
  - name: Group
    properties:
      - {name: displayName, isKey: true}
      - {name: "members[].value", type: reference}
      - {name: owner, referenceObject: Users}
`,
			want: []string{
				`models/x.yaml:5: objects[0].properties[1].referenceObject: a reference needs referenceObject`,
				`models/x.yaml:6: objects[0].properties[2].referenceLookupProperty: a reference needs referenceLookupProperty`,
			},
		},
		{
			name: "a multi-valued key",
			yaml: `objects:
  - name: User
    properties:
      - {name: "emails[].value", isKey: true}
`,
			want: []string{`models/x.yaml:4: objects[0].properties[0].isKey: a key identifies one object: "emails[].value" is multi-valued`},
		},
		{
			name: "duplicates",
			yaml: `objects:
  - name: User
    properties:
      - {name: userName, isKey: true}
      - {name: userName}
  - name: User
    properties:
      - {name: userName, isKey: true}
`,
			want: []string{
				`models/x.yaml:5: objects[0].properties[1].name: property "userName" is defined twice in object User`,
				`models/x.yaml:6: objects[1].name: object "User" is defined twice`,
			},
		},
		{
			name: "a constant that doesn't fit its property",
			yaml: `objects:
  - name: User
    properties:
      - {name: userName, isKey: true}
      - {name: active, type: bool}
    taskMappings:
      Delete: [{name: active, action: modify, value: "nope"}]
`,
			want: []string{`models/x.yaml:7: objects[0].taskMappings.Delete[0].value: constant for "active" want a bool, got "nope"`},
		},
		{
			name: "a duplicate YAML key",
			yaml: `objects:
  - name: User
    name: Person
    properties:
      - {name: userName, isKey: true}
`,
			want: []string{`models/x.yaml:3: objects[0].name: duplicate key`},
		},
		{
			name: "YAML that does not parse",
			yaml: "objects:\n  - name: User\n    properties: x: y\n",
			want: []string{`models/x.yaml:3: not valid YAML: mapping values are not allowed in this context`},
		},
		{
			name: "an empty file",
			yaml: "",
			want: []string{`models/x.yaml: empty document`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseModel("models/x.yaml", []byte(c.yaml))
			require.Error(t, err)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(c.want), "errors: %s", err)
			for i, w := range c.want {
				assert.True(t, strings.HasPrefix(lines[i], w), "error %d\nwant prefix %s\ngot         %s", i, w, lines[i])
			}
		})
	}
}

func TestLoadModelReadsAFile(t *testing.T) {
	t.Parallel()
	_, err := LoadModel(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "load data model")
	path := filepath.Join(t.TempDir(), "m.yaml")
	require.NoError(t, os.WriteFile(path, []byte(groupModel), 0o600))
	m, err := LoadModel(path)
	require.NoError(t, err)
	g, ok := m.Object("Group")
	require.True(t, ok)
	assert.Equal(t, "Groups", g.Resource())
	assert.Equal(t, []string{"displayName"}, g.KeyNames())
	assert.Equal(t, path, m.Source())
	_, ok = m.Object("User")
	assert.False(t, ok)
}

func TestModelDefaults(t *testing.T) {
	t.Parallel()
	m, err := ParseModel("m.yaml", []byte(`objects:
  - name: Person
    properties:
      - {name: userName, isKey: true}
      - {name: "emails[].value"}
      - {name: title}
`))
	require.NoError(t, err)
	o, _ := m.Object("Person")
	assert.Equal(t, "Person", o.Resource(), "resource defaults to the object name")
	assert.Equal(t, "patch", o.UpdateMethod())
	k := o.Keys()[0]
	assert.Equal(t, "Person", k.ReferenceObject(), "a key's referenceObject defaults to the object's resource")
	assert.Equal(t, "userName", k.ReferenceLookupProperty(), "a key's lookup property defaults to its path")
	p, _ := o.Property("emails[].value")
	assert.True(t, p.MultiValued())
	assert.Equal(t, TypeString, p.Type())
	_, defined := o.TaskMappings(OpUpdate)
	assert.False(t, defined)
}

func TestExampleModelsLoadAndRoundTrip(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"scim-generic.yaml", "cyberark.yaml"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := loadExample(t, name)
			var b bytes.Buffer
			require.NoError(t, m.WriteYAML(&b))
			back, err := ParseModel("written.yaml", b.Bytes())
			require.NoError(t, err, "%s", b.String())
			assert.Equal(t, m.file, back.file)
		})
	}
}

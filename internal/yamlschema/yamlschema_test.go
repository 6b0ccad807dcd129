package yamlschema

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The event schema is a convenient real schema to validate YAML against.
const schema = "event.schema.json"

func TestParseReportsFileLineAndField(t *testing.T) {
	t.Parallel()
	src := `specversion: "1.0"
id: e1
source: /t
type: identity.user.create
data:
  object: User
  operation: Promote
  key:
    userName: x
`
	_, err := Parse("ev.yaml", []byte(src), schema, Options{})
	require.Error(t, err)
	var ye *Error
	require.True(t, errors.As(err, &ye))
	require.Len(t, ye.Problems, 1)
	p := ye.Problems[0]
	assert.Equal(t, "ev.yaml", p.File)
	assert.Equal(t, 7, p.Line)
	assert.Equal(t, "data.operation", p.Field)
	var pe *Problem
	require.True(t, errors.As(err, &pe), "each problem is an error of its own")
	assert.Equal(t, 7, pe.Line)
	assert.Contains(t, err.Error(), `ev.yaml:7: data.operation: must be one of Create,Update,Delete,Upsert,AddAssignment,RemoveAssignment (got "Promote")`)
}

func TestParseMissingPropertyPointsAtParent(t *testing.T) {
	t.Parallel()
	src := "specversion: \"1.0\"\nid: e1\nsource: /t\ntype: identity.user.create\ndata:\n  object: User\n  operation: Create\n"
	_, err := Parse("ev.yaml", []byte(src), schema, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ev.yaml:5: data.key: required field is missing")
}

func TestParseSyntaxError(t *testing.T) {
	t.Parallel()
	_, err := Parse("bad.yaml", []byte("a: b\n  c: : d\n"), schema, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad.yaml:2:")
}

func TestExpandEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SECRET": "s3cr:et #x", "ID": "e9"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	src := "specversion: \"1.0\"\nid: ${ID}\nsource: \"$${LITERAL}/${SECRET}\"\ntype: identity.user.create\ndata: {object: User, operation: Create, key: {userName: x}}\n"
	d, err := Parse("c.yaml", []byte(src), schema, Options{ExpandEnv: true, LookupEnv: lookup})
	require.NoError(t, err)
	var out struct {
		ID     string `yaml:"id"`
		Source string `yaml:"source"`
	}
	require.NoError(t, d.Decode(&out))
	assert.Equal(t, "e9", out.ID)
	assert.Equal(t, "${LITERAL}/s3cr:et #x", out.Source, "values are substituted after parsing, so YAML syntax in them is inert")

	_, err = Parse("c.yaml", []byte("id: ${NOPE}\n"), schema, Options{ExpandEnv: true, LookupEnv: lookup})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "c.yaml:1: id: environment variable NOPE is not set")
}

func TestWhatJSONCannotHoldIsRefused(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"data:\n  key:\n    a: 1\n    a: 2\n": "d.yaml:4: data.key.a: duplicate key",
		"base: &b {x: 1}\ndata:\n  <<: *b\n":  "d.yaml:3: data: YAML merge keys (<<) are not supported",
		"data:\n  n: .nan\n":                  "d.yaml:2: data.n: .nan is not a JSON number",
		"a: b\n  c: : d\n":                    "d.yaml:2: not valid YAML:",
		"":                                    "d.yaml: empty document",
		strings.Repeat("- ", 300) + "x\n":     "nested too deeply",
	}
	for src, want := range cases {
		_, err := Parse("d.yaml", []byte(src), schema, Options{})
		require.Error(t, err, src)
		assert.Contains(t, err.Error(), want)
	}
}

func TestLineOfField(t *testing.T) {
	t.Parallel()
	src := "specversion: \"1.0\"\nid: e1\nsource: /t\ntype: identity.user.create\ndata:\n  object: User\n  operation: Create\n  key:\n    userName: x\n  attributes:\n    emails:\n      - a\n      - b\n"
	d, err := Parse("x.yaml", []byte(src), schema, Options{})
	require.NoError(t, err)
	assert.Equal(t, 9, d.Line("data.key.userName"))
	assert.Equal(t, 13, d.Line("data.attributes.emails[1]"))
	assert.Equal(t, 0, d.Line("data.nothing"))
	assert.Equal(t, "x.yaml:7: data.operation: bad", d.Problem("data.operation", "bad").String())
}

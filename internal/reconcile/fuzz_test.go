package reconcile

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Fuzz targets for what reads untrusted or hand-written input. Their seeds run with every
// `go test`; `go test -fuzz=FuzzX ./internal/reconcile` explores further.

// FuzzParseTemplate: template text never panics; it is an object or a clear error.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{
		sampleUserTemplate,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[]}]}`,
		`{"schemas":"x"}`, `{"schemas":[1]}`, `[]`, `"text"`, `{`, `{} {}`, ``, `{"a":1e400}`, `{"a":"\ud800"}`, "{\"a\":\x00}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		m, err := parseTemplate(text)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if m == nil {
			t.Fatal("no error and no template")
		}
		_ = checkPatchTemplate(m)
		if _, err := marshalJSON(m); err != nil {
			t.Fatalf("a parsed template does not encode: %v", err)
		}
		// Through the model loader too: errors name the field.
		mf := modelFile{Objects: []objectFile{{Name: "T", Properties: []propertyFile{{Name: "k", IsKey: true}}, Details: &detailsFile{CreateRequest: text}}}}
		raw, err := yaml.Marshal(mf)
		if err != nil {
			return
		}
		if _, err := ParseModel("fuzz.yaml", raw); err != nil && !strings.Contains(err.Error(), "details.CreateRequest") {
			t.Fatalf("a template error that doesn't name its field: %v", err)
		}
	})
}

// FuzzJSONPath: any JSONPath name and any event value applied to the seed's SampleUser template
// never panics; failures are ErrModel (a bad path, nothing matched) or ErrInvalidChange (a bad
// value), with a message naming the property.
func FuzzJSONPath(f *testing.F) {
	for _, s := range []struct {
		path, value string
		multi       bool
	}{
		{"$.added[0].loginId", "jdoe", false},
		{"$.added[0].roles", `{"name":"Role 3"}`, true},
		{"$.added[0].organization", `{"name":"ACME"}`, false},
		{"$.added[*].sampleArray", `["a",`, true},
		{"$..name", "x", false},
		{"$.added[-1].loginId", "x", false},
		{"$.added[?(@.loginId == 'myLogin')].loginId", "y", false},
		{"$.nothing", "x", false},
		{"$.added[0].roles[5]", "x", false},
		{"$.added[0]", "[1,2]", false},
		{"$[", "x", false},
		{"$.a.b.c[1:3]", "x", false},
	} {
		f.Add(s.path, s.value, s.multi)
	}
	f.Fuzz(func(t *testing.T, path, value string, multi bool) {
		if !strings.HasPrefix(path, "$.") {
			path = "$." + path
		}
		mf := modelFile{Objects: []objectFile{{
			Name:       "SampleUser",
			Properties: []propertyFile{{Name: path, MultiValued: multi}},
			Details:    &detailsFile{CreateRequest: sampleUserTemplate},
		}}}
		m, err := compileModel("fuzz", mf, func(fieldPath) int { return 0 })
		if err != nil {
			if !strings.Contains(err.Error(), "JSONPath") {
				t.Fatalf("a path error that doesn't say so: %v", err)
			}
			return
		}
		var v any = value
		if multi {
			v = []any{value, value}
		}
		p, err := NewPlanner(m, Options{}).Plan(context.Background(), newMemoryReader(), Change{Object: "SampleUser", Operation: OpCreate, Attributes: map[string]any{path: v}})
		if err != nil {
			if !errors.Is(err, ErrModel) && !errors.Is(err, ErrInvalidChange) {
				t.Fatalf("unclassified error: %v", err)
			}
			if !strings.Contains(err.Error(), strconv.Quote(path)) {
				t.Fatalf("the error doesn't name the path %q: %v", path, err)
			}
			return
		}
		if len(p.Requests) != 1 {
			t.Fatalf("want one POST, got %d requests", len(p.Requests))
		}
		if _, err := decodeJSON(p.Requests[0].Body); err != nil {
			t.Fatalf("the body is not JSON: %v", err)
		}
	})
}

// FuzzPlanChange: any event attributes for the User of the example model never panic, and every
// failure is one the pipeline classifies.
func FuzzPlanChange(f *testing.F) {
	for _, s := range []string{
		`{"name.givenName":"John","emails[].value":["a@example.org"],"emails[].type":["work"],"active":true}`,
		`{"emails[].value":["a","b"],"emails[].type":["x"]}`,
		`{"emails[].value":[null]}`, `{"active":"maybe"}`, `{"title":{"a":1}}`, `{"nope":1}`,
		`{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value":"boss@example.com"}`,
		`{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value":""}`,
		`{"phoneNumbers[].value":["1",2,true]}`, `{"userName":"other"}`,
	} {
		f.Add(s, "Update", "jdoe@example.com")
		f.Add(s, "Create", "new@example.com")
	}
	m, err := LoadModel("../../deploy/examples/models/scim-generic.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, attrs, op, key string) {
		v, err := decodeJSON([]byte(attrs))
		if err != nil {
			return
		}
		am, ok := v.(map[string]any)
		if !ok {
			return
		}
		r := newMemoryReader()
		r.add(t, "Users", `{"userName":"jdoe@example.com","emails":[{"value":"a@example.org"}]}`)
		r.add(t, "Users", `{"userName":"boss@example.com"}`)
		_, err = NewPlanner(m, Options{UseNumericValues: len(key)%2 == 0}).Plan(context.Background(), r,
			Change{Object: "User", Operation: Operation(op), Key: map[string]any{"userName": key}, Attributes: am})
		if err != nil && planErrorClass(err) == "" {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}

// FuzzParseModel: any YAML never panics the loader.
func FuzzParseModel(f *testing.F) {
	f.Add(groupModel)
	f.Add(sampleUserModel)
	f.Add(userModel(reconcilePUT, `[{name: "emails[].value", action: add, multivalue: true}]`))
	f.Add("objects: [{name: A, properties: [{name: \"urn:x\"}]}]")
	f.Add("objects: &a [*a]")
	f.Add("a: [")
	f.Fuzz(func(t *testing.T, src string) {
		_, _ = ParseModel("fuzz.yaml", []byte(src))
	})
}

// FuzzImportOmada: any XML never panics the importer.
func FuzzImportOmada(f *testing.F) {
	f.Add(sampleUserXML)
	f.Add(membersXML)
	f.Add(actionsXML)
	f.Add("<object name=\"A\"><properties><property name=\"$[\"/></properties></object>")
	f.Add("<a><object/><properties/></a>")
	f.Fuzz(func(t *testing.T, src string) {
		_, _ = ImportOmada(strings.NewReader(src), "fuzz.xml")
	})
}

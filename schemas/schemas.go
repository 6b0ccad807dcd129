// Package schemas embeds the JSON Schemas that define scimflow's contracts (the event envelope, the
// outcome event, the worker configuration and the data model) and validates documents against them.
package schemas

import (
	"embed"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// FS holds every *.json schema of this folder, by file name.
//
//go:embed *.json
var FS embed.FS

var (
	mu       sync.Mutex
	compiled = map[string]*jsonschema.Schema{}
	printer  = message.NewPrinter(language.English)
)

// Compile returns the compiled schema of the embedded file name (such as "event.schema.json").
// Compiled schemas are cached; they are safe for concurrent use.
func Compile(name string) (*jsonschema.Schema, error) {
	mu.Lock()
	defer mu.Unlock()
	if s, ok := compiled[name]; ok {
		return s, nil
	}
	f, err := FS.Open(name)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	url := "mem:///" + name
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	compiled[name] = s
	return s, nil
}

// MustCompile is Compile for schemas that ship with the binary: a failure is a build defect.
func MustCompile(name string) *jsonschema.Schema {
	s, err := Compile(name)
	if err != nil {
		panic(err)
	}
	return s
}

// Violation is one reason a document fails its schema.
type Violation struct {
	// Pointer is the JSON pointer of the offending value ("" for the document itself).
	Pointer string
	// Path is Pointer split into its unescaped tokens.
	Path []string
	// Message says what is wrong, in English.
	Message string
}

func (v Violation) String() string {
	if v.Pointer == "" {
		return v.Message
	}
	return v.Pointer + ": " + v.Message
}

// Validate checks v (a value as decoded by encoding/json with UseNumber, or by jsonschema.UnmarshalJSON)
// against the embedded schema name and returns its violations, most specific first and sorted by
// location; nil when v is valid.
func Validate(name string, v any) ([]Violation, error) {
	s, err := Compile(name)
	if err != nil {
		return nil, err
	}
	err = s.Validate(v)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil, fmt.Errorf("validate against %s: %w", name, err)
	}
	return Violations(ve), nil
}

// Violations flattens a validation error into its leaves: the deepest causes, which name the exact
// value and keyword at fault. An unknown property and a missing required one are reported at
// their own path ("unknown field", "required field is missing"), one violation each.
func Violations(ve *jsonschema.ValidationError) []Violation {
	var out []Violation
	add := func(path []string, msg string) {
		path = append([]string(nil), path...)
		out = append(out, Violation{Pointer: pointer(path), Path: path, Message: msg})
	}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		at := e.InstanceLocation
		switch k := e.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			for _, p := range k.Properties {
				add(append(slices.Clip(at), p), "unknown field")
			}
		case *kind.Required:
			for _, m := range k.Missing {
				add(append(slices.Clip(at), m), "required field is missing")
			}
		default:
			add(at, describe(e.ErrorKind))
		}
	}
	walk(ve)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	return out
}

// describe says what a keyword wants, naming the value that failed it.
func describe(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprint(w)
		}
		return fmt.Sprintf("must be one of %s (got %s)", strings.Join(want, ","), show(k.Got))
	case *kind.Const:
		return fmt.Sprintf("must be %s (got %s)", show(k.Want), show(k.Got))
	case *kind.Type:
		return fmt.Sprintf("must be %s, not %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.Pattern:
		return fmt.Sprintf("%s does not match %s", show(k.Got), k.Want)
	}
	return k.LocalizedString(printer)
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return ""
	}
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}

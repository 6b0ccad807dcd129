// Package schemas embeds the JSON Schemas that define scimflow's contracts (the event envelope, the
// outcome event, the worker configuration and the data model) and validates documents against them.
package schemas

import (
	"embed"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
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
// value and keyword at fault.
func Violations(ve *jsonschema.ValidationError) []Violation {
	var out []Violation
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, Violation{
				Pointer: pointer(e.InstanceLocation),
				Path:    append([]string(nil), e.InstanceLocation...),
				Message: e.ErrorKind.LocalizedString(printer),
			})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	return out
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

package reconcile

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"

	"github.com/scimflow/scimflow/schemas"
)

// This file validates a YAML document against one of the embedded JSON Schemas and reports every
// violation as a *FieldError naming the file, the line and the field. It knows nothing about data
// models: configuration loading can use it as it is.

var (
	yamlSchemaMu    sync.Mutex
	yamlSchemaCache = map[string]*jsonschema.Schema{}
	yamlPrinter     = message.NewPrinter(language.English)
)

// validateYAML parses data as one YAML document, converts it to the JSON data model (objects,
// arrays, strings, numbers, booleans, null) and validates it against the embedded schema
// schemaName. It returns the document's root node (for line lookups and decoding) and the
// converted value. Errors are *FieldError values joined with errors.Join.
func validateYAML(file string, data []byte, schemaName string) (root *yaml.Node, value any, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := yamlLineRE.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "")
		return nil, nil, &FieldError{File: file, Line: yamlErrorLine(err), Message: "not valid YAML: " + strings.TrimSpace(msg)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil, &FieldError{File: file, Message: "empty document"}
	}
	root = doc.Content[0]
	value, err = yamlToJSON(file, root, nil, 0)
	if err != nil {
		return nil, nil, err
	}
	sch, err := compileEmbeddedSchema(schemaName)
	if err != nil {
		return nil, nil, fmt.Errorf("validate %s: %w", file, err)
	}
	verr := sch.Validate(value)
	if verr == nil {
		return root, value, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(verr, &ve) {
		return nil, nil, fmt.Errorf("validate %s against %s: %w", file, schemaName, verr)
	}
	return nil, nil, joinFieldErrors(schemaFieldErrors(file, root, ve))
}

func compileEmbeddedSchema(name string) (*jsonschema.Schema, error) {
	yamlSchemaMu.Lock()
	defer yamlSchemaMu.Unlock()
	if s, ok := yamlSchemaCache[name]; ok {
		return s, nil
	}
	raw, err := schemas.FS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	url := "mem:///" + name
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", name, err)
	}
	yamlSchemaCache[name] = s
	return s, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+):?`)

func yamlErrorLine(err error) int {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

const maxYAMLDepth = 200

// yamlToJSON converts a YAML node into the values encoding/json produces, refusing what JSON can't
// hold (non-string keys are stringified; duplicate keys, merge keys and NaN/Inf are errors).
func yamlToJSON(file string, n *yaml.Node, at fieldPath, depth int) (any, error) {
	if depth > maxYAMLDepth {
		return nil, &FieldError{File: file, Line: n.Line, Field: at.String(), Message: "nested too deeply"}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return yamlToJSON(file, n.Content[0], at, depth+1)
	case yaml.AliasNode:
		return yamlToJSON(file, n.Alias, at, depth+1)
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, &FieldError{File: file, Line: k.Line, Field: at.String(), Message: "keys must be plain scalars"}
			}
			if k.Tag == "!!merge" {
				return nil, &FieldError{File: file, Line: k.Line, Field: at.String(), Message: "YAML merge keys (<<) are not supported"}
			}
			if _, dup := out[k.Value]; dup {
				return nil, &FieldError{File: file, Line: k.Line, Field: at.with(k.Value).String(), Message: "duplicate key"}
			}
			val, err := yamlToJSON(file, v, at.with(k.Value), depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = val
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			val, err := yamlToJSON(file, c, at.with(i), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, val)
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool", "!!int", "!!float":
			var v any
			if err := n.Decode(&v); err != nil {
				return nil, &FieldError{File: file, Line: n.Line, Field: at.String(), Message: err.Error()}
			}
			if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
				return nil, &FieldError{File: file, Line: n.Line, Field: at.String(), Message: fmt.Sprintf("%s is not a JSON number", n.Value)}
			}
			return v, nil
		default:
			return n.Value, nil
		}
	}
	return nil, &FieldError{File: file, Line: n.Line, Field: at.String(), Message: "unsupported YAML node"}
}

// yamlLookup walks tokens (JSON pointer tokens) down from root and returns the deepest node reached,
// the key node of the last mapping step (nil otherwise) and the readable field path.
func yamlLookup(root *yaml.Node, tokens []string) (node, key *yaml.Node, at fieldPath) {
	node = root
	for _, t := range tokens {
		for node.Kind == yaml.AliasNode && node.Alias != nil {
			node = node.Alias
		}
		switch node.Kind {
		case yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(node.Content); i += 2 {
				if node.Content[i].Value == t {
					key, node, found = node.Content[i], node.Content[i+1], true
					break
				}
			}
			if !found {
				return node, key, append(at, t)
			}
			at = append(at, t)
		case yaml.SequenceNode:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(node.Content) {
				return node, key, append(at, t)
			}
			node, key = node.Content[i], nil
			at = append(at, i)
		default:
			return node, key, append(at, t)
		}
	}
	return node, key, at
}

// yamlLine is the line of the value at tokens (its key's line for mapping entries).
func yamlLine(root *yaml.Node, tokens []string) int {
	if root == nil {
		return 0
	}
	node, key, _ := yamlLookup(root, tokens)
	if key != nil {
		return key.Line
	}
	return node.Line
}

func schemaFieldErrors(file string, root *yaml.Node, ve *jsonschema.ValidationError) []*FieldError {
	var out []*FieldError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		node, key, at := yamlLookup(root, e.InstanceLocation)
		line := node.Line
		if key != nil {
			line = key.Line
		}
		switch k := e.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			for _, p := range k.Properties {
				_, pk, pat := yamlLookup(root, append(append([]string(nil), e.InstanceLocation...), p))
				l := line
				if pk != nil {
					l = pk.Line
				}
				out = append(out, &FieldError{File: file, Line: l, Field: pat.String(), Message: "unknown field"})
			}
			return
		case *kind.Required:
			for _, m := range k.Missing {
				out = append(out, &FieldError{File: file, Line: line, Field: at.with(m).String(), Message: "required field is missing"})
			}
			return
		}
		out = append(out, &FieldError{File: file, Line: line, Field: at.String(), Message: schemaMessage(e.ErrorKind)})
	}
	walk(ve)
	return out
}

func schemaMessage(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprint(w)
		}
		return fmt.Sprintf("must be one of %s (got %s)", strings.Join(want, ","), showJSON(k.Got))
	case *kind.Type:
		return fmt.Sprintf("must be %s, not %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.Pattern:
		return fmt.Sprintf("%s does not match %s", showJSON(k.Got), k.Want)
	}
	return k.LocalizedString(yamlPrinter)
}

func showJSON(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

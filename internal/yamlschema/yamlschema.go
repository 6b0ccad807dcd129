// Package yamlschema loads YAML documents that a JSON Schema defines (the worker configuration, the
// data model) and reports every problem with the file, line and field it concerns.
package yamlschema

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/scimflow/scimflow/schemas"
)

// Options change how a document is read.
type Options struct {
	// ExpandEnv replaces ${NAME} in string values by the environment variable NAME; a reference to
	// an unset variable is an error naming it. $${NAME} stands for a literal ${NAME}.
	ExpandEnv bool
	// LookupEnv reads the environment; default os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Problem is one thing wrong with a document.
type Problem struct {
	File    string
	Line    int    // 1-based; 0 when unknown
	Field   string // dotted path such as objects[0].properties[3].type; "" for the document
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error makes a *Problem an error of its own.
func (p *Problem) Error() string { return p.String() }

// Error lists every problem found in a document, sorted by line then field, without repeats.
type Error struct {
	Problems []Problem
}

// NewError sorts and deduplicates problems; nil when there are none.
func NewError(problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	slices.SortStableFunc(problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Field, b.Field))
	})
	return &Error{Problems: slices.CompactFunc(problems, func(a, b Problem) bool { return a == b })}
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "\n")
}

// Unwrap gives each problem to errors.As and errors.Is.
func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i := range e.Problems {
		out[i] = &e.Problems[i]
	}
	return out
}

// Document is a parsed, schema-valid YAML document.
type Document struct {
	File string
	Root *yaml.Node // the document's top-level mapping (or other value)
}

// Decode decodes the document into out (yaml.v3 rules: struct fields by their yaml tags).
func (d *Document) Decode(out any) error {
	if err := d.Root.Decode(out); err != nil {
		return &Error{Problems: []Problem{{File: d.File, Message: err.Error()}}}
	}
	return nil
}

// Line returns the line where the dotted field path (as Problem.Field prints it) is named: its key
// for a mapping entry, the element itself in a sequence; 0 when the field is absent.
func (d *Document) Line(field string) int {
	n, line := d.Root, d.Root.Line
	if field == "" {
		return line
	}
	for _, tok := range splitField(field) {
		n, line = child(n, tok)
		if n == nil {
			return 0
		}
	}
	return line
}

// Problem builds a problem about field of this document, with its line.
func (d *Document) Problem(field, format string, args ...any) Problem {
	return Problem{File: d.File, Line: d.Line(field), Field: field, Message: fmt.Sprintf(format, args...)}
}

// LoadFile reads and validates file against the embedded schema named schemaName.
func LoadFile(file, schemaName string, opt Options) (*Document, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return Parse(file, data, schemaName, opt)
}

// Parse parses data (named file in messages) and validates it against the embedded schema
// schemaName.
func Parse(file string, data []byte, schemaName string, opt Options) (*Document, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{Problems: []Problem{YAMLProblem(file, err)}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{Problems: []Problem{{File: file, Message: "empty document"}}}
	}
	root := doc.Content[0]
	if opt.ExpandEnv {
		lookup := opt.LookupEnv
		if lookup == nil {
			lookup = os.LookupEnv
		}
		var problems []Problem
		expandEnv(root, "", file, lookup, &problems)
		if len(problems) > 0 {
			return nil, &Error{Problems: problems}
		}
	}
	value, bad := toValue(root, nil, 0)
	if bad != nil {
		bad.File = file
		return nil, &Error{Problems: []Problem{*bad}}
	}
	violations, err := schemas.Validate(schemaName, value)
	if err != nil {
		return nil, err
	}
	d := &Document{File: file, Root: root}
	if len(violations) > 0 {
		problems := make([]Problem, 0, len(violations))
		for _, v := range violations {
			problems = append(problems, Problem{File: file, Line: LineAt(root, v.Path), Field: FieldPath(v.Path), Message: v.Message})
		}
		return nil, NewError(problems)
	}
	return d, nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// YAMLProblem turns an error of gopkg.in/yaml.v3 (a syntax error, or a decoding error) into a
// problem with its line.
func YAMLProblem(file string, err error) Problem {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: line, Message: "not valid YAML: " + m[2]}
	}
	return Problem{File: file, Message: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

var envRef = regexp.MustCompile(`\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

func expandEnv(n *yaml.Node, field, file string, lookup func(string) (string, bool), problems *[]Problem) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!str" || !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			if strings.HasPrefix(ref, "$$") {
				return ref[1:]
			}
			name := ref[2 : len(ref)-1]
			v, ok := lookup(name)
			if !ok {
				*problems = append(*problems, Problem{File: file, Line: n.Line, Field: field,
					Message: fmt.Sprintf("environment variable %s is not set", name)})
			}
			return v
		})
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(n.Content[i+1], joinField(field, n.Content[i].Value), file, lookup, problems)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandEnv(c, field+"["+strconv.Itoa(i)+"]", file, lookup, problems)
		}
	case yaml.DocumentNode, yaml.AliasNode:
		for _, c := range n.Content {
			expandEnv(c, field, file, lookup, problems)
		}
	}
}

// maxDepth bounds nesting, so that a hostile document cannot exhaust the stack.
const maxDepth = 200

// toValue converts a node to the values encoding/json produces (objects, arrays, strings,
// float64 numbers, booleans, null), refusing what JSON cannot hold: duplicate keys, merge keys,
// NaN and infinities. at is the path of n, for problems.
func toValue(n *yaml.Node, at []string, depth int) (any, *Problem) {
	fail := func(line int, path []string, msg string) (any, *Problem) {
		return nil, &Problem{Line: line, Field: FieldPath(path), Message: msg}
	}
	if depth > maxDepth {
		return fail(n.Line, at, "nested too deeply")
	}
	switch n.Kind {
	case yaml.AliasNode:
		return toValue(n.Alias, at, depth+1)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return fail(k.Line, at, "keys must be plain scalars")
			}
			if k.Tag == "!!merge" {
				return fail(k.Line, at, "YAML merge keys (<<) are not supported")
			}
			path := append(slices.Clip(at), k.Value)
			if _, dup := m[k.Value]; dup {
				return fail(k.Line, path, "duplicate key")
			}
			v, p := toValue(n.Content[i+1], path, depth+1)
			if p != nil {
				return nil, p
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, p := toValue(c, append(slices.Clip(at), strconv.Itoa(i)), depth+1)
			if p != nil {
				return nil, p
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return fail(n.Line, at, err.Error())
			}
			return b, nil
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return fail(n.Line, at, err.Error())
			}
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return fail(n.Line, at, n.Value+" is not a JSON number")
			}
			return f, nil
		default:
			return n.Value, nil
		}
	}
	return fail(n.Line, at, "unsupported YAML node")
}

// LineAt follows a JSON-pointer path through the node tree and returns the line where it ends
// (the key's line for a mapping entry); when the path leaves the tree (a missing property), the
// line of the deepest field reached.
func LineAt(n *yaml.Node, path []string) int {
	if n == nil {
		return 0
	}
	line := n.Line
	for _, tok := range path {
		c, l := child(n, tok)
		if c == nil {
			break
		}
		n, line = c, l
	}
	return line
}

// child returns the value under tok and the line that names it (the key's line in a mapping).
func child(n *yaml.Node, tok string) (*yaml.Node, int) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == tok {
				return n.Content[i+1], n.Content[i].Line
			}
		}
	case yaml.SequenceNode:
		i, err := strconv.Atoi(tok)
		if err == nil && i >= 0 && i < len(n.Content) {
			return n.Content[i], n.Content[i].Line
		}
	}
	return nil, 0
}

// FieldPath renders JSON-pointer tokens as a dotted path with [i] for array indexes, the way
// Problem.Field names a field: objects[0].properties[3].type.
func FieldPath(path []string) string {
	var b strings.Builder
	for _, tok := range path {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func joinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// splitField is the inverse of fieldPath for names without dots or brackets.
func splitField(field string) []string {
	var out []string
	for _, part := range strings.Split(field, ".") {
		for {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				out = append(out, part[:i])
			}
			j := strings.IndexByte(part[i:], ']')
			if j < 0 {
				break
			}
			out = append(out, part[i+1:i+j])
			part = part[i+j+1:]
		}
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}

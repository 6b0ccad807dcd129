package reconcile

import (
	"gopkg.in/yaml.v3"

	"github.com/scimflow/scimflow/internal/yamlschema"
)

// validateYAML parses data as one YAML document and validates it against the embedded schema
// schemaName (internal/yamlschema); it returns the document's root node for decoding and line
// lookups. Every problem names file, line and field.
func validateYAML(file string, data []byte, schemaName string) (*yaml.Node, error) {
	doc, err := yamlschema.Parse(file, data, schemaName, yamlschema.Options{})
	if err != nil {
		return nil, err
	}
	return doc.Root, nil
}

// yamlLine is the line of the value at tokens (its key's line for mapping entries).
func yamlLine(root *yaml.Node, tokens []string) int { return yamlschema.LineAt(root, tokens) }

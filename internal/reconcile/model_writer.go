package reconcile

import (
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// WriteYAML writes the model as a scimflow YAML data model; LoadModel reads it back to the same
// model.
func (m *Model) WriteYAML(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "# scimflow data model (schemas/datamodel.schema.json), written from %s\n", m.source); err != nil {
		return fmt.Errorf("write data model: %w", err)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(m.file); err != nil {
		return fmt.Errorf("write data model: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write data model: %w", err)
	}
	return nil
}

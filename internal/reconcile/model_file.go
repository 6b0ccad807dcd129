package reconcile

// modelFile is the data-model file as written (YAML, schemas/datamodel.schema.json). LoadModel
// decodes it, ImportOmada builds it from Omada XML, WriteYAML writes it back.
type modelFile struct {
	Description string       `yaml:"description,omitempty"`
	Objects     []objectFile `yaml:"objects"`
}

type objectFile struct {
	Name               string            `yaml:"name"`
	Description        string            `yaml:"description,omitempty"`
	Resource           string            `yaml:"resource,omitempty"`
	Schemas            []string          `yaml:"schemas,omitempty"`
	UnmappedAttributes string            `yaml:"unmappedAttributes,omitempty"`
	OnMissing          map[string]string `yaml:"onMissing,omitempty"`
	Properties         []propertyFile    `yaml:"properties"`
	Details            *detailsFile      `yaml:"details,omitempty"`
	// TaskMappings by operation. An operation present with an empty list means "no mappings": every
	// attribute of such an event is unmapped. An absent operation uses the default mappings.
	TaskMappings map[string][]fieldMappingFile `yaml:"taskMappings,omitempty"`
}

type propertyFile struct {
	Name                    string `yaml:"name"`
	Path                    string `yaml:"path,omitempty"`
	Type                    string `yaml:"type,omitempty"`
	IsKey                   bool   `yaml:"isKey,omitempty"`
	MultiValued             bool   `yaml:"multiValued,omitempty"`
	ReferenceObject         string `yaml:"referenceObject,omitempty"`
	ReferenceLookupProperty string `yaml:"referenceLookupProperty,omitempty"`
	Description             string `yaml:"description,omitempty"`
}

// detailsFile holds the Omada object details: {Operation}Request templates (JSON text or a YAML
// mapping), ReconcileOnUpdate, ReconcileOnDelete, and the update method.
type detailsFile struct {
	CreateRequest           any    `yaml:"CreateRequest,omitempty"`
	UpdateRequest           any    `yaml:"UpdateRequest,omitempty"`
	DeleteRequest           any    `yaml:"DeleteRequest,omitempty"`
	AddAssignmentRequest    any    `yaml:"AddAssignmentRequest,omitempty"`
	RemoveAssignmentRequest any    `yaml:"RemoveAssignmentRequest,omitempty"`
	ReconcileOnUpdate       bool   `yaml:"ReconcileOnUpdate,omitempty"`
	ReconcileOnDelete       bool   `yaml:"ReconcileOnDelete,omitempty"`
	UpdateMethod            string `yaml:"UpdateMethod,omitempty"`
}

// templates lists the template details by name, in operation order.
func (d *detailsFile) templates() []namedTemplate {
	if d == nil {
		return nil
	}
	return []namedTemplate{
		{"CreateRequest", d.CreateRequest},
		{"UpdateRequest", d.UpdateRequest},
		{"DeleteRequest", d.DeleteRequest},
		{"AddAssignmentRequest", d.AddAssignmentRequest},
		{"RemoveAssignmentRequest", d.RemoveAssignmentRequest},
	}
}

func (d *detailsFile) setTemplate(name string, v any) bool {
	switch name {
	case "CreateRequest":
		d.CreateRequest = v
	case "UpdateRequest":
		d.UpdateRequest = v
	case "DeleteRequest":
		d.DeleteRequest = v
	case "AddAssignmentRequest":
		d.AddAssignmentRequest = v
	case "RemoveAssignmentRequest":
		d.RemoveAssignmentRequest = v
	default:
		return false
	}
	return true
}

type namedTemplate struct {
	name  string
	value any
}

type fieldMappingFile struct {
	Name        string `yaml:"name"`
	Action      string `yaml:"action,omitempty"`
	Multivalue  bool   `yaml:"multivalue,omitempty"`
	Value       any    `yaml:"value,omitempty"`
	Description string `yaml:"description,omitempty"`
}

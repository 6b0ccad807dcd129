package reconcile

// Object is one object of the data model (User, Group, Containers, ...): its SCIM resource, its
// schemas, properties, request templates, reconciliation switches and task mappings.
type Object struct {
	name              string
	resource          string
	schemas           []string
	props             []*Property
	byName            map[string]*Property
	keys              []*Property
	templates         map[string]map[string]any // by detail name, e.g. CreateRequest
	reconcileOnUpdate bool
	reconcileOnDelete bool
	updateMethod      string                       // "patch" or "put"
	mappings          map[Operation][]*TaskMapping // only the operations the model defines
	onMissing         map[Operation]string
	ignoreUnmapped    bool
}

// Update methods.
const (
	updatePatch = "patch"
	updatePut   = "put"
)

// Name is the object name events use.
func (o *Object) Name() string { return o.name }

// Resource is the SCIM resource path under the entity base, e.g. Users.
func (o *Object) Resource() string { return o.resource }

// Schemas are the schema URNs of the object's requests.
func (o *Object) Schemas() []string { return append([]string(nil), o.schemas...) }

// Properties lists the properties in the order the model declares them.
func (o *Object) Properties() []*Property { return append([]*Property(nil), o.props...) }

// Property finds a property by name.
func (o *Object) Property(name string) (*Property, bool) {
	p, ok := o.byName[name]
	return p, ok
}

// Keys lists the isKey properties in declaration order.
func (o *Object) Keys() []*Property { return append([]*Property(nil), o.keys...) }

// KeyNames lists the names of the isKey properties in declaration order.
func (o *Object) KeyNames() []string {
	out := make([]string, len(o.keys))
	for i, k := range o.keys {
		out[i] = k.name
	}
	return out
}

// UpdateMethod is "patch" or "put".
func (o *Object) UpdateMethod() string { return o.updateMethod }

// ReconcileOnUpdate and ReconcileOnDelete report the object's reconciliation switches.
func (o *Object) ReconcileOnUpdate() bool { return o.reconcileOnUpdate }

// ReconcileOnDelete reports whether Delete and RemoveAssignment merge into the current object.
func (o *Object) ReconcileOnDelete() bool { return o.reconcileOnDelete }

// TaskMappings returns the mappings the model defines for op, and whether it defines any (when it
// doesn't, default mappings apply).
func (o *Object) TaskMappings(op Operation) ([]*TaskMapping, bool) {
	m, ok := o.mappings[op]
	return append([]*TaskMapping(nil), m...), ok
}

// keyResource is where Resolve Object ID looks (all keys share it; checked at load).
func (o *Object) keyResource() string {
	if len(o.keys) == 0 {
		return o.resource
	}
	return o.keys[0].refObject
}

// softDelete: Delete writes (task mappings or a DeleteRequest template) instead of deleting.
func (o *Object) softDelete() bool {
	return len(o.mappings[OpDelete]) > 0 || o.templates["DeleteRequest"] != nil
}

func (o *Object) missingPolicy(op Operation) string {
	if p, ok := o.onMissing[op]; ok {
		return p
	}
	if op == OpDelete {
		return "skip"
	}
	return "fail"
}

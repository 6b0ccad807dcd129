package reconcile

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/ohler55/ojg/jp"

	"github.com/scimflow/scimflow/internal/yamlschema"
)

// datamodelSchema is the embedded JSON Schema every data-model file must satisfy.
const datamodelSchema = "datamodel.schema.json"

// Model is a loaded, checked data model. It is immutable and safe for concurrent use.
type Model struct {
	source  string
	file    modelFile
	objects []*Object
	byName  map[string]*Object
}

// LoadModel reads a YAML data model, validates it against schemas/datamodel.schema.json and checks
// its semantics. Every error names file, line and field, e.g.
//
//	models/x.yaml:42: objects[0].properties[3].type: must be one of string,int,long,bool,reference,complex (got "strng")
func LoadModel(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load data model: %w", err)
	}
	return ParseModel(path, data)
}

// ParseModel is LoadModel for data already read; name is used in error messages.
func ParseModel(name string, data []byte) (*Model, error) {
	root, err := validateYAML(name, data, datamodelSchema)
	if err != nil {
		return nil, err
	}
	var mf modelFile
	if err := root.Decode(&mf); err != nil {
		p := yamlschema.YAMLProblem(name, err)
		return nil, &p
	}
	return compileModel(name, mf, func(at fieldPath) int { return yamlLine(root, at.tokens()) })
}

// Source is the file the model was read from.
func (m *Model) Source() string { return m.source }

// Object finds an object by name.
func (m *Model) Object(name string) (*Object, bool) {
	o, ok := m.byName[name]
	return o, ok
}

// Objects lists the objects in declaration order.
func (m *Model) Objects() []*Object { return append([]*Object(nil), m.objects...) }

func (m *Model) objectNames() string { return strings.Join(m.objectNameList(), ", ") }

func (m *Model) objectNameList() []string {
	names := make([]string, len(m.objects))
	for i, o := range m.objects {
		names[i] = o.name
	}
	return names
}

// locator finds the source line of a field.
type locator func(at fieldPath) int

type problems struct {
	file string
	loc  locator
	errs []*FieldError
}

func (p *problems) add(at fieldPath, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{File: p.file, Line: p.loc(at), Field: at.String(), Message: fmt.Sprintf(format, args...)})
}

func compileModel(source string, mf modelFile, loc locator) (*Model, error) {
	pr := &problems{file: source, loc: loc}
	m := &Model{source: source, file: mf, byName: map[string]*Object{}}
	if len(mf.Objects) == 0 {
		pr.add(fieldPath{"objects"}, "a data model needs at least one object")
	}
	for i, of := range mf.Objects {
		at := fieldPath{"objects", i}
		o := compileObject(pr, at, of)
		if _, dup := m.byName[o.name]; dup {
			pr.add(at.with("name"), "object %q is defined twice", o.name)
			continue
		}
		m.byName[o.name] = o
		m.objects = append(m.objects, o)
	}
	if err := joinFieldErrors(pr.errs); err != nil {
		return nil, err
	}
	return m, nil
}

func compileObject(pr *problems, at fieldPath, of objectFile) *Object {
	o := &Object{
		name:           of.Name,
		resource:       cmp.Or(of.Resource, of.Name),
		schemas:        of.Schemas,
		byName:         map[string]*Property{},
		templates:      map[string]map[string]any{},
		updateMethod:   updatePatch,
		mappings:       map[Operation][]*TaskMapping{},
		onMissing:      map[Operation]string{},
		ignoreUnmapped: of.UnmappedAttributes == "ignore",
	}
	if o.name == "" {
		pr.add(at.with("name"), "an object needs a name")
	}
	for i, pf := range of.Properties {
		pat := at.with("properties", i)
		p, ok := compileProperty(pr, pat, o, pf)
		if !ok {
			continue
		}
		if _, dup := o.byName[p.name]; dup {
			pr.add(pat.with("name"), "property %q is defined twice in object %s", p.name, o.name)
			continue
		}
		o.byName[p.name] = p
		o.props = append(o.props, p)
		if p.isKey {
			o.keys = append(o.keys, p)
		}
	}
	if len(of.Properties) == 0 {
		pr.add(at.with("properties"), "object %s needs at least one property", o.name)
	}
	// "If you have multiple properties, the referenceKeyProperty and the referenceObject must be the
	// same in each of them": the lookup properties differ by design (B and D), the object can't.
	for _, k := range o.keys[min(1, len(o.keys)):] {
		if k.refObject != o.keys[0].refObject {
			i := slices.IndexFunc(of.Properties, func(pf propertyFile) bool { return pf.Name == k.name })
			pr.add(at.with("properties", i, "referenceObject"),
				"several key properties with different referenceObject (%q has %q, %q has %q): Resolve Object ID looks every key up in one resource",
				o.keys[0].name, o.keys[0].refObject, k.name, k.refObject)
		}
	}
	if d := of.Details; d != nil {
		o.reconcileOnUpdate = d.ReconcileOnUpdate
		o.reconcileOnDelete = d.ReconcileOnDelete
		if d.UpdateMethod != "" {
			o.updateMethod = strings.ToLower(d.UpdateMethod)
			if o.updateMethod != updatePatch && o.updateMethod != updatePut {
				pr.add(at.with("details", "UpdateMethod"), "must be one of patch,put (got %q)", d.UpdateMethod)
			}
		}
		for _, t := range d.templates() {
			if t.value == nil {
				continue
			}
			tat := at.with("details", t.name)
			tm, err := parseTemplate(t.value)
			if err != nil {
				pr.add(tat, "template %s: %v", t.name, err)
				continue
			}
			if templateIsPatch(t.name, o.updateMethod) {
				if err := checkPatchTemplate(tm); err != nil {
					pr.add(tat, "template %s: %v", t.name, err)
					continue
				}
			}
			o.templates[t.name] = tm
		}
	}
	for _, opName := range sortedKeys(of.OnMissing) {
		policy := of.OnMissing[opName]
		op, err := ParseOperation(opName)
		allowed := map[Operation][]string{OpUpdate: {"fail", "create", "skip"}, OpDelete: {"skip", "fail"}, OpAddAssignment: {"fail", "skip"}, OpRemoveAssignment: {"fail", "skip"}}[op]
		if err != nil || allowed == nil {
			pr.add(at.with("onMissing", opName), "onMissing applies to Update, Delete, AddAssignment and RemoveAssignment")
			continue
		}
		if !slices.Contains(allowed, policy) {
			pr.add(at.with("onMissing", opName), "must be one of %s (got %q)", strings.Join(allowed, ","), policy)
			continue
		}
		o.onMissing[op] = policy
	}
	for _, opName := range sortedKeys(of.TaskMappings) {
		op, err := ParseOperation(opName)
		if err != nil || !slices.Contains(mappingOperations, op) {
			pr.add(at.with("taskMappings", opName), "task mappings are per operation: one of %s", joinOps(mappingOperations))
			continue
		}
		o.mappings[op] = compileMappings(pr, at.with("taskMappings", opName), o, op, of.TaskMappings[opName])
	}
	return o
}

// templateIsPatch: the template is the base of a PATCH (a PatchOp message) rather than a resource.
func templateIsPatch(name, updateMethod string) bool {
	switch name {
	case "AddAssignmentRequest", "RemoveAssignmentRequest":
		return true
	case "UpdateRequest", "DeleteRequest":
		return updateMethod == updatePatch
	}
	return false
}

func compileProperty(pr *problems, at fieldPath, o *Object, pf propertyFile) (*Property, bool) {
	p := &Property{
		name:        pf.Name,
		typ:         PropertyType(cmp.Or(pf.Type, string(TypeString))),
		isKey:       pf.IsKey,
		multiValued: pf.MultiValued,
		refObject:   pf.ReferenceObject,
		refLookup:   pf.ReferenceLookupProperty,
	}
	if !slices.Contains(propertyTypes, p.typ) {
		pr.add(at.with("type"), "must be one of string,int,long,bool,reference,complex (got %q)", pf.Type)
		return nil, false
	}
	if strings.HasPrefix(pf.Name, "$.") {
		// "The property names starting with $. are interpreted by the connector as a JSON path."
		expr, err := parseJSONPath(pf.Name)
		if err != nil {
			pr.add(at.with("name"), "%v", err)
			return nil, false
		}
		p.expr = expr
		bad := ""
		switch {
		case pf.Path != "":
			bad = "path"
		case pf.IsKey:
			bad = "isKey"
		case pf.ReferenceObject != "":
			bad = "referenceObject"
		case pf.ReferenceLookupProperty != "":
			bad = "referenceLookupProperty"
		case p.typ == TypeReference:
			bad = "type"
		}
		if bad != "" {
			pr.add(at.with(bad), "a JSONPath property (%s) is applied where it points: it can't have %s", pf.Name, bad)
			return nil, false
		}
		return p, true
	}
	pathField := "name"
	if pf.Path != "" {
		pathField = "path"
	}
	path, err := parseAttrPath(cmp.Or(pf.Path, pf.Name), pf.MultiValued)
	if err != nil {
		pr.add(at.with(pathField), "%v", err)
		return nil, false
	}
	p.path = path
	switch {
	case p.isKey:
		if path.isArray() {
			pr.add(at.with("isKey"), "a key identifies one object: %q is multi-valued", pf.Name)
			return nil, false
		}
		if p.typ == TypeComplex || p.typ == TypeReference {
			pr.add(at.with("type"), "a key property must be a string, int, long or bool, not %s", p.typ)
			return nil, false
		}
		// Resolve Object ID: referenceObject defaults to the object's resource, the lookup property
		// to the property's own path.
		p.refObject = cmp.Or(p.refObject, o.resource)
		p.refLookup = cmp.Or(p.refLookup, path.scim())
	case p.typ == TypeReference && p.refObject == "":
		pr.add(at.with("referenceObject"), "a reference needs referenceObject (the resource its values are looked up in, e.g. Users)")
		return nil, false
	case p.refObject != "" && p.refLookup == "":
		pr.add(at.with("referenceLookupProperty"), "a reference needs referenceLookupProperty (the attribute its values are looked up by, e.g. userName)")
		return nil, false
	case p.refObject == "" && p.refLookup != "":
		pr.add(at.with("referenceLookupProperty"), "referenceLookupProperty needs referenceObject")
		return nil, false
	}
	if p.isReference() && p.typ != TypeReference && p.typ != TypeString {
		pr.add(at.with("type"), "a property with referenceObject holds lookup values: type must be reference (or string), not %s", p.typ)
		return nil, false
	}
	if p.isReference() {
		p.typ = TypeReference
	}
	return p, true
}

func compileMappings(pr *problems, at fieldPath, o *Object, op Operation, fms []fieldMappingFile) []*TaskMapping {
	out := make([]*TaskMapping, 0, len(fms))
	seen := map[string]bool{}
	for i, fm := range fms {
		mat := at.with(i)
		p, ok := o.byName[fm.Name]
		if !ok {
			pr.add(mat.with("name"), "unknown property %q%s (object %s has %s)", fm.Name, suggestion(fm.Name, propertyNameList(o)), o.name, propertyNames(o))
			continue
		}
		if p.IsJSONPath() {
			pr.add(mat.with("name"), "%q is a JSONPath property: JSONPath properties are applied on top of the prepared request, not through task mappings", fm.Name)
			continue
		}
		if seen[fm.Name] {
			pr.add(mat.with("name"), "property %q is mapped twice in %s", fm.Name, op)
			continue
		}
		seen[fm.Name] = true
		tm := &TaskMapping{prop: p, multivalue: fm.Multivalue}
		if fm.Action == "" {
			tm.action, tm.defaulted = defaultAction(op, p), true
		} else {
			a, err := parseAction(fm.Action)
			if err != nil {
				pr.add(mat.with("action"), "%v", err)
				continue
			}
			tm.action = a
		}
		if err := checkActionOnPath(tm.action, p); err != nil {
			pr.add(mat.with("action"), "%v", err)
			continue
		}
		if tm.multivalue {
			switch {
			case !p.path.isArray():
				pr.add(mat.with("multivalue"), "%q is not an array path: the addition of properties to the Multivalue attribute works only on array", p.name)
				continue
			case p.path.primitive():
				pr.add(mat.with("multivalue"), "%q is an array of simple values: multivalue groups the properties of one array element (e.g. emails[].value with emails[].type)", p.name)
				continue
			}
		}
		if fm.Value != nil {
			if _, err := p.coerceValues(fm.Value, false); err != nil {
				pr.add(mat.with("value"), "constant for %q %v", p.name, err)
				continue
			}
			tm.value, tm.hasValue = fm.Value, true
		}
		out = append(out, tm)
	}
	return out
}

// checkActionOnPath enforces "Modification works only on objects, not on the array."
func checkActionOnPath(a Action, p *Property) error {
	if a == ActionModify && p.path.isArray() {
		return fmt.Errorf("modify on %q: modification works only on objects, not on the array (use add or remove)", p.name)
	}
	return nil
}

func propertyNames(o *Object) string { return strings.Join(propertyNameList(o), ", ") }

func propertyNameList(o *Object) []string {
	names := make([]string, len(o.props))
	for i, p := range o.props {
		names[i] = p.name
	}
	return names
}

// targetPropertyNames are the properties task mappings and event actions can name (not JSONPaths).
func targetPropertyNames(o *Object) []string {
	var names []string
	for _, p := range o.props {
		if !p.IsJSONPath() {
			names = append(names, p.name)
		}
	}
	return names
}

// parseJSONPath parses a "$." property name with ojg, refusing what can't name a settable location.
func parseJSONPath(name string) (x jp.Expr, err error) {
	defer func() {
		if r := recover(); r != nil {
			x, err = nil, fmt.Errorf("%q is not a valid JSONPath: %v", name, r)
		}
	}()
	x, err = jp.ParseString(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid JSONPath: %v", name, err)
	}
	if len(x) < 2 {
		return nil, fmt.Errorf("%q is not a valid JSONPath: it must name a location below $", name)
	}
	return x, nil
}

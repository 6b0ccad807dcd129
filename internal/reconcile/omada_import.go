package reconcile

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/scimflow/scimflow/internal/yamlschema"
)

// ImportOmada reads an Omada data model in the XML shapes the seed shows and returns the equivalent
// model; WriteYAML then writes it as a scimflow YAML model. source names the input in errors.
//
// Accepted shapes (docs/datamodel.md): a root <object> or any root holding <object> elements
// (directly or in <objects>); in an object, <properties><property name=".." .../></properties>,
// <objectDetails><objectDetail name=".." value=".."/> or with a <largeDataField> template,
// <taskMappings><taskMapping operation=".."><fieldMapping name=".." action=".." multivalue=".."/>,
// and bare <fieldMapping> elements (with an operation attribute, or without action: then they map
// the property in Create, Update, AddAssignment and RemoveAssignment with each operation's default
// action). A root-level <properties> belongs to the document's only object.
func ImportOmada(r io.Reader, source string) (*Model, error) {
	root, err := parseXMLTree(r, source)
	if err != nil {
		return nil, err
	}
	im := &omadaImporter{source: source, lines: map[string]int{}}
	mf := im.document(root)
	if err := joinFieldErrors(im.errs); err != nil {
		return nil, err
	}
	if err := im.validate(mf); err != nil {
		return nil, err
	}
	return compileModel(source, mf, func(at fieldPath) int { return im.line(at.String()) })
}

const (
	maxXMLBytes = 16 << 20
	maxXMLDepth = 64
	maxXMLNodes = 200_000
)

type xmlNode struct {
	name     string
	attrs    []xml.Attr
	children []*xmlNode
	text     strings.Builder
	line     int
}

func (n *xmlNode) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if strings.EqualFold(a.Name.Local, name) {
			return a.Value, true
		}
	}
	return "", false
}

func (n *xmlNode) describe() string {
	if name, ok := n.attr("name"); ok {
		return fmt.Sprintf("<%s name=%q>", n.name, name)
	}
	return "<" + n.name + ">"
}

func parseXMLTree(r io.Reader, source string) (*xmlNode, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxXMLBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", source, err)
	}
	if len(data) > maxXMLBytes {
		return nil, &FieldError{File: source, Message: fmt.Sprintf("larger than %d bytes", maxXMLBytes)}
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	var root *xmlNode
	var stack []*xmlNode
	nodes := 0
	for {
		line, _ := d.InputPos()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, &FieldError{File: source, Line: se.Line, Message: "not well-formed XML: " + se.Msg}
			}
			return nil, &FieldError{File: source, Line: line, Message: "not well-formed XML: " + err.Error()}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			nodes++
			if nodes > maxXMLNodes || len(stack) >= maxXMLDepth {
				return nil, &FieldError{File: source, Line: line, Message: "too many or too deeply nested elements"}
			}
			n := &xmlNode{name: t.Name.Local, attrs: t.Attr, line: line}
			// InputPos before the token is where the previous one ended; the tag starts after any
			// whitespace, so count the newlines up to it.
			if l, _ := d.InputPos(); l > line {
				n.line = l
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, &FieldError{File: source, Line: n.line, Message: "more than one root element"}
				}
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if strings.TrimSpace(string(t)) != "" {
				return nil, &FieldError{File: source, Line: line, Message: "text outside the root element"}
			}
		}
	}
	if root == nil {
		return nil, &FieldError{File: source, Message: "no XML element"}
	}
	return root, nil
}

type omadaImporter struct {
	source string
	lines  map[string]int
	errs   []*FieldError
}

func (im *omadaImporter) fail(n *xmlNode, format string, args ...any) {
	im.errs = append(im.errs, &FieldError{File: im.source, Line: n.line, Field: n.describe(), Message: fmt.Sprintf(format, args...)})
}

func (im *omadaImporter) record(at fieldPath, n *xmlNode) {
	im.lines[at.String()] = n.line
}

// line finds the XML line of a model field, falling back to its closest recorded parent.
func (im *omadaImporter) line(field string) int {
	for f := field; f != ""; {
		if l, ok := im.lines[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}

// checkAttrs refuses attributes the importer does not understand rather than dropping them.
func (im *omadaImporter) checkAttrs(n *xmlNode, allowed ...string) {
	for _, a := range n.attrs {
		if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
			continue
		}
		if !slices.ContainsFunc(allowed, func(s string) bool { return strings.EqualFold(s, a.Name.Local) }) {
			im.fail(n, "unknown attribute %q (allowed: %s)", a.Name.Local, strings.Join(allowed, ", "))
		}
	}
}

func (im *omadaImporter) document(root *xmlNode) modelFile {
	var mf modelFile
	var objects, loose []*xmlNode
	if root.name == "object" {
		objects = []*xmlNode{root}
	} else {
		for _, c := range root.children {
			switch c.name {
			case "object":
				objects = append(objects, c)
			case "objects":
				for _, o := range c.children {
					if o.name != "object" {
						im.fail(o, "unexpected element in <objects>: want <object>")
						continue
					}
					objects = append(objects, o)
				}
			case "properties":
				loose = append(loose, c)
			default:
				im.fail(c, "unexpected element %s under <%s>: want <object>, <objects> or <properties>", c.describe(), root.name)
			}
		}
	}
	if len(objects) == 0 {
		im.fail(root, "no <object> element")
		return mf
	}
	if len(loose) > 0 && len(objects) != 1 {
		im.fail(loose[0], "<properties> outside an <object> belong to the document's only object, but there are %d objects: move them into their <object>", len(objects))
	}
	for i, o := range objects {
		at := fieldPath{"objects", i}
		var extra []*xmlNode
		if i == 0 && len(objects) == 1 {
			extra = loose
		}
		mf.Objects = append(mf.Objects, im.object(o, at, extra))
	}
	return mf
}

// bareMappingOperations are the operations a <fieldMapping> outside any <taskMapping> applies to.
var bareMappingOperations = []Operation{OpCreate, OpUpdate, OpAddAssignment, OpRemoveAssignment}

func (im *omadaImporter) object(n *xmlNode, at fieldPath, looseProps []*xmlNode) objectFile {
	im.record(at, n)
	im.checkAttrs(n, "name", "resource", "schemas", "description", "unmappedAttributes")
	var of objectFile
	of.Name, _ = n.attr("name")
	if of.Name == "" {
		im.fail(n, "an <object> needs a name attribute")
	}
	im.record(at.with("name"), n)
	of.Resource, _ = n.attr("resource")
	of.Description, _ = n.attr("description")
	of.UnmappedAttributes, _ = n.attr("unmappedAttributes")
	if s, ok := n.attr("schemas"); ok {
		of.Schemas = strings.Fields(s)
		im.record(at.with("schemas"), n)
	}
	var mappingCount = map[string]int{}
	addMapping := func(op string, fm fieldMappingFile, el *xmlNode) {
		if of.TaskMappings == nil {
			of.TaskMappings = map[string][]fieldMappingFile{}
		}
		im.record(at.with("taskMappings", op, mappingCount[op]), el)
		mappingCount[op]++
		of.TaskMappings[op] = append(of.TaskMappings[op], fm)
	}
	var fieldMapping func(el *xmlNode, op string)
	fieldMapping = func(el *xmlNode, op string) {
		im.checkAttrs(el, "name", "action", "multivalue", "value", "operation", "description")
		var fm fieldMappingFile
		fm.Name, _ = el.attr("name")
		if fm.Name == "" {
			im.fail(el, "a <fieldMapping> needs a name attribute (a property name such as members[].value)")
			return
		}
		if a, ok := el.attr("action"); ok {
			action, err := parseAction(a)
			if err != nil {
				im.fail(el, "%v", err)
				return
			}
			fm.Action = string(action)
		}
		if mv, ok := el.attr("multivalue"); ok {
			b, err := parseXMLBool(mv)
			if err != nil {
				im.fail(el, "multivalue: %v", err)
				return
			}
			fm.Multivalue = b
		}
		if v, ok := el.attr("value"); ok {
			fm.Value = v
		}
		fm.Description, _ = el.attr("description")
		if own, ok := el.attr("operation"); ok {
			o, err := ParseOperation(own)
			if err != nil || !slices.Contains(mappingOperations, o) {
				im.fail(el, "operation must be one of %s, got %q", joinOps(mappingOperations), own)
				return
			}
			if op != "" && op != own {
				im.fail(el, "operation %q contradicts the enclosing <taskMapping operation=%q>", own, op)
				return
			}
			op = own
		}
		if op != "" {
			addMapping(op, fm, el)
			return
		}
		if fm.Action != "" {
			im.fail(el, "a <fieldMapping> with an action needs an operation: wrap it in <taskMapping operation=\"Update\"> or add operation=\"...\"")
			return
		}
		for _, o := range bareMappingOperations {
			addMapping(string(o), fm, el)
		}
	}
	properties := func(ps *xmlNode) {
		im.checkAttrs(ps)
		for _, p := range ps.children {
			if p.name != "property" {
				im.fail(p, "unexpected element in <properties>: want <property>")
				continue
			}
			pat := at.with("properties", len(of.Properties))
			im.record(pat, p)
			if pf, ok := im.property(p); ok {
				of.Properties = append(of.Properties, pf)
			}
		}
	}
	for _, ps := range looseProps {
		properties(ps)
	}
	for _, c := range n.children {
		switch c.name {
		case "properties":
			properties(c)
		case "objectDetails":
			im.checkAttrs(c)
			for _, d := range c.children {
				if d.name != "objectDetail" {
					im.fail(d, "unexpected element in <objectDetails>: want <objectDetail>")
					continue
				}
				if of.Details == nil {
					of.Details = &detailsFile{}
				}
				im.objectDetail(d, at, of.Details)
			}
		case "taskMappings":
			im.checkAttrs(c)
			for _, t := range c.children {
				if t.name != "taskMapping" {
					im.fail(t, "unexpected element in <taskMappings>: want <taskMapping operation=...>")
					continue
				}
				im.taskMapping(t, fieldMapping)
			}
		case "taskMapping":
			im.taskMapping(c, fieldMapping)
		case "fieldMappings":
			im.checkAttrs(c)
			for _, f := range c.children {
				if f.name != "fieldMapping" {
					im.fail(f, "unexpected element in <fieldMappings>: want <fieldMapping>")
					continue
				}
				fieldMapping(f, "")
			}
		case "fieldMapping":
			fieldMapping(c, "")
		case "schemas":
			im.checkAttrs(c)
			im.record(at.with("schemas"), c)
			for _, s := range c.children {
				if s.name != "schema" {
					im.fail(s, "unexpected element in <schemas>: want <schema>")
					continue
				}
				of.Schemas = append(of.Schemas, strings.TrimSpace(s.text.String()))
			}
		default:
			im.fail(c, "unexpected element %s in <object>: want <properties>, <objectDetails>, <taskMappings>, <taskMapping>, <fieldMapping> or <schemas>", c.describe())
		}
	}
	return of
}

func (im *omadaImporter) taskMapping(t *xmlNode, fieldMapping func(*xmlNode, string)) {
	im.checkAttrs(t, "operation")
	op, _ := t.attr("operation")
	o, err := ParseOperation(op)
	if err != nil || !slices.Contains(mappingOperations, o) {
		im.fail(t, "<taskMapping> needs operation, one of %s (got %q)", joinOps(mappingOperations), op)
		return
	}
	for _, f := range t.children {
		if f.name != "fieldMapping" {
			im.fail(f, "unexpected element in <taskMapping>: want <fieldMapping>")
			continue
		}
		fieldMapping(f, op)
	}
}

func (im *omadaImporter) property(p *xmlNode) (propertyFile, bool) {
	im.checkAttrs(p, "name", "type", "isKey", "multiValued", "referenceObject", "referenceLookupProperty", "referenceKeyProperty", "path", "description")
	var pf propertyFile
	pf.Name, _ = p.attr("name")
	if pf.Name == "" {
		im.fail(p, "a <property> needs a name attribute")
		return pf, false
	}
	pf.Path, _ = p.attr("path")
	pf.Description, _ = p.attr("description")
	pf.ReferenceObject, _ = p.attr("referenceObject")
	pf.ReferenceLookupProperty, _ = p.attr("referenceLookupProperty")
	if alias, ok := p.attr("referenceKeyProperty"); ok {
		if pf.ReferenceLookupProperty != "" && pf.ReferenceLookupProperty != alias {
			im.fail(p, "referenceKeyProperty %q contradicts referenceLookupProperty %q", alias, pf.ReferenceLookupProperty)
			return pf, false
		}
		pf.ReferenceLookupProperty = alias
	}
	if t, ok := p.attr("type"); ok {
		typ, err := parseOmadaType(t)
		if err != nil {
			im.fail(p, "%v", err)
			return pf, false
		}
		pf.Type = typ
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"isKey", &pf.IsKey}, {"multiValued", &pf.MultiValued}} {
		if v, ok := p.attr(b.name); ok {
			val, err := parseXMLBool(v)
			if err != nil {
				im.fail(p, "%s: %v", b.name, err)
				return pf, false
			}
			*b.dst = val
		}
	}
	return pf, true
}

// parseOmadaType accepts our type names and Omada's (intType, longType, referenceType, ...).
func parseOmadaType(t string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(t))
	s = strings.TrimSuffix(s, "type")
	switch s {
	case "boolean":
		s = "bool"
	case "integer":
		s = "int"
	}
	if slices.Contains(propertyTypes, PropertyType(s)) {
		return s, nil
	}
	return "", fmt.Errorf("unknown type %q: want string, int, long, bool, reference or complex (Omada's intType, longType, ... are accepted too)", t)
}

func parseXMLBool(s string) (bool, error) {
	b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(s)))
	if err != nil {
		return false, fmt.Errorf("want True or False, got %q", s)
	}
	return b, nil
}

func (im *omadaImporter) objectDetail(d *xmlNode, at fieldPath, det *detailsFile) {
	im.checkAttrs(d, "name", "value")
	name, _ := d.attr("name")
	value, hasValue := d.attr("value")
	var large *xmlNode
	for _, c := range d.children {
		if c.name != "largeDataField" || large != nil {
			im.fail(c, "unexpected element in <objectDetail>: want one <largeDataField>")
			continue
		}
		large = c
	}
	switch {
	case large != nil && hasValue:
		im.fail(d, "give the detail either a value attribute or a <largeDataField>, not both")
		return
	case large != nil:
		value = large.text.String()
	case !hasValue:
		value = d.text.String()
	}
	value = strings.TrimSpace(value)
	known := []string{"CreateRequest", "UpdateRequest", "DeleteRequest", "AddAssignmentRequest", "RemoveAssignmentRequest", "ReconcileOnUpdate", "ReconcileOnDelete", "UpdateMethod"}
	i := slices.IndexFunc(known, func(k string) bool { return strings.EqualFold(k, name) })
	if i < 0 {
		im.fail(d, "unknown object detail %q: scimflow understands {Operation}Request for Create, Update, Delete, AddAssignment and RemoveAssignment, ReconcileOnUpdate, ReconcileOnDelete and UpdateMethod", name)
		return
	}
	name = known[i]
	im.record(at.with("details", name), d)
	switch name {
	case "ReconcileOnUpdate", "ReconcileOnDelete":
		b, err := parseXMLBool(value)
		if err != nil {
			im.fail(d, "%s: %v", name, err)
			return
		}
		if name == "ReconcileOnUpdate" {
			det.ReconcileOnUpdate = b
		} else {
			det.ReconcileOnDelete = b
		}
	case "UpdateMethod":
		det.UpdateMethod = strings.ToLower(value)
	default:
		// Keep the template's own key order, indented for the YAML file; invalid JSON is kept as it
		// is and reported by the model check with its line.
		var b bytes.Buffer
		if err := json.Indent(&b, []byte(value), "", "  "); err == nil {
			value = b.String()
		}
		det.setTemplate(name, value)
	}
}

// validate checks the imported model against the data-model schema, reporting XML lines.
func (im *omadaImporter) validate(mf modelFile) error {
	raw, err := yaml.Marshal(mf)
	if err != nil {
		return fmt.Errorf("import %s: %w", im.source, err)
	}
	_, err = yamlschema.Parse(im.source, raw, datamodelSchema, yamlschema.Options{})
	var ye *yamlschema.Error
	if !errors.As(err, &ye) {
		return err
	}
	errs := make([]*FieldError, len(ye.Problems))
	for i := range ye.Problems {
		errs[i] = &ye.Problems[i]
		errs[i].Line = im.line(errs[i].Field)
	}
	return joinFieldErrors(errs)
}

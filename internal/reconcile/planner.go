package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Change is one identity change (the data of an event, DESIGN.md §3).
type Change struct {
	Object     string
	Operation  Operation
	Key        map[string]any    // values of the object's isKey properties by property name
	Attributes map[string]any    // property values by property name ($. names are JSONPath properties)
	Actions    map[string]string // optional per-event override of a mapping's action: add|modify|remove
	// ResolveFirst (Create only): look the object up by key first and converge it if it exists (set
	// on redelivery, replay, and after a 409 on POST).
	ResolveFirst bool
	// DeferUnresolved: reference values with action add or modify whose objects don't exist yet (a
	// manager or a member created later in the same batch) are left out of the plan instead of
	// failing it with *UnresolvedReferenceError. Plan.Unresolved lists them and Plan.FollowUp
	// returns the change that sets them once they exist. Remove actions are unaffected (a value
	// that names nothing is already absent).
	DeferUnresolved bool
	// NoCreate: never create the object. Where it is missing, a Create (which then resolves its
	// key first, as with ResolveFirst), an Upsert and an onMissing create policy fail with
	// ErrObjectNotFound. Plan.FollowUp sets it: a follow-up completes an object, it must not create
	// one from the few attributes it carries.
	NoCreate bool
}

// Options tune request building.
type Options struct {
	// UseNumericValues sends int and long values as JSON numbers, and reference values too when the
	// resolved id is an integer (the seed's "Use numeric values"). Off: they are sent as strings.
	UseNumericValues bool
}

// Planner turns changes into plans. It is safe for concurrent use.
type Planner struct {
	m   *Model
	opt Options
}

// NewPlanner returns a planner for m.
func NewPlanner(m *Model, opt Options) *Planner {
	return &Planner{m: m, opt: opt}
}

// Plan resolves the change against the target (read-only: Resolve and Get) and returns the requests
// that carry it out. Every error it returns is one of: ErrInvalidChange, ErrModel,
// ErrObjectNotFound, ErrTargetResponse (errors.Is), *UnresolvedReferenceError (errors.As), or an
// error of the Reader wrapped with %w (errors.Is/As find it).
func (p *Planner) Plan(ctx context.Context, r Reader, ch Change) (*Plan, error) {
	run, err := p.prepare(ch)
	if err == nil {
		run.ctx, run.r = ctx, r
		var plan *Plan
		plan, err = run.run()
		if err == nil {
			run.finish()
			return plan, nil
		}
	}
	return nil, fmt.Errorf("plan %s of %s %s: %w", ch.Operation, ch.Object, describeKey(ch.Key), err)
}

func describeKey(key map[string]any) string {
	parts := make([]string, 0, len(key))
	for _, k := range sortedKeys(key) {
		parts = append(parts, fmt.Sprintf("%s=%s", k, describe(key[k])))
	}
	if len(parts) == 0 {
		return "(no key)"
	}
	return strings.Join(parts, " ")
}

// planRun is the state of planning one change.
type planRun struct {
	ctx       context.Context
	r         Reader
	opt       Options
	obj       *Object
	ch        Change
	keyValues map[string]any    // key property → value for the body
	keyText   map[string]string // key property → value for lookups
	attrs     map[string][]any  // property → coerced values (references: lookup values)
	jsonAttrs map[string]any    // JSONPath property → raw value
	actions   map[string]Action
	refs      map[string]refResult
	plan      *Plan
	absent    []string         // references a remove dropped because they name nothing (for Skipped)
	mapOp     Operation        // whose task mappings the plan applied
	mapped    []*rule          // the rules of mapOp
	deferred  map[string][]int // property → indices of its values left out (DeferUnresolved)
}

type refResult struct {
	id    string
	found bool
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidChange, fmt.Sprintf(format, args...))
}

func (p *Planner) prepare(ch Change) (*planRun, error) {
	obj, ok := p.m.Object(ch.Object)
	if !ok {
		return nil, invalid("unknown object %q%s (the data model has %s)", ch.Object, suggestion(ch.Object, p.m.objectNameList()), p.m.objectNames())
	}
	if !ch.Operation.valid() {
		return nil, invalid("unknown operation %q: want one of %s", ch.Operation, joinOps(operations))
	}
	run := &planRun{
		opt: p.opt, obj: obj, ch: ch,
		keyValues: map[string]any{}, keyText: map[string]string{},
		attrs: map[string][]any{}, jsonAttrs: map[string]any{}, actions: map[string]Action{},
		refs: map[string]refResult{},
		plan: &Plan{Object: obj.name, Resource: obj.resource, Operation: ch.Operation},
	}
	for _, name := range sortedKeys(ch.Key) {
		if prop, ok := obj.byName[name]; !ok || !prop.isKey {
			return nil, invalid("key %q is not a key property of %s%s (keys: %s)", name, obj.name, suggestion(name, obj.KeyNames()), strings.Join(obj.KeyNames(), ", "))
		}
	}
	for _, k := range obj.keys {
		v, ok := ch.Key[k.name]
		if !ok || v == nil {
			return nil, invalid("key %q of %s is missing", k.name, obj.name)
		}
		vals, err := k.coerceValues(v, p.opt.UseNumericValues)
		if err != nil {
			return nil, invalid("key %q of %s: %v", k.name, obj.name, err)
		}
		text, _ := scalarText(vals[0])
		if text == "" {
			return nil, invalid("key %q of %s is empty", k.name, obj.name)
		}
		run.keyValues[k.name], run.keyText[k.name] = vals[0], text
	}
	if len(obj.keys) > 0 {
		run.plan.KeyResource, run.plan.Key = obj.keyResource(), run.keyMatch()
	}
	for _, name := range sortedKeys(ch.Attributes) {
		prop, ok := obj.byName[name]
		if !ok {
			return nil, invalid("unknown property %q of %s%s (properties: %s)", name, obj.name, suggestion(name, propertyNameList(obj)), propertyNames(obj))
		}
		v := ch.Attributes[name]
		if prop.IsJSONPath() {
			run.jsonAttrs[name] = v
			continue
		}
		vals, err := prop.coerceValues(v, p.opt.UseNumericValues)
		if err != nil {
			return nil, invalid("attribute %q of %s: %v", name, obj.name, err)
		}
		run.attrs[name] = vals
	}
	for _, name := range sortedKeys(ch.Actions) {
		prop, ok := obj.byName[name]
		if !ok || prop.IsJSONPath() {
			return nil, invalid("actions names %q, which is not a mapped property of %s%s", name, obj.name, suggestion(name, targetPropertyNames(obj)))
		}
		a, err := parseAction(ch.Actions[name])
		if err != nil || string(a) != strings.ToLower(ch.Actions[name]) {
			return nil, invalid("action of %q: want add, modify or remove, got %q", name, ch.Actions[name])
		}
		if err := checkActionOnPath(a, prop); err != nil {
			return nil, invalid("actions: %v", err)
		}
		run.actions[name] = a
	}
	return run, nil
}

// finish completes a plan that planned without error.
func (run *planRun) finish() {
	if len(run.plan.Unresolved) > 0 {
		run.plan.followUp = run.followUp()
	}
	if len(run.plan.Requests) > 0 {
		return
	}
	// The generic reasons ("no task mapping of the event yields an operation", "already in the
	// desired state") hide why: say what was absent and what is still missing.
	var why []string
	if len(run.absent) > 0 {
		why = append(why, "nothing to change: "+strings.Join(run.absent, "; "))
	}
	if len(run.plan.Unresolved) > 0 {
		refs := make([]string, len(run.plan.Unresolved))
		for i, u := range run.plan.Unresolved {
			refs[i] = u.String()
		}
		why = append(why, "nothing to send until the referenced objects exist: "+strings.Join(refs, "; ")+" (Plan.FollowUp sets them)")
	}
	if len(why) > 0 {
		run.plan.Skipped = strings.Join(why, "; ")
	}
}

func (run *planRun) note(format string, args ...any) {
	run.plan.Notes = append(run.plan.Notes, fmt.Sprintf(format, args...))
}

func (run *planRun) run() (*Plan, error) {
	obj := run.obj
	switch run.ch.Operation {
	case OpCreate:
		if !run.ch.ResolveFirst && !run.ch.NoCreate {
			return run.create()
		}
		found, err := run.resolveID()
		if err != nil {
			return nil, err
		}
		if !found {
			if run.ch.NoCreate {
				return nil, run.noCreate()
			}
			return run.create()
		}
		run.note("object exists (id %s): Create converges it with an update", run.plan.ObjectID)
		return run.write(writeSpec{mapOp: OpCreate, converge: true, reconcile: obj.reconcileOnUpdate, put: obj.updateMethod == updatePut, template: convergeTemplate(obj)})
	case OpUpsert:
		found, err := run.resolveID()
		if err != nil {
			return nil, err
		}
		if !found {
			if run.ch.NoCreate {
				return nil, run.noCreate()
			}
			run.note("Upsert: no %s where %s: creating it", obj.resource, describeMatch(run.keyMatch()))
			return run.create()
		}
		run.note("Upsert: %s exists (id %s): updating it", obj.name, run.plan.ObjectID)
		return run.update()
	case OpUpdate:
		found, err := run.resolveID()
		if err != nil {
			return nil, err
		}
		if !found {
			return run.missing()
		}
		return run.update()
	case OpDelete:
		found, err := run.resolveID()
		if err != nil {
			return nil, err
		}
		if !found {
			return run.missing()
		}
		if obj.softDelete() {
			run.note("soft delete: %s has Delete task mappings or a DeleteRequest template, so Delete writes the object instead of deleting it", obj.name)
			return run.write(writeSpec{mapOp: OpDelete, reconcile: obj.reconcileOnDelete, put: obj.updateMethod == updatePut, template: "DeleteRequest"})
		}
		if _, err := run.rules(OpDelete, false); err != nil { // attributes of a hard delete are unmapped
			return nil, err
		}
		run.plan.Requests = []Request{{Method: "DELETE", Path: run.objectPath()}}
		return run.plan, nil
	case OpAddAssignment, OpRemoveAssignment:
		found, err := run.resolveID()
		if err != nil {
			return nil, err
		}
		if !found {
			return run.missing()
		}
		reconcile := obj.reconcileOnUpdate
		if run.ch.Operation == OpRemoveAssignment {
			reconcile = obj.reconcileOnDelete
		}
		return run.write(writeSpec{mapOp: run.ch.Operation, reconcile: reconcile, put: reconcile && obj.updateMethod == updatePut, template: string(run.ch.Operation) + "Request"})
	}
	return nil, invalid("unknown operation %q", run.ch.Operation)
}

func convergeTemplate(o *Object) string {
	if o.updateMethod == updatePut {
		return "CreateRequest"
	}
	return ""
}

func (run *planRun) update() (*Plan, error) {
	o := run.obj
	return run.write(writeSpec{mapOp: OpUpdate, reconcile: o.reconcileOnUpdate, put: o.updateMethod == updatePut, template: "UpdateRequest"})
}

func (run *planRun) missing() (*Plan, error) {
	op, obj := run.ch.Operation, run.obj
	what := fmt.Sprintf("no %s where %s", obj.resource, describeMatch(run.keyMatch()))
	switch obj.missingPolicy(op) {
	case "skip":
		if op == OpDelete {
			run.plan.Skipped = what + ": already absent"
			run.plan.Absent = true
		} else {
			run.plan.Skipped = fmt.Sprintf("%s (onMissing %s: skip)", what, op)
		}
		return run.plan, nil
	case "create":
		if run.ch.NoCreate {
			return nil, run.noCreate()
		}
		run.note("%s: onMissing %s is create, so the object is created", what, op)
		return run.create()
	}
	return nil, fmt.Errorf("%w: %s", ErrObjectNotFound, what)
}

func (run *planRun) noCreate() error {
	return fmt.Errorf("%w: no %s where %s, and the change may not create it (NoCreate: it completes an earlier change of the object)",
		ErrObjectNotFound, run.obj.resource, describeMatch(run.keyMatch()))
}

func (run *planRun) keyMatch() []Match {
	ms := make([]Match, len(run.obj.keys))
	for i, k := range run.obj.keys {
		ms[i] = Match{Attr: k.refLookup, Value: run.keyText[k.name]}
	}
	return ms
}

// resolveID is the seed's Resolve Object ID: every isKey property, joined with "and", looked up in
// the keys' referenceObject.
func (run *planRun) resolveID() (bool, error) {
	obj := run.obj
	if len(obj.keys) == 0 {
		return false, fmt.Errorf("%w: object %s has no isKey property, so %s can't find the object (Resolve Object ID)", ErrModel, obj.name, run.ch.Operation)
	}
	ms := run.keyMatch()
	id, found, err := run.r.Resolve(run.ctx, obj.keyResource(), ms)
	if err != nil {
		return false, fmt.Errorf("resolve %s where %s: %w", obj.keyResource(), describeMatch(ms), err)
	}
	if found && id == "" {
		return false, fmt.Errorf("%w: resolve %s where %s: the target returned a match without an id", ErrTargetResponse, obj.keyResource(), describeMatch(ms))
	}
	if found {
		run.plan.ObjectID = id
	}
	return found, nil
}

func (run *planRun) objectPath() string {
	return run.obj.resource + "/" + url.PathEscape(run.plan.ObjectID)
}

// rules builds the task-mapping rules of the change for the mappings of op.
func (run *planRun) rules(op Operation, converge bool) ([]*rule, error) {
	obj := run.obj
	mappings, explicit := obj.mappings[op]
	if !explicit {
		// Default mappings (docs/datamodel.md); Delete has none.
		if op != OpDelete {
			for _, p := range obj.props {
				if _, has := run.attrs[p.name]; has {
					mappings = append(mappings, &TaskMapping{prop: p, action: defaultAction(op, p), defaulted: true,
						multivalue: p.path.isArray() && !p.path.primitive()})
				}
			}
		}
	}
	var out []*rule
	covered := map[string]bool{}
	for _, tm := range mappings {
		name := tm.prop.name
		vals, has := run.attrs[name]
		var extras []string
		if !explicit {
			extras = append(extras, "default mapping")
		}
		if !has {
			if !tm.hasValue {
				continue
			}
			v, err := tm.prop.coerceValues(tm.value, run.opt.UseNumericValues)
			if err != nil {
				return nil, fmt.Errorf("%w: constant of task mapping %q (%s): %v", ErrModel, name, op, err)
			}
			vals = v
			extras = append(extras, "constant value")
		}
		covered[name] = true
		action := tm.action
		if a, ok := run.actions[name]; ok {
			action = a
			extras = append(extras, "action from event")
		}
		if converge && action == ActionAdd && !tm.prop.MultiValued() {
			action = ActionModify
			extras = append(extras, "Create converging an existing object")
		}
		if err := checkActionOnPath(action, tm.prop); err != nil {
			return nil, invalid("%v", err)
		}
		origin := fmt.Sprintf("task mapping %q (%s, %s", name, action, op)
		if len(extras) > 0 {
			origin += "; " + strings.Join(extras, "; ")
		}
		origin += ")"
		out = append(out, &rule{prop: tm.prop, action: action, multivalue: tm.multivalue, values: append([]any(nil), vals...), origin: origin})
	}
	for _, name := range sortedKeys(run.attrs) {
		if covered[name] {
			continue
		}
		if p := obj.byName[name]; p.isKey && op == OpCreate {
			continue // written as the key (checked against it in create)
		}
		if obj.ignoreUnmapped {
			run.note("attribute %q is not mapped for %s: ignored (unmappedAttributes: ignore)", name, op)
			continue
		}
		return nil, invalid("attribute %q has no task mapping for %s in object %s (map it, or set unmappedAttributes: ignore)", name, op, obj.name)
	}
	if !run.writes() {
		for _, name := range sortedKeys(run.jsonAttrs) {
			if obj.ignoreUnmapped {
				run.note("JSONPath property %q can't apply: %s sends no body", name, op)
				continue
			}
			return nil, invalid("JSONPath property %q can't apply: %s of %s sends no body", name, op, obj.name)
		}
	}
	run.mapOp, run.mapped = op, out
	return out, run.resolveReferences(out)
}

// writes: the operation sends a body (everything but a hard delete).
func (run *planRun) writes() bool {
	return run.ch.Operation != OpDelete || run.obj.softDelete()
}

// resolveReferences is the seed's Resolve Reference Property: each value of a non-key property
// with a referenceObject is looked up and replaced by the referenced object's id.
func (run *planRun) resolveReferences(rules []*rule) error {
	for _, r := range rules {
		if !r.prop.isReference() {
			continue
		}
		for i, v := range r.values {
			lookup, ok := v.(string)
			if !ok {
				continue // nil: no value
			}
			ms := []Match{{Attr: r.prop.refLookup, Value: lookup}}
			cacheKey := r.prop.refObject + "\x00" + r.prop.refLookup + "\x00" + lookup
			res, ok := run.refs[cacheKey]
			if !ok {
				id, found, err := run.r.Resolve(run.ctx, r.prop.refObject, ms)
				if err != nil {
					return fmt.Errorf("resolve reference %q: %s where %s: %w", r.prop.name, r.prop.refObject, describeMatch(ms), err)
				}
				if found && id == "" {
					return fmt.Errorf("%w: resolve reference %q: %s where %s: the target returned a match without an id", ErrTargetResponse, r.prop.name, r.prop.refObject, describeMatch(ms))
				}
				res = refResult{id: id, found: found}
				run.refs[cacheKey] = res
			}
			if !res.found {
				if r.action == ActionRemove {
					r.values[i] = droppedValue{}
					run.note("reference %q: no %s where %s, so there is nothing to remove", r.prop.name, r.prop.refObject, describeMatch(ms))
					clause := fmt.Sprintf("%s %q is already absent (no %s where %s)", r.prop.name, lookup, r.prop.refObject, describeMatch(ms))
					if !slices.Contains(run.absent, clause) {
						run.absent = append(run.absent, clause)
					}
					continue
				}
				if run.ch.DeferUnresolved {
					r.values[i] = droppedValue{}
					run.deferReference(r, i, lookup, ms)
					continue
				}
				return &UnresolvedReferenceError{Property: r.prop.name, Resource: r.prop.refObject, Match: ms}
			}
			r.values[i] = run.referenceValue(res.id)
		}
	}
	return nil
}

// referenceValue: "For referenceType properties, the value is only set as a numeric value if the
// resolved value can be converted to a numeric value." Only canonical integers convert, so an id
// such as "007" keeps its text.
func (run *planRun) referenceValue(id string) any {
	if run.opt.UseNumericValues {
		if n, err := strconv.ParseInt(id, 10, 64); err == nil && strconv.FormatInt(n, 10) == id {
			return json.Number(id)
		}
	}
	return id
}

// base returns a fresh copy of the named template (or an empty object) and how to name it.
func (run *planRun) base(template string) (map[string]any, string) {
	if t, ok := run.obj.templates[template]; ok && template != "" {
		return cloneJSON(t).(map[string]any), "template " + template
	}
	return map[string]any{}, "no template"
}

// ensureObjectSchemas: "For every operation ... one of the JSON body properties must be schemas."
func (run *planRun) ensureObjectSchemas(d *document) {
	if _, ok := d.root["schemas"]; ok || len(run.obj.schemas) == 0 {
		return
	}
	list := make([]any, len(run.obj.schemas))
	for i, s := range run.obj.schemas {
		list[i] = s
	}
	d.root["schemas"] = list
	d.provSet([]string{"schemas"}, "object schemas")
}

// writeKeys writes the key values into a resource body.
func (run *planRun) writeKeys(d *document) error {
	for _, k := range run.obj.keys {
		origin := fmt.Sprintf("key %q", k.name)
		if err := d.set(k.path.segs, run.keyValues[k.name], origin, k.name); err != nil {
			return err
		}
		d.ensureSchema(k.path.urn, origin)
	}
	return nil
}

func (run *planRun) applyJSONPaths(d *document, where string) error {
	for _, p := range run.obj.props {
		raw, ok := run.jsonAttrs[p.name]
		if !ok {
			continue
		}
		v, err := jsonPathValue(p, raw, run.opt.UseNumericValues)
		if err != nil {
			return invalid("JSONPath property %q of %s: %v", p.name, run.obj.name, err)
		}
		if err := setJSONPath(d, p, v, run.obj.name, where); err != nil {
			return err
		}
	}
	return nil
}

func (run *planRun) create() (*Plan, error) {
	rules, err := run.rules(OpCreate, false)
	if err != nil {
		return nil, err
	}
	for _, k := range run.obj.keys {
		if vals, ok := run.attrs[k.name]; ok && !jsonEqual(vals[0], run.keyValues[k.name]) {
			return nil, invalid("Create of %s: key %q is %s but attribute %q is %s", run.obj.name, k.name, describe(run.keyValues[k.name]), k.name, describe(vals[0]))
		}
	}
	base, where := run.base("CreateRequest")
	d := newDocument(base, templateOrigin(where))
	run.ensureObjectSchemas(d)
	if err := run.writeKeys(d); err != nil {
		return nil, err
	}
	for _, s := range groupSteps(rules) {
		if err := d.apply(s); err != nil {
			return nil, err
		}
	}
	if err := run.applyJSONPaths(d, where); err != nil {
		return nil, err
	}
	run.plan.Notes = append(run.plan.Notes, d.removed...)
	return run.plan, run.send("POST", run.obj.resource, d.root, d.sources())
}

func templateOrigin(where string) string {
	if where == "no template" {
		return ""
	}
	return where
}

func (run *planRun) send(method, path string, body map[string]any, sources []Source) error {
	raw, err := marshalJSON(body)
	if err != nil {
		return fmt.Errorf("%w: encode the %s body: %v", ErrModel, method, err)
	}
	run.plan.Requests = append(run.plan.Requests, Request{Method: method, Path: path, Body: raw, Sources: sources})
	return nil
}

// writeSpec says how an operation that changes an existing object builds its request.
type writeSpec struct {
	mapOp     Operation // whose task mappings apply
	converge  bool      // Create rules applied as an update
	reconcile bool      // merge into the current object
	put       bool      // PUT a whole body rather than PATCH
	template  string    // base of a non-reconciled request ("" for none)
}

func (run *planRun) write(ws writeSpec) (*Plan, error) {
	rules, err := run.rules(ws.mapOp, ws.converge)
	if err != nil {
		return nil, err
	}
	run.detectRekey(rules, !ws.reconcile && !ws.put)
	steps := groupSteps(rules)
	path := run.objectPath()
	switch {
	case ws.reconcile:
		return run.plan, run.writeReconciled(steps, path, ws.put)
	case ws.put:
		if !slices.ContainsFunc(rules, (*rule).applies) && len(run.jsonAttrs) == 0 {
			// Without a rule left, the PUT would replace the object with its keys alone.
			run.plan.Skipped = "nothing to change: no task mapping of the event applies"
			return run.plan, nil
		}
		run.note("%s PUTs without reconciliation: the body built from the event replaces the whole object", run.obj.name)
		base, where := run.base(ws.template)
		d := newDocument(base, templateOrigin(where))
		run.ensureObjectSchemas(d)
		if err := run.writeKeys(d); err != nil {
			return nil, err
		}
		for _, s := range steps {
			if err := d.apply(s); err != nil {
				return nil, err
			}
		}
		if err := run.applyJSONPaths(d, where); err != nil {
			return nil, err
		}
		run.plan.Notes = append(run.plan.Notes, d.removed...)
		return run.plan, run.send("PUT", path, d.root, d.sources())
	}
	base, where := run.base(ws.template)
	d := newDocument(base, templateOrigin(where))
	if _, ok := d.root["schemas"]; !ok {
		d.root["schemas"] = []any{patchOpSchema}
		d.provSet([]string{"schemas"}, "PatchOp message (RFC 7644 §3.5.2)")
	}
	ops, err := derivePatchOps(steps)
	if err != nil {
		return nil, err
	}
	list, _ := d.root["Operations"].([]any)
	for _, op := range ops {
		idx := strconv.Itoa(len(list))
		list = append(list, op.op)
		for _, r := range op.rules {
			d.prov = append(d.prov, provEntry{ptr: []string{"Operations", idx}, rule: r})
		}
	}
	if list == nil {
		list = []any{}
	}
	d.root["Operations"] = list
	if err := run.applyJSONPaths(d, where); err != nil {
		return nil, err
	}
	if ops, _ := d.root["Operations"].([]any); len(ops) == 0 {
		run.plan.Skipped = "nothing to change: no task mapping of the event yields an operation"
		return run.plan, nil
	}
	return run.plan, run.send("PATCH", path, d.root, d.sources())
}

// detectRekey sets Plan.Rekey when a rule writes a key property of the existing object with a
// value other than the event's key. modify always writes; add writes only in a PATCH derived from
// the mappings (RFC 7644 §3.5.2.1: add on a single-valued attribute replaces it): merged into a
// body that already holds the key (a PUT body, the current object) add keeps the old value.
// Values are compared exactly: see docs/datamodel.md §3 for why a change of case counts.
func (run *planRun) detectRekey(rules []*rule, derivedPatch bool) {
	renamed := map[string]string{}
	for _, r := range rules {
		if !r.prop.isKey || !(r.action == ActionModify || r.action == ActionAdd && derivedPatch) {
			continue
		}
		text, ok := scalarText(r.values[0])
		if ok && text != "" && text != run.keyText[r.prop.name] {
			renamed[r.prop.name] = text
		}
	}
	if len(renamed) == 0 {
		return
	}
	old := run.keyMatch()
	next := make([]Match, len(old))
	for i, k := range run.obj.keys {
		next[i] = Match{Attr: old[i].Attr, Value: cmp.Or(renamed[k.name], old[i].Value)}
	}
	run.plan.Rekey = &Rekey{Resource: run.obj.keyResource(), Old: old, New: next}
	run.note("rename: the key changes from %s to %s (Plan.Rekey)", describeMatch(old), describeMatch(next))
}

// writeReconciled: "the first step is taking the object/entity that is being read from an
// external system (SCIM server). Then, each task mapping rule is merged into this object based on
// the action and multivalued attributes. The result of this operation is then sent".
func (run *planRun) writeReconciled(steps []step, path string, put bool) error {
	raw, err := run.r.Get(run.ctx, run.obj.resource, run.plan.ObjectID)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	norm, err := normalizeJSON(raw)
	if err != nil {
		return fmt.Errorf("%w: read %s: the object is not JSON: %v", ErrTargetResponse, path, err)
	}
	cur, ok := norm.(map[string]any)
	if !ok {
		return fmt.Errorf("%w: read %s: the target returned %s, not an object", ErrTargetResponse, path, describe(norm))
	}
	delete(cur, "meta")
	d := newDocument(cloneJSON(cur).(map[string]any), "reconciled from current object (GET "+path+", meta removed)")
	for _, s := range steps {
		if err := d.apply(s); err != nil {
			return err
		}
	}
	if err := run.applyJSONPaths(d, "current object "+path); err != nil {
		return err
	}
	run.plan.Notes = append(run.plan.Notes, d.removed...)
	if jsonEqual(cur, d.root) {
		run.plan.Skipped = "already in the desired state"
		run.plan.Current, _ = marshalJSON(raw)
		return nil
	}
	if put {
		return run.send("PUT", path, d.root, d.sources())
	}
	ops := diffPatchOps(cur, d.root, d.touched)
	if len(ops) == 0 {
		run.plan.Skipped = "already in the desired state"
		run.plan.Current, _ = marshalJSON(raw)
		return nil
	}
	body := map[string]any{"schemas": []any{patchOpSchema}}
	sources := []Source{{Pointer: "/schemas", Rule: "PatchOp message (RFC 7644 §3.5.2)"}}
	list := make([]any, len(ops))
	for i, op := range ops {
		list[i] = op.op
		for _, r := range op.rules {
			sources = append(sources, Source{Pointer: "/Operations/" + strconv.Itoa(i), Rule: r})
		}
	}
	body["Operations"] = list
	return run.send("PATCH", path, body, sources)
}

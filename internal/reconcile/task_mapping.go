package reconcile

// TaskMapping is one field mapping of an operation: which property, with which action, grouped
// with its siblings (multivalue) or not, and an optional constant value.
type TaskMapping struct {
	prop       *Property
	action     Action
	defaulted  bool // the action was not written: the operation's default applies
	multivalue bool
	value      any // constant used when the event carries no value for the property
	hasValue   bool
}

// Property is the mapped property.
func (t *TaskMapping) Property() *Property { return t.prop }

// Action is the mapping's action (the operation's default when the model names none).
func (t *TaskMapping) Action() Action { return t.action }

// Multivalue reports whether the mapping is grouped with the other multivalue mappings of the same
// parent array into one element.
func (t *TaskMapping) Multivalue() bool { return t.multivalue }

// defaultAction is the action of a property in an operation that names none (docs/datamodel.md).
func defaultAction(op Operation, p *Property) Action {
	switch op {
	case OpCreate, OpAddAssignment:
		return ActionAdd
	case OpRemoveAssignment:
		return ActionRemove
	case OpDelete:
		if p.MultiValued() {
			return ActionRemove
		}
		return ActionModify
	default: // Update
		if p.MultiValued() {
			return ActionAdd
		}
		return ActionModify
	}
}

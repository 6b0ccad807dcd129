package reconcile

import (
	"fmt"
	"strings"
)

// Operation is what an identity change asks for (DESIGN.md §3), spelled exactly as events spell it.
type Operation string

// The operations of an identity change.
const (
	OpCreate           Operation = "Create"
	OpUpdate           Operation = "Update"
	OpDelete           Operation = "Delete"
	OpUpsert           Operation = "Upsert"
	OpAddAssignment    Operation = "AddAssignment"
	OpRemoveAssignment Operation = "RemoveAssignment"
)

// operations lists every operation in a stable order.
var operations = []Operation{OpCreate, OpUpdate, OpDelete, OpUpsert, OpAddAssignment, OpRemoveAssignment}

// mappingOperations are the operations that carry task mappings and request templates. Upsert uses
// Create's or Update's, depending on whether the object exists.
var mappingOperations = []Operation{OpCreate, OpUpdate, OpDelete, OpAddAssignment, OpRemoveAssignment}

// ParseOperation accepts an operation name in its exact spelling.
func ParseOperation(s string) (Operation, error) {
	for _, op := range operations {
		if string(op) == s {
			return op, nil
		}
	}
	return "", fmt.Errorf("unknown operation %q: want one of %s", s, joinOps(operations))
}

func (op Operation) valid() bool {
	_, err := ParseOperation(string(op))
	return err == nil
}

func joinOps(ops []Operation) string {
	s := make([]string, len(ops))
	for i, op := range ops {
		s[i] = string(op)
	}
	return strings.Join(s, ", ")
}

// Action is what a task mapping does with its property (the seed's Task Mappings section).
type Action string

// Task-mapping actions.
const (
	ActionAdd    Action = "add"
	ActionModify Action = "modify"
	ActionRemove Action = "remove"
)

// parseAction accepts add, modify and remove in any case, and the seed's "Delete" for remove
// ("You can apply the following action attributes to task mappings: Add, Modify, Delete").
func parseAction(s string) (Action, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "add":
		return ActionAdd, nil
	case "modify":
		return ActionModify, nil
	case "remove", "delete":
		return ActionRemove, nil
	}
	return "", fmt.Errorf("unknown action %q: want add, modify or remove", s)
}

package reconcile_test

import (
	"context"
	"fmt"
	"os"

	"github.com/scimflow/scimflow/internal/reconcile"
)

// directory is a tiny target for the example: ids by resource and single lookup value.
type directory map[string]string

func (d directory) Resolve(_ context.Context, resource string, match []reconcile.Match) (string, bool, error) {
	if len(match) != 1 {
		return "", false, nil
	}
	id, ok := d[resource+"/"+match[0].Value]
	return id, ok, nil
}

func (d directory) Get(context.Context, string, string) (map[string]any, error) {
	return nil, fmt.Errorf("not used by this example")
}

// A membership change: the event names members by userName, the PATCH carries their ids, and the
// plan says which rule produced each part of the body.
func ExamplePlanner_Plan() {
	m, err := reconcile.LoadModel("../../deploy/examples/models/scim-generic.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	target := directory{"Users/jdoe@example.com": "2819c223", "Groups/Admins": "e9e30dba"}
	plan, err := reconcile.NewPlanner(m, reconcile.Options{}).Plan(context.Background(), target, reconcile.Change{
		Object:     "Group",
		Operation:  reconcile.OpAddAssignment,
		Key:        map[string]any{"displayName": "Admins"},
		Attributes: map[string]any{"members[].value": []any{"jdoe@example.com"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := plan.Render(os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// AddAssignment Group (resource Groups), object id e9e30dba
	//
	// request 1: PATCH Groups/e9e30dba
	// {
	//   "Operations": [
	//     {
	//       "op": "add",
	//       "path": "members",
	//       "value": [
	//         {
	//           "value": "2819c223"
	//         }
	//       ]
	//     }
	//   ],
	//   "schemas": [
	//     "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	//   ]
	// }
	// rules:
	//   /schemas       PatchOp message (RFC 7644 §3.5.2)
	//   /Operations/0  task mapping "members[].value" (add, AddAssignment)
}

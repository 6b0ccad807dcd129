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

// A new hire whose manager arrives later in the same feed: the user is created at once without
// the manager, and the follow-up sets the manager once it exists.
func ExamplePlan_FollowUp() {
	m, err := reconcile.LoadModel("../../deploy/examples/models/cyberark.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	const manager = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
	planner := reconcile.NewPlanner(m, reconcile.Options{})
	target := directory{}
	plan, err := planner.Plan(context.Background(), target, reconcile.Change{
		Object:          "User",
		Operation:       reconcile.OpCreate,
		Key:             map[string]any{"userName": "new.hire@example.com"},
		Attributes:      map[string]any{"title": "Engineer", manager: "new.boss@example.com"},
		DeferUnresolved: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(plan.Requests[0].Method, plan.Requests[0].Path, string(plan.Requests[0].Body))
	fmt.Println("unresolved:", plan.Unresolved[0])
	followUp, _ := plan.FollowUp()
	fmt.Printf("follow-up: %s ResolveFirst=%v NoCreate=%v %v\n", followUp.Operation, followUp.ResolveFirst, followUp.NoCreate, followUp.Attributes)

	// Later: both users exist.
	target["Users/new.hire@example.com"], target["Users/new.boss@example.com"] = "u1", "u2"
	plan, err = planner.Plan(context.Background(), target, followUp)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(plan.Requests[0].Method, plan.Requests[0].Path, string(plan.Requests[0].Body))
	// Output:
	// POST Users {"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","urn:scim:schemas:extension:custom:2.0"],"title":"Engineer","userName":"new.hire@example.com"}
	// unresolved: urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value "new.boss@example.com" (no Users where userName eq "new.boss@example.com")
	// follow-up: Create ResolveFirst=true NoCreate=true map[urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value:new.boss@example.com]
	// PATCH Users/u1 {"Operations":[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value","value":"u2"}],"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}
}

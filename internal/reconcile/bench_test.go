package reconcile_test

import (
	"context"
	"testing"

	"github.com/scimflow/scimflow/internal/reconcile"
)

// BenchmarkPlan measures planning alone (the reader answers from memory): what every event costs
// the worker's CPU before a request is sent. Run with -benchmem; `make bench` prints it.
func BenchmarkPlan(b *testing.B) {
	m, err := reconcile.LoadModel("../../deploy/examples/models/cyberark.yaml")
	if err != nil {
		b.Fatal(err)
	}
	planner := reconcile.NewPlanner(m, reconcile.Options{})
	target := directory{"Users/jdoe@example.com": "2819c223", "Users/boss@example.com": "77aa01", "Groups/Admins": "e9e30dba"}
	for _, tc := range []struct {
		name string
		ch   reconcile.Change
	}{
		{"create-user", reconcile.Change{Object: "User", Operation: reconcile.OpCreate, Key: map[string]any{"userName": "new@example.com"},
			Attributes: map[string]any{"name.givenName": "Ada", "name.familyName": "Lovelace", "title": "Engineer",
				"emails[].value": []any{"new@example.com"}, "active": true}}},
		{"update-user", reconcile.Change{Object: "User", Operation: reconcile.OpUpdate, Key: map[string]any{"userName": "jdoe@example.com"},
			Attributes: map[string]any{"title": "CTO"}}},
		{"add-member", reconcile.Change{Object: "Group", Operation: reconcile.OpAddAssignment, Key: map[string]any{"displayName": "Admins"},
			Attributes: map[string]any{"members[].value": []any{"jdoe@example.com"}}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				if _, err := planner.Plan(ctx, target, tc.ch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

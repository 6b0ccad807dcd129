package guard

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestGlob(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"breakglass-*", "breakglass-1", true},
		{"breakglass-*", "breakglass-", true},
		{"breakglass-*", "breakglass", false},
		{"breakglass-*", "xbreakglass-1", false},
		{"*@admin.example.com", "root@admin.example.com", true},
		{"*@admin.example.com", "root@admin.example.com.evil", false},
		{"*admin*", "the-admin-of/all", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a?c", "aéc", true},
		{"*", "", true},
		{"", "", true},
		{"", "x", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"**x", "x", true},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, glob(tc.pattern, tc.s), "%q ~ %q", tc.pattern, tc.s)
	}
}

func TestPatternMatches(t *testing.T) {
	t.Parallel()
	p := Pattern{Object: "User", Property: "userName", Pattern: "breakglass-*"}
	assert.True(t, p.Matches("User", map[string]any{"userName": "breakglass-01"}))
	assert.True(t, p.Matches("User", map[string]any{"userName": "BreakGlass-01"}), "case-insensitive, as SCIM userNames are")
	assert.False(t, p.Matches("Group", map[string]any{"userName": "breakglass-01"}), "another object")
	assert.False(t, p.Matches("User", map[string]any{"externalId": "breakglass-01"}), "another property")
	assert.False(t, p.Matches("User", map[string]any{"userName": "ada"}))
	assert.False(t, p.Matches("User", map[string]any{"userName": []any{"breakglass-01"}}), "not a scalar")
	n := Pattern{Object: "User", Property: "employeeNumber", Pattern: "9*"}
	assert.True(t, n.Matches("User", map[string]any{"employeeNumber": json.Number("9001")}))
	assert.True(t, n.Matches("User", map[string]any{"employeeNumber": float64(9001)}))
}

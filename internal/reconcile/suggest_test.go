package reconcile

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNearest(t *testing.T) {
	t.Parallel()
	user := []string{"userName", "name.givenName", "name.familyName", "displayName", "title", "active",
		"emails[].value", "emails[].type", "phoneNumbers[].value",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
		"urn:scim:schemas:extension:custom:2.0:costCenter"}
	cases := []struct {
		name string
		want []string
	}{
		{"titel", []string{"title"}},                 // transposition
		{"Title", []string{"title"}},                 // case
		{"titl", []string{"title"}},                  // deletion
		{"usrName", []string{"userName"}},            // insertion
		{"emails.value", []string{"emails[].value"}}, // [] left out
		{"givenName", []string{"name.givenName"}},    // last attribute name
		{"givneName", []string{"name.givenName"}},    // ... with a typo
		{"department", []string{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}},
		{"costcenter", []string{"urn:scim:schemas:extension:custom:2.0:costCenter"}},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:deparment", []string{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}},
		{"value", []string{"emails[].value", "phoneNumbers[].value", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"}}, // ties, at most three
		{"shoeSize", nil},
		{"x", nil},
		{"", nil},
		{"tilte", []string{"title"}},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, nearest(c.name, user), "nearest(%q)", c.name)
	}
	assert.Equal(t, `did you mean "a" or "b"?`, didYouMean("c", []string{"a", "b"}))
	assert.Equal(t, `did you mean "ab", "ac" or "ad"?`, didYouMean("a", []string{"ab", "ac", "ad", "ae"}))
	assert.Empty(t, didYouMean("zzz", []string{"a"}))
}

func TestOSADistance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"title", "title", 0}, {"titel", "title", 1},
		{"ca", "abc", 3}, {"kitten", "sitting", 3}, {"łódź", "lodz", 3}, {"ab", "ba", 1},
	} {
		assert.Equal(t, c.want, osaDistance([]rune(c.a), []rune(c.b)), "%q %q", c.a, c.b)
		assert.Equal(t, c.want, osaDistance([]rune(c.b), []rune(c.a)), "%q %q", c.b, c.a)
	}
}

// TestUnknownPropertySuggests: issue 7 item 10. The suggestion comes before the (long) property
// list, so a truncated log line still shows it.
func TestUnknownPropertySuggests(t *testing.T) {
	t.Parallel()
	cyberark := exampleSource(t, "cyberark.yaml")
	cases := []planCase{
		{
			name: "a typo in an attribute", model: cyberark, store: map[string][]string{},
			change:  change(OpCreate, "new@example.com", map[string]any{"titel": "Engineer"}),
			wantErr: ErrInvalidChange,
			errText: []string{`unknown property "titel" of User: did you mean "title"? (properties: userName, name.givenName,`},
		},
		{
			name: "an extension attribute without its URN", model: cyberark, store: map[string][]string{},
			change:  change(OpCreate, "new@example.com", map[string]any{"department": "R&D"}),
			wantErr: ErrInvalidChange,
			errText: []string{`unknown property "department" of User: did you mean "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"? (properties:`},
		},
		{
			name: "nothing near", model: cyberark, store: map[string][]string{},
			change:  change(OpCreate, "new@example.com", map[string]any{"shoeSize": "42"}),
			wantErr: ErrInvalidChange,
			errText: []string{`unknown property "shoeSize" of User (properties: userName,`},
		},
		{
			name: "a key property misspelt", model: cyberark, store: map[string][]string{},
			change:  Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "a", "username": "a"}},
			wantErr: ErrInvalidChange,
			errText: []string{`key "username" is not a key property of User: did you mean "userName"? (keys: userName)`},
		},
		{
			name: "an action naming a misspelt property", model: cyberark, store: map[string][]string{},
			change:  Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "a"}, Actions: map[string]string{"displayname": "add"}},
			wantErr: ErrInvalidChange,
			errText: []string{`actions names "displayname", which is not a mapped property of User: did you mean "displayName"?`},
		},
		{
			name: "an object misspelt", model: cyberark, store: map[string][]string{},
			change:  Change{Object: "Users", Operation: OpCreate, Key: map[string]any{"userName": "a"}},
			wantErr: ErrInvalidChange,
			errText: []string{`unknown object "Users": did you mean "User"? (the data model has User, Group, Container, ContainerPermission, PrivilegedData)`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runPlanCase(t, c)
		})
	}
}

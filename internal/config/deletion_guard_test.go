package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/guard"
)

func TestDeletionGuardSectionLoads(t *testing.T) {
	t.Parallel()
	c, err := Load(write(t, minimal+`deletionGuard:
  maxDeletes: 50
  maxPercent: 2.5
  protected:
    - {object: User, property: userName, pattern: "breakglass-*"}
    - object: Group
      property: displayName
      pattern: Domain Admins
`), Options{LookupEnv: secrets})
	require.NoError(t, err)
	assert.Equal(t, guard.Config{MaxDeletes: 50, MaxPercent: 2.5, Protected: []guard.Pattern{
		{Object: "User", Property: "userName", Pattern: "breakglass-*"},
		{Object: "Group", Property: "displayName", Pattern: "Domain Admins"},
	}}, c.DeletionGuard)
}

// Absent, the guard is on with its defaults; an explicit 0 switches that limit off.
func TestDeletionGuardZeroSwitchesALimitOff(t *testing.T) {
	t.Parallel()
	c, err := Load(write(t, minimal+"deletionGuard:\n  maxDeletes: 0\n"), Options{LookupEnv: secrets})
	require.NoError(t, err)
	assert.Equal(t, guard.NoLimit, c.DeletionGuard.MaxDeletes, "maxDeletes: 0 means no count limit, not the default")
	assert.Equal(t, guard.DefaultMaxPercent, c.DeletionGuard.MaxPercent)

	c, err = Load(write(t, minimal+"deletionGuard:\n  maxPercent: 0\n"), Options{LookupEnv: secrets})
	require.NoError(t, err)
	assert.Equal(t, guard.DefaultMaxDeletes, c.DeletionGuard.MaxDeletes)
	assert.EqualValues(t, guard.NoLimit, c.DeletionGuard.MaxPercent)

	c, err = Load(write(t, minimal+"deletionGuard: {}\n"), Options{LookupEnv: secrets})
	require.NoError(t, err)
	assert.Equal(t, guard.DefaultMaxDeletes, c.DeletionGuard.MaxDeletes)
	assert.Equal(t, guard.DefaultMaxPercent, c.DeletionGuard.MaxPercent)
}

func TestDeletionGuardErrorsNameLineAndField(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, section, want string }{
		{"percent above 100", "deletionGuard:\n  maxPercent: 150\n", "13: deletionGuard.maxPercent: "},
		{"negative count", "deletionGuard:\n  maxDeletes: -5\n", "13: deletionGuard.maxDeletes: "},
		{"pattern without its glob", "deletionGuard:\n  protected:\n    - {object: User, property: userName}\n", "14: deletionGuard.protected[0].pattern: required"},
		{"empty glob", "deletionGuard:\n  protected:\n    - {object: User, property: userName, pattern: \"\"}\n", "14: deletionGuard.protected[0].pattern: "},
		{"unknown field", "deletionGuard:\n  maxDeletez: 5\n", "13: deletionGuard.maxDeletez: unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := problems(t, minimal+tc.section, secrets)
			assert.True(t, slicesHasPrefix(got, tc.want), "want a problem starting %q, got %q", tc.want, got)
		})
	}
}

// Validate names the field of what the schema cannot see: a configuration built in code.
func TestDeletionGuardValidateNamesTheField(t *testing.T) {
	t.Parallel()
	c, err := Load(write(t, minimal), Options{LookupEnv: secrets})
	require.NoError(t, err)
	c.DeletionGuard.MaxPercent = 101
	c.DeletionGuard.Protected = []guard.Pattern{{Object: "User", Property: " ", Pattern: "x"}}
	err = c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "deletionGuard.maxPercent: 101 is not a percentage of 0..100")
	assert.Contains(t, err.Error(), "deletionGuard.protected[0].property: required")
}

func slicesHasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

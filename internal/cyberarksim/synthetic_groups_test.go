package cyberarksim

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeedSyntheticGroups(t *testing.T) {
	t.Parallel()
	s, err := New(Config{})
	require.NoError(t, err)
	require.Error(t, s.SeedSyntheticGroups(2, 5), "memberships need users")
	require.NoError(t, s.SeedSyntheticUsers(4))
	require.NoError(t, s.SeedSyntheticGroups(3, 7))
	st := s.Snapshot()
	require.Len(t, st.Groups, 3)
	total := 0
	names := map[string]int{}
	for _, g := range st.Groups {
		members, _ := g["members"].([]any)
		names[g["displayName"].(string)] = len(members)
		total += len(members)
	}
	assert.Equal(t, 7, total)
	assert.Equal(t, map[string]int{"group000001": 3, "group000002": 2, "group000003": 2}, names)
	assert.Error(t, s.SeedSyntheticGroups(0, 1), "memberships without groups")
}

package inventory

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkRun reads 20,000 users and 2,000 groups holding 200,000 memberships from the simulator
// in process (make bench-inventory measures the worker in its own process, at scale).
func BenchmarkRun(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f := setup(b, Config{Objects: []string{"User", "Group"}})
		require.NoError(b, f.sim.SeedSyntheticUsers(20000))
		require.NoError(b, f.sim.SeedSyntheticGroups(2000, 200000))
		b.StartTimer()
		_, err := f.runner.Run(f.ctx, RunOptions{Trigger: "bench"})
		require.NoError(b, err)
	}
}

package jobs_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/jobs"
)

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		// The examples of jobs.md §3.9.1.
		{"1.10.0", "1.9.0", 1},
		{"1.2", "1.2.0", 0},
		{"v2.0", "2.0", 0},
		{"1.0.0", "1.0.0-beta", 1},
		{"1.0.0-beta", "1.0.0-rc.1", -1},
		{"2024.10.15", "2024.9.30", 1},
		// Normalisation.
		{"  1.2.3\t", "1.2.3", 0},
		{"V1.2", "1.2", 0},
		{"vv1.2", "1.2", 1}, // only one leading v goes; "v1" then compares as text
		{"1.2.3 (456)", "1.2.3", 0},
		{"1.2.3(456)", "1.2.3 (999)", 0},
		{" v3.0 (12) ", "3.0.0", 0},
		{"1.0-beta (7)", "1.0-beta", 0},
		// Integers of any length, leading zeros ignored.
		{"1.02", "1.2", 0},
		{"1.0010", "1.9", 1},
		{"99999999999999999999999.1", "99999999999999999999998.9", 1},
		{"1.2.3.4", "1.2.3", 1},
		{"1.2.0.0.0", "1.2", 0},
		// Non-numeric segments compare as bytes; a missing segment is "0".
		{"1.a", "1.b", -1},
		{"1.10a", "1.9a", -1},
		{"1.2", "1.2.a", -1},
		{"1.B", "1.a", -1},
		// Pre-releases: split at the first "-", compared as bytes.
		{"1.0.0-alpha", "1.0.0-beta", -1},
		{"1.0.0-rc.10", "1.0.0-rc.9", -1},
		{"1.0.0-beta-2", "1.0.0-beta-10", 1},
		{"2.0.0-alpha", "1.9.9", 1},
		{"1.0", "1.0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, jobs.CompareVersions(tt.a, tt.b))
			require.Equal(t, -tt.want, jobs.CompareVersions(tt.b, tt.a), "antisymmetric")
		})
	}
}

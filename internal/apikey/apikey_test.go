package apikey

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAgentKeys(t *testing.T) {
	t.Parallel()
	a, b := NewAgent(), NewAgent()
	require.NotEqual(t, a, b)
	require.True(t, WellFormed(a))
	require.True(t, strings.HasPrefix(a, "owl_agent_"))
	require.Len(t, Hash(a), 64)
	require.Equal(t, Hash(a), Hash(a))
	require.Equal(t, "owl_agent_"+a[10:14]+"…", Hint(a))
}

func TestWellFormed(t *testing.T) {
	t.Parallel()
	good := "owl_agent_" + strings.Repeat("ab", 24)
	require.True(t, WellFormed(good))
	require.True(t, LooksLikeKey("owl_client_x"))
	require.False(t, LooksLikeKey("eyJhbGciOi"))
	for _, bad := range []string{
		"owl_agent_" + strings.Repeat("AB", 24), // upper case
		"owl_agent_" + strings.Repeat("ab", 23), // too short
		"owl_agent_" + strings.Repeat("ab", 24) + "0",
		"owl_agent_" + strings.Repeat("zz", 24),
		"owl_other_" + strings.Repeat("ab", 24),
	} {
		require.False(t, WellFormed(bad), bad)
	}
}

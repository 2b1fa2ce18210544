package itunes_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	emuitunes "github.com/owlmetry/owlmetry/internal/emulator/itunes"
	"github.com/owlmetry/owlmetry/internal/upstream/itunes"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     []string
		want    itunes.Config
		wantErr string
	}{
		{name: "defaults", want: itunes.Config{BaseURL: "https://itunes.apple.com", MinInterval: 150 * time.Millisecond, Concurrency: 8}},
		{name: "empty values count as unset", env: []string{"OWLMETRY_ITUNES_API_URL", "", "OWLMETRY_ITUNES_MIN_INTERVAL", " "},
			want: itunes.DefaultConfig()},
		{name: "all set", env: []string{"OWLMETRY_ITUNES_API_URL", "http://127.0.0.1:4104/", "OWLMETRY_ITUNES_MIN_INTERVAL", "60ms", "OWLMETRY_ITUNES_CONCURRENCY", "3"},
			want: itunes.Config{BaseURL: "http://127.0.0.1:4104", MinInterval: 60 * time.Millisecond, Concurrency: 3}},
		{name: "path is kept", env: []string{"OWLMETRY_ITUNES_API_URL", "https://proxy.example/itunes/"},
			want: itunes.Config{BaseURL: "https://proxy.example/itunes", MinInterval: 150 * time.Millisecond, Concurrency: 8}},
		{name: "relative URL", env: []string{"OWLMETRY_ITUNES_API_URL", "itunes.apple.com"}, wantErr: "OWLMETRY_ITUNES_API_URL"},
		{name: "other scheme", env: []string{"OWLMETRY_ITUNES_API_URL", "ftp://itunes.apple.com"}, wantErr: "http or https"},
		{name: "query", env: []string{"OWLMETRY_ITUNES_API_URL", "https://itunes.apple.com?x=1"}, wantErr: "query"},
		{name: "fragment", env: []string{"OWLMETRY_ITUNES_API_URL", "https://itunes.apple.com/#top"}, wantErr: "fragment"},
		{name: "no host", env: []string{"OWLMETRY_ITUNES_API_URL", "https:///lookup"}, wantErr: "no host"},
		{name: "password is not echoed", env: []string{"OWLMETRY_ITUNES_API_URL", "ftp://u:hunter2@host"}, wantErr: "u:xxxxx@host"},
		{name: "bad interval", env: []string{"OWLMETRY_ITUNES_MIN_INTERVAL", "150"}, wantErr: `invalid OWLMETRY_ITUNES_MIN_INTERVAL "150"`},
		{name: "zero interval", env: []string{"OWLMETRY_ITUNES_MIN_INTERVAL", "0s"}, wantErr: "OWLMETRY_ITUNES_MIN_INTERVAL"},
		{name: "negative interval", env: []string{"OWLMETRY_ITUNES_MIN_INTERVAL", "-1s"}, wantErr: "OWLMETRY_ITUNES_MIN_INTERVAL"},
		{name: "bad concurrency", env: []string{"OWLMETRY_ITUNES_CONCURRENCY", "eight"}, wantErr: `invalid OWLMETRY_ITUNES_CONCURRENCY "eight"`},
		{name: "zero concurrency", env: []string{"OWLMETRY_ITUNES_CONCURRENCY", "0"}, wantErr: "OWLMETRY_ITUNES_CONCURRENCY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := itunes.LoadConfig(env(tt.env...))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "hunter2")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestStorefronts(t *testing.T) {
	t.Parallel()
	codes := itunes.Storefronts()
	require.Len(t, codes, 249)
	require.True(t, slices.IsSorted(codes))
	require.Len(t, slices.Compact(slices.Clone(codes)), 249)
	require.NotContains(t, codes, "aq")
	require.Contains(t, codes, "xk")
	// The emulator keeps its own copy of Appendix A; both must read it the same way.
	require.Equal(t, emuitunes.DefaultStorefronts(), codes)
	codes[0] = "zz"
	require.Equal(t, "ad", itunes.Storefronts()[0], "callers get their own slice")
}

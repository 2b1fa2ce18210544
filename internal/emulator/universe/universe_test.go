package universe_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
	"github.com/owlmetry/owlmetry/internal/emulator/itunes"
	"github.com/owlmetry/owlmetry/internal/emulator/universe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDeterministic(t *testing.T) {
	t.Parallel()
	require.Equal(t, universe.New(42), universe.New(42), "the same seed gives the same universe")
	require.Equal(t, universe.Default(), universe.New(universe.DefaultSeed))
	a, b := universe.New(1), universe.New(2)
	require.Equal(t, a.Projects, b.Projects, "descriptors do not depend on the seed")
	require.NotEqual(t, a.AppleApps[0].Ratings, b.AppleApps[0].Ratings, "figures do")
}

func TestProjects(t *testing.T) {
	t.Parallel()
	u := universe.Default()
	require.Equal(t, universe.Team{Name: "Owlmetry Dev", Slug: "dev"}, u.Team)

	a, ok := u.Project("A")
	require.True(t, ok)
	require.Len(t, a.Apps, 3)
	ios := a.Apps[0]
	require.Equal(t, "apple", ios.Platform)
	require.Equal(t, universe.SnapframeBundleID, ios.BundleID)
	require.NotNil(t, ios.AppleAppStoreID, "Snapframe iOS has its App Store id preset")
	require.Equal(t, universe.SnapframeAppleID, *ios.AppleAppStoreID)
	require.Equal(t, "android", a.Apps[1].Platform)
	require.Equal(t, "backend", a.Apps[2].Platform)
	require.Empty(t, a.Apps[2].BundleID)
	require.ElementsMatch(t, []string{"revenuecat", "apple-search-ads", "app-store-connect"}, a.Integrations)

	b, ok := u.Project("B")
	require.True(t, ok)
	require.Len(t, b.Apps, 1)
	require.Equal(t, universe.TidepoolBundleID, b.Apps[0].BundleID)
	require.Nil(t, b.Apps[0].AppleAppStoreID, "Tidepool's id is learnt by app_version_sync")
	require.Equal(t, []string{"app-store-connect"}, b.Integrations)

	_, ok = u.Project("C")
	require.False(t, ok)

	for _, p := range u.Projects {
		require.Regexp(t, `^#[0-9a-f]{6}$`, p.Color)
		for _, app := range p.Apps {
			require.Contains(t, []string{"apple", "android", "web", "backend"}, app.Platform)
		}
	}
}

func TestAppleApps(t *testing.T) {
	t.Parallel()
	u := universe.Default()
	storefronts := func(a universe.AppleApp) []string {
		var out []string
		for cc := range a.Ratings {
			out = append(out, cc)
		}
		slices.Sort(out)
		return out
	}
	snap, ok := u.AppleApp(universe.SnapframeAppleID)
	require.True(t, ok)
	require.Equal(t, []string{"de", "fr", "gb", "jp", "us"}, storefronts(snap))
	tide, ok := u.AppleApp(universe.TidepoolAppleID)
	require.True(t, ok)
	require.Equal(t, []string{"ca", "us"}, storefronts(tide))
	for _, a := range u.AppleApps {
		for cc, r := range a.Ratings {
			require.Greater(t, r.Count, int64(0), cc)
			require.GreaterOrEqual(t, r.Average, 1.0, cc)
			require.LessOrEqual(t, r.Average, 5.0, cc)
			require.LessOrEqual(t, r.CurrentAverage, 5.0, cc)
			require.Less(t, r.CurrentCount, r.Count, cc)
		}
	}
}

// TestITunesSeed seeds the real emulator from the universe and looks the apps up the
// way the jobs will.
func TestITunesSeed(t *testing.T) {
	t.Parallel()
	u := universe.Default()
	emu, err := itunes.New(itunes.Options{State: u.ITunesState()})
	require.NoError(t, err)
	base, stop, err := emukit.Start(context.Background(), emu.Handler(), "127.0.0.1:0")
	require.NoError(t, err)
	defer stop()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()

	count := func(bundleID, cc string) (int, map[string]any) {
		resp, err := (&http.Client{Transport: tr}).Get(base + "/lookup?bundleId=" + bundleID + "&country=" + cc)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var doc struct {
			ResultCount int              `json:"resultCount"`
			Results     []map[string]any `json:"results"`
		}
		require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(string(body))), &doc))
		if doc.ResultCount == 0 {
			return 0, nil
		}
		return doc.ResultCount, doc.Results[0]
	}
	for _, a := range u.AppleApps {
		for _, cc := range []string{"us", "ca", "gb", "de", "jp", "fr", "br", "xk"} {
			n, res := count(a.BundleID, cc)
			r, sold := a.Ratings[cc]
			if !sold {
				require.Zero(t, n, "%s is not sold in %s", a.Name, cc)
				continue
			}
			require.Equal(t, 1, n)
			require.Equal(t, float64(a.AppleID), res["trackId"])
			require.Equal(t, a.Version, res["version"])
			require.Equal(t, r.Average, res["averageUserRating"])
			require.Equal(t, float64(r.Count), res["userRatingCount"])
			require.Equal(t, r.CurrentAverage, res["averageUserRatingForCurrentVersion"])
			require.Equal(t, float64(r.CurrentCount), res["userRatingCountForCurrentVersion"])
		}
	}
}

// Package universe is owlmetry's deterministic demo world (upstreams.md §9.3): the team,
// projects and apps owlmetry dev seeds into Postgres, and the vendor-side fixtures it
// seeds into the emulators, generated from one seed so both sides agree. Tests take
// their fixtures from the same place.
//
// The package holds plain data. Converters such as ITunesState turn it into an
// emulator's seed; the database side is written by owlmetry dev from the descriptors
// (Team, Projects). Fixtures of the other upstreams (RevenueCat customers, Search Ads
// campaigns, App Store Connect reviews), users, keys and events join as their emulators
// and jobs arrive; each keeps to the ids fixed here, in particular the Apple numeric ids
// that all three Apple emulators share (upstreams.md §1.2).
package universe

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/owlmetry/owlmetry/internal/emulator/itunes"
)

// DefaultSeed is the seed of owlmetry dev's universe.
const DefaultSeed uint64 = 1500000001

// The Apple numeric ids and bundle ids of the universe's App Store apps.
const (
	SnapframeAppleID  int64 = 1500000001
	SnapframeBundleID       = "com.example.snapframe"
	TidepoolAppleID   int64 = 1500000002
	TidepoolBundleID        = "com.example.tidepool"
)

// Universe is the whole demo world.
type Universe struct {
	// Seed is the seed the universe was generated from.
	Seed uint64
	// Team is the one owlmetry team of the dev stack.
	Team Team
	// Projects are the owlmetry projects, A first.
	Projects []Project
	// AppleApps is the App Store catalogue that the iTunes, App Store Connect and Search
	// Ads emulators share.
	AppleApps []AppleApp
}

// Team describes an owlmetry team (table teams).
type Team struct {
	Name string
	Slug string
}

// Project describes an owlmetry project (table projects) with its apps.
type Project struct {
	// Key is the stable handle fixtures and tests use: "A" or "B".
	Key   string
	Name  string
	Slug  string
	Color string
	// Apps are the project's apps, in creation order.
	Apps []App
	// Integrations are the provider names (api.md §7.15) configured for the project
	// with the dev credentials: "revenuecat", "apple-search-ads", "app-store-connect".
	Integrations []string
}

// App describes an owlmetry app (table apps).
type App struct {
	// Key is the stable handle fixtures and tests use, e.g. "snapframe-ios".
	Key  string
	Name string
	// Platform is the app_platform enum value: apple, android, web or backend.
	Platform string
	// BundleID is the bundle or package id; empty means NULL.
	BundleID string
	// AppleAppStoreID is preset when non-nil; nil is NULL, to be learnt from iTunes by
	// app_version_sync.
	AppleAppStoreID *int64
}

// AppleApp is one App Store app as the Apple emulators know it.
type AppleApp struct {
	AppleID    int64
	BundleID   string
	Name       string
	SellerName string
	Genre      string
	// Version is the current App Store version.
	Version    string
	ReleasedAt time.Time
	// Ratings maps lowercase storefront codes to ratings; other storefronts do not sell
	// the app.
	Ratings map[string]StorefrontRating
}

// StorefrontRating is an app's rating summary in one storefront.
type StorefrontRating struct {
	Average        float64
	Count          int64
	CurrentAverage float64
	CurrentCount   int64
}

// Default returns the universe of DefaultSeed.
func Default() *Universe { return New(DefaultSeed) }

// New generates the universe for a seed. The same seed always gives the same universe;
// names, ids and storefront sets are fixed by the spec and only the figures vary.
func New(seed uint64) *Universe {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	snapframeID := SnapframeAppleID
	u := &Universe{
		Seed: seed,
		Team: Team{Name: "Owlmetry Dev", Slug: "dev"},
		Projects: []Project{
			{
				Key: "A", Name: "Snapframe", Slug: "snapframe", Color: "#6366f1",
				Apps: []App{
					{Key: "snapframe-ios", Name: "Snapframe iOS", Platform: "apple", BundleID: SnapframeBundleID, AppleAppStoreID: &snapframeID},
					{Key: "snapframe-android", Name: "Snapframe Android", Platform: "android", BundleID: "com.example.snapframe.android"},
					{Key: "snapframe-api", Name: "Snapframe API", Platform: "backend"},
				},
				Integrations: []string{"revenuecat", "apple-search-ads", "app-store-connect"},
			},
			{
				Key: "B", Name: "Tidepool", Slug: "tidepool", Color: "#0ea5e9",
				Apps: []App{
					{Key: "tidepool-ios", Name: "Tidepool iOS", Platform: "apple", BundleID: TidepoolBundleID},
				},
				Integrations: []string{"app-store-connect"},
			},
		},
		AppleApps: []AppleApp{
			{
				AppleID: SnapframeAppleID, BundleID: SnapframeBundleID, Name: "Snapframe",
				SellerName: "Snapframe Labs Inc.", Genre: "Photo & Video", Version: "4.12.0",
				ReleasedAt: time.Date(2026, 10, 21, 7, 0, 0, 0, time.UTC),
				Ratings:    ratings(rng, map[string]int64{"us": 12400, "gb": 3100, "de": 2600, "jp": 1900, "fr": 1500}),
			},
			{
				AppleID: TidepoolAppleID, BundleID: TidepoolBundleID, Name: "Tidepool",
				SellerName: "Tidepool Labs Inc.", Genre: "Weather", Version: "3.1.0",
				ReleasedAt: time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC),
				Ratings:    ratings(rng, map[string]int64{"us": 917, "ca": 240}),
			},
		},
	}
	return u
}

// ratings draws a rating per storefront around the given counts. Averages carry many
// decimals, as the live API's do; storefronts are visited in sorted order so the draw
// is stable.
func ratings(rng *rand.Rand, counts map[string]int64) map[string]StorefrontRating {
	codes := make([]string, 0, len(counts))
	for cc := range counts {
		codes = append(codes, cc)
	}
	slices.Sort(codes)
	out := make(map[string]StorefrontRating, len(codes))
	for _, cc := range codes {
		base := counts[cc]
		count := base + rng.Int64N(base/10+1)
		avg := 3.6 + rng.Float64()*1.3
		current := count/12 + rng.Int64N(count/24+1)
		curAvg := math.Min(5, avg+(rng.Float64()-0.4)*0.5)
		out[cc] = StorefrontRating{
			Average:        round(avg, 5),
			Count:          count,
			CurrentAverage: round(curAvg, 5),
			CurrentCount:   current,
		}
	}
	return out
}

func round(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// Project returns the project with the given key ("A", "B").
func (u *Universe) Project(key string) (Project, bool) {
	for _, p := range u.Projects {
		if p.Key == key {
			return p, true
		}
	}
	return Project{}, false
}

// AppleApp returns the App Store app with the given Apple id.
func (u *Universe) AppleApp(appleID int64) (AppleApp, bool) {
	for _, a := range u.AppleApps {
		if a.AppleID == appleID {
			return a, true
		}
	}
	return AppleApp{}, false
}

// ITunesState is the iTunes emulator's seed: every App Store app, sold and rated in
// exactly the storefronts of its Ratings.
func (u *Universe) ITunesState() itunes.State {
	st := itunes.State{Apps: make([]itunes.App, 0, len(u.AppleApps))}
	for _, a := range u.AppleApps {
		app := itunes.App{
			TrackID: a.AppleID, BundleID: a.BundleID, Name: a.Name, Version: a.Version,
			SellerName: a.SellerName, Genre: a.Genre, ReleasedAt: a.ReleasedAt,
			Storefronts: make(map[string]itunes.Rating, len(a.Ratings)),
		}
		for cc, r := range a.Ratings {
			curAvg, curCount := r.CurrentAverage, r.CurrentCount
			app.Storefronts[cc] = itunes.Rating{Average: r.Average, Count: r.Count, CurrentAverage: &curAvg, CurrentCount: &curCount}
		}
		st.Apps = append(st.Apps, app)
	}
	return st
}

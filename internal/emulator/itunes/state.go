package itunes

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
)

// State is the emulator's catalogue (upstreams.md §8.4). Its JSON form is what
// GET/PUT /_emulator/state exchange.
type State struct {
	// Apps is the catalogue, in track id order when read back.
	Apps []App `json:"apps"`
}

// App is one App Store app and the storefronts that sell it.
type App struct {
	// TrackID is Apple's numeric app id (results[].trackId); unique.
	TrackID int64 `json:"track_id"`
	// BundleID is the bundle id (results[].bundleId); unique.
	BundleID string `json:"bundle_id"`
	// Name is the store name (trackName).
	Name string `json:"name"`
	// Version is the current store version.
	Version string `json:"version"`
	// SellerName is shown as sellerName. Defaults to "<Name> Inc.".
	SellerName string `json:"seller_name,omitempty"`
	// Genre is shown as primaryGenreName. Defaults to "Utilities".
	Genre string `json:"genre,omitempty"`
	// ReleasedAt is the current version's release (currentVersionReleaseDate).
	ReleasedAt time.Time `json:"released_at,omitzero"`
	// Variant shapes the rating fields of every answer for this app.
	Variant Variant `json:"variant,omitempty"`
	// Storefronts maps lowercase alpha-2 codes to the app's ratings there; a storefront
	// that is absent does not sell the app and answers an empty result.
	Storefronts map[string]Rating `json:"storefronts"`
}

// Rating is an app's rating summary in one storefront.
type Rating struct {
	// Average is averageUserRating (many decimals, as Apple sends).
	Average float64 `json:"average"`
	// Count is userRatingCount.
	Count int64 `json:"count"`
	// CurrentAverage is averageUserRatingForCurrentVersion; absent mirrors Average.
	CurrentAverage *float64 `json:"current_average,omitempty"`
	// CurrentCount is userRatingCountForCurrentVersion; absent mirrors Count.
	CurrentCount *int64 `json:"current_count,omitempty"`
}

// Variant is how the rating fields of an app's results look, covering the shapes the
// live API produces (upstreams.md §6.2, §6.4).
type Variant string

// The variants.
const (
	// VariantFull sends all four rating fields.
	VariantFull Variant = ""
	// VariantNoRatings sends none of the rating fields.
	VariantNoRatings Variant = "no_ratings"
	// VariantZeroCount sends userRatingCount 0 and averageUserRating 0 (and the same for
	// the current version), as for an app nobody has rated.
	VariantZeroCount Variant = "zero_count"
	// VariantNoCurrentVersion sends the totals but not the current-version fields.
	VariantNoCurrentVersion Variant = "no_current_version"
)

func (s State) validate() error {
	ids := map[int64]bool{}
	bundles := map[string]bool{}
	for i, a := range s.Apps {
		switch {
		case a.TrackID <= 0:
			return fmt.Errorf("apps[%d]: track_id must be positive", i)
		case a.BundleID == "":
			return fmt.Errorf("apps[%d]: bundle_id is required", i)
		case ids[a.TrackID]:
			return fmt.Errorf("apps[%d]: track_id %d appears twice", i, a.TrackID)
		case bundles[a.BundleID]:
			return fmt.Errorf("apps[%d]: bundle_id %s appears twice", i, a.BundleID)
		}
		switch a.Variant {
		case VariantFull, VariantNoRatings, VariantZeroCount, VariantNoCurrentVersion:
		default:
			return fmt.Errorf("apps[%d]: unknown variant %q", i, a.Variant)
		}
		for cc, r := range a.Storefronts {
			if !isAlpha2(cc) {
				return fmt.Errorf("apps[%d]: storefront %q is not a lowercase alpha-2 code", i, cc)
			}
			if r.Count < 0 || (r.CurrentCount != nil && *r.CurrentCount < 0) {
				return fmt.Errorf("apps[%d]: storefront %s: counts must not be negative", i, cc)
			}
		}
		ids[a.TrackID], bundles[a.BundleID] = true, true
	}
	return nil
}

func isAlpha2(s string) bool {
	return len(s) == 2 && s[0] >= 'a' && s[0] <= 'z' && s[1] >= 'a' && s[1] <= 'z'
}

// clone deep-copies the state and sorts apps by track id, so what callers get back
// cannot alias the emulator's state and reads are stable.
func (s State) clone() State {
	out := State{Apps: make([]App, 0, len(s.Apps))}
	for _, a := range s.Apps {
		c := a
		c.Storefronts = make(map[string]Rating, len(a.Storefronts))
		for cc, r := range a.Storefronts {
			if r.CurrentAverage != nil {
				v := *r.CurrentAverage
				r.CurrentAverage = &v
			}
			if r.CurrentCount != nil {
				v := *r.CurrentCount
				r.CurrentCount = &v
			}
			c.Storefronts[cc] = r
		}
		out.Apps = append(out.Apps, c)
	}
	slices.SortFunc(out.Apps, func(a, b App) int {
		switch {
		case a.TrackID < b.TrackID:
			return -1
		case a.TrackID > b.TrackID:
			return 1
		}
		return 0
	})
	return out
}

// upsert adds apps or replaces those with the same track id; a bundle id may move to
// a replacement but not collide with another app.
func (s State) upsert(apps []App) (State, error) {
	next := s.clone()
	for _, a := range apps {
		replaced := false
		for i := range next.Apps {
			if next.Apps[i].TrackID == a.TrackID {
				next.Apps[i], replaced = a, true
				break
			}
		}
		if !replaced {
			next.Apps = append(next.Apps, a)
		}
	}
	if err := next.validate(); err != nil {
		return State{}, err
	}
	return next.clone(), nil
}

func decodeApps(data []byte) ([]App, error) {
	// The collection accepts either a list of apps or {"apps": […]}.
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '[' {
		var list []App
		if err := emukit.DecodeJSON(trimmed, &list); err != nil {
			return nil, err
		}
		return list, nil
	}
	var st State
	if err := emukit.DecodeJSON(data, &st); err != nil {
		return nil, err
	}
	return st.Apps, nil
}

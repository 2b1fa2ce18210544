package itunes

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
)

// Limits are the emulator's throttle and strictness switches, read and changed through
// GET/PUT /_emulator/limits or Server.Limits and Server.SetLimits.
type Limits struct {
	// Throttle is the per-client-IP token bucket.
	Throttle Throttle `json:"throttle"`
	// Switches pick between the live API's observed behaviour (all false, the default)
	// and the documented or stricter alternative.
	Switches Switches `json:"switches"`
}

// Throttle is Apple's per-IP throttling as a token bucket on the emulator clock
// (upstreams.md §8.4 rule 4).
type Throttle struct {
	// Preset, on input only, sets PerMinute and Burst first: "default" (1 200/min,
	// burst 20) or "documented" (Apple's documented ~20 calls/min, burst 20). Other
	// fields of the same update then apply on top.
	Preset string `json:"preset,omitempty"`
	// Enabled turns throttling on. Defaults to true.
	Enabled bool `json:"enabled"`
	// PerMinute is the steady rate per client IP. Defaults to 1 200.
	PerMinute int `json:"per_minute"`
	// Burst is how many requests an idle client may send at once. Defaults to 20.
	Burst int `json:"burst"`
	// Status answers a throttled request: 403 (what Apple sends, the default) or 429.
	Status int `json:"status"`
}

// Switches are the strictness switches of upstreams.md §8.4. The zero value is the live
// behaviour.
type Switches struct {
	// JSONContentType answers Content-Type application/json instead of the live
	// text/javascript; charset=utf-8.
	JSONContentType bool `json:"json_content_type"`
	// NoLeadingNewlines drops the three newlines the live API puts before its JSON.
	NoLeadingNewlines bool `json:"no_leading_newlines"`
	// RejectUnknownCountry answers a country outside the storefront set with 400
	// {"errorMessage": "Invalid value(s) for key(s): [country]", …} instead of the
	// empty 200 result.
	RejectUnknownCountry bool `json:"reject_unknown_country"`
}

// The presets.
const (
	PresetDefault    = "default"
	PresetDocumented = "documented"
)

// DefaultLimits is the emulator's default: throttling on at 1 200/min with bursts of 20,
// answering 403, and every switch at the live behaviour.
func DefaultLimits() Limits {
	return Limits{Throttle: Throttle{Enabled: true, PerMinute: 1200, Burst: 20, Status: http.StatusForbidden}}
}

func (t *Throttle) applyPreset() error {
	switch t.Preset {
	case "":
	case PresetDefault:
		t.PerMinute, t.Burst = 1200, 20
	case PresetDocumented:
		t.PerMinute, t.Burst = 20, 20
	default:
		return fmt.Errorf("unknown throttle preset %q (want %q or %q)", t.Preset, PresetDefault, PresetDocumented)
	}
	t.Preset = ""
	return nil
}

func (l Limits) validate() error {
	t := l.Throttle
	switch {
	case t.Preset != "":
		return errors.New("throttle.preset is applied on input only")
	case t.PerMinute <= 0:
		return errors.New("throttle.per_minute must be positive")
	case t.Burst <= 0:
		return errors.New("throttle.burst must be positive")
	case t.Status != http.StatusForbidden && t.Status != http.StatusTooManyRequests:
		return fmt.Errorf("throttle.status must be 403 or 429, not %d", t.Status)
	}
	return nil
}

// mergeLimits applies a JSON update onto cur: a preset first, then the fields present.
func mergeLimits(cur Limits, data []byte) (Limits, error) {
	var probe struct {
		Throttle struct {
			Preset string `json:"preset"`
		} `json:"throttle"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return Limits{}, err
	}
	next := cur
	next.Throttle.Preset = probe.Throttle.Preset
	if err := next.Throttle.applyPreset(); err != nil {
		return Limits{}, err
	}
	if err := emukit.DecodeJSON(data, &next); err != nil {
		return Limits{}, err
	}
	next.Throttle.Preset = "" // the preset was applied before the explicit fields
	if err := next.validate(); err != nil {
		return Limits{}, err
	}
	return next, nil
}

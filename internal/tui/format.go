package tui

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

// ShortID is the first 8 characters of a run id; display only (cli.md §0).
func ShortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// RelativeTime renders t against now for a terminal (cli.md §4.6): `12s ago`, `3m ago`,
// `5h ago`, `4d ago` under 30 days, else the date; future times as `in 3m`.
func RelativeTime(t, now time.Time) string {
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		s = fmt.Sprintf("%dh", int(d/time.Hour))
	case d < 30*24*time.Hour:
		s = fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	default:
		return t.In(now.Location()).Format("2006-01-02")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// AbsoluteTime renders t in the local zone of now (`2026-11-29 16:03:12 +01:00`).
func AbsoluteTime(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.Local
	}
	return t.In(loc).Format("2006-01-02 15:04:05 -07:00")
}

// Duration renders a duration for people (cli.md §4.6): `850ms`, `12.3s`, `4m05s`,
// `2h03m`.
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		tenths := int64(math.Floor(float64(d) / float64(100*time.Millisecond)))
		return fmt.Sprintf("%d.%ds", tenths/10, tenths%10)
	case d < time.Hour:
		s := int(d / time.Second)
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	default:
		m := int(d / time.Minute)
		return fmt.Sprintf("%dh%02dm", m/60, m%60)
	}
}

// Elapsed renders time since waiting began the way progress displays do (cli.md §6.6):
// `7s` under a minute, `1m05s` under an hour, else `2h03m`.
func Elapsed(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int(d / time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", s)
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	default:
		return fmt.Sprintf("%dh%02dm", s/3600, (s%3600)/60)
	}
}

// RunDuration is completed_at − started_at, now − started_at for an active run; false
// when the run never started (cli.md §4.6).
func RunDuration(run apitype.JobRun, now time.Time) (time.Duration, bool) {
	if run.StartedAt == nil {
		return 0, false
	}
	end := now
	if run.CompletedAt != nil {
		end = run.CompletedAt.Time
	}
	return end.Sub(run.StartedAt.Time), true
}

// Percent is ⌊processed × 100 / total⌋ clamped to 0–100; false for total 0.
func Percent(p *apitype.Progress) (int64, bool) {
	if p == nil || p.Total <= 0 {
		return 0, false
	}
	pct := p.Processed * 100 / p.Total
	return max(0, min(100, pct)), true
}

// ProgressText renders progress for a terminal (cli.md §4.6): `9/20 (45%)`,
// `120 processed` when the total is unknown, `-` when there is none.
func ProgressText(p *apitype.Progress) string {
	if p == nil {
		return "-"
	}
	if pct, ok := Percent(p); ok {
		return fmt.Sprintf("%d/%d (%d%%)", p.Processed, p.Total, pct)
	}
	return fmt.Sprintf("%d processed", p.Processed)
}

// TriggeredBy renders triggered_by for a terminal: `schedule`, `user 5d1e02aa`,
// `api key 5d1e02aa`, `cli ada@host`, anything else raw.
func TriggeredBy(s string) string {
	switch {
	case strings.HasPrefix(s, "manual:user:"):
		return "user " + ShortID(strings.TrimPrefix(s, "manual:user:"))
	case strings.HasPrefix(s, "manual:api_key:"):
		return "api key " + ShortID(strings.TrimPrefix(s, "manual:api_key:"))
	case strings.HasPrefix(s, "manual:cli:"):
		return "cli " + strings.TrimPrefix(s, "manual:cli:")
	}
	return s
}

// StatusWord is the status shown on a terminal: `aborted` for a completed run whose
// result says so.
func StatusWord(run apitype.JobRun) string {
	if run.Aborted() {
		return "aborted"
	}
	return string(run.Status)
}

// Escape writes tab, CR, LF and backslash as `\t`, `\r`, `\n`, `\\`, so a piped value
// stays one field (cli.md §4.3).
func Escape(s string) string {
	if !strings.ContainsAny(s, "\t\r\n\\") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\r", `\r`, "\n", `\n`).Replace(s)
}

// RawTime renders a timestamp as the API sent it (RFC 3339, UTC); "" for nil.
func RawTime(t *apitype.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(apitype.TimeFormat)
}

// JSONValue renders a JSON value for a detail view: strings and numbers plainly, objects
// and arrays as compact JSON.
func JSONValue(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	var buf strings.Builder
	var v any
	if json.Unmarshal(raw, &v) == nil {
		b, _ := json.Marshal(v)
		buf.Write(b)
		return buf.String()
	}
	return string(raw)
}

// ResultErrors returns result.errors when it is a number above zero.
func ResultErrors(run apitype.JobRun) (int64, bool) {
	if len(run.Result) == 0 {
		return 0, false
	}
	var res struct {
		Errors json.Number `json:"errors"`
	}
	if json.Unmarshal(run.Result, &res) != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(res.Errors.String(), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

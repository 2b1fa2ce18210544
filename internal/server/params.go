package server

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// The strict time grammar of api.md §5.2.
var (
	relativeTime = regexp.MustCompile(`^([0-9]{1,9})([smhdw])$`)
	dateOnly     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	dateTime     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$`)
)

// maxRelativeSeconds is 100 years of 365.25 days: relative values beyond it are refused.
const maxRelativeSeconds = 36525 * 24 * 3600

var unitSeconds = map[string]int64{"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

// parseTimeParam reads a since/until value: a relative duration back from now, an RFC
// 3339 date-time with a zone, or a UTC date. Anything else is the 400 of api.md §2.4.
func parseTimeParam(name, v string, now time.Time) (time.Time, error) {
	bad := badRequest("Invalid time input %q for %s: use a relative duration (30s, 15m, 2h, 7d, 1w), an RFC 3339 timestamp or YYYY-MM-DD", v, name)
	switch {
	case relativeTime.MatchString(v):
		m := relativeTime.FindStringSubmatch(v)
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return time.Time{}, bad
		}
		secs := n * unitSeconds[m[2]] // at most 999999999 × 604800: fits in int64
		if secs > maxRelativeSeconds {
			return time.Time{}, bad
		}
		return now.Add(-time.Duration(secs) * time.Second), nil
	case dateOnly.MatchString(v):
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return time.Time{}, bad
		}
		return t.UTC(), nil
	case dateTime.MatchString(v):
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, bad
		}
		return t.UTC(), nil
	}
	return time.Time{}, bad
}

// Limits of api.md §5.3.
const (
	defaultLimit = 50
	maxLimit     = 200
)

var limitPattern = regexp.MustCompile(`^[+-]?[0-9]{1,10}$`)

// parseLimit applies api.md §5.3: empty or 0 is the default, other integers are clamped.
func parseLimit(v string) (int, error) {
	if v == "" {
		return defaultLimit, nil
	}
	if !limitPattern.MatchString(v) {
		return 0, badRequest("Invalid limit %q: must be an integer", v)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badRequest("Invalid limit %q: must be an integer", v)
	}
	switch {
	case n == 0:
		return defaultLimit, nil
	case n < 1:
		return 1, nil
	case n > maxLimit:
		return maxLimit, nil
	}
	return int(n), nil
}

// cursorLayout writes created_at with microseconds, Postgres' precision, so a page
// boundary is exact (api.md §5.4).
const cursorLayout = "2006-01-02T15:04:05.000000Z"

// listCursor is a position in the created_at DESC, id DESC order.
type listCursor struct {
	CreatedAt time.Time
	ID        string
}

func (c listCursor) String() string {
	return c.CreatedAt.UTC().Format(cursorLayout) + "|" + c.ID
}

// parseCursor reads `<RFC 3339 time>|<uuid>`, with 0–9 fractional digits and any zone.
func parseCursor(v string) (listCursor, error) {
	bad := badRequest("Invalid cursor")
	ts, id, ok := strings.Cut(v, "|")
	if !ok || !dateTime.MatchString(ts) {
		return listCursor{}, bad
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return listCursor{}, bad
	}
	uid, ok := jobtype.ParseUUID(id)
	if !ok {
		return listCursor{}, bad
	}
	return listCursor{CreatedAt: t.UTC(), ID: uid}, nil
}

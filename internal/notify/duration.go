package notify

import (
	"fmt"
	"math"
	"time"
)

// NotStarted is the duration of a run that never started (engine.md §14.6).
const NotStarted = "not started"

// FormatDuration writes a run's duration the way e-mails and inbox rows show it
// (engine.md §14.6): "0.42ms" under a millisecond, "317ms" under a second, "12.3s" under a
// minute, "4m 5s" under an hour, else "2h 3m". The units grow with the value so a reader
// sees at once whether a run took milliseconds or hours.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = 0 // clocks of different hosts may disagree by a little
	}
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%dms", int64(math.Round(float64(d)/float64(time.Millisecond))))
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int64(d/time.Minute), int64((d%time.Minute)/time.Second))
	default:
		return fmt.Sprintf("%dh %dm", int64(d/time.Hour), int64((d%time.Hour)/time.Minute))
	}
}

// RunDuration is completed − started, or NotStarted when the run never started.
func RunDuration(started *time.Time, completed time.Time) string {
	if started == nil || started.IsZero() {
		return NotStarted
	}
	return FormatDuration(completed.Sub(*started))
}

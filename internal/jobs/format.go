package jobs

import (
	"fmt"
	"math"
	"strconv"
)

// formatCount writes n with thousands separators, as progress messages show counts:
// 1204311 → "1,204,311".
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// gigabytes converts bytes to GB (1024³ bytes), rounded to two decimals.
func gigabytes(bytes int64) float64 {
	return math.Round(float64(bytes)/(1<<30)*100) / 100
}

// formatGB writes a size as progress messages show it: "12.41 GB".
func formatGB(bytes int64) string {
	return fmt.Sprintf("%.2f GB", float64(bytes)/(1<<30))
}

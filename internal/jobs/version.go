package jobs

import (
	"strings"
	"unicode"
)

// CompareVersions orders two version strings the way app_version_sync picks the newest
// computed version (jobs.md §3.9.1). It returns -1, 0 or 1.
//
// Each side is normalised first: surrounding whitespace, one leading "v" or "V" and a
// trailing parenthesised build suffix ("1.2.3 (456)") are dropped, and the rest splits
// at the first "-" into a base and a pre-release. Base segments compare pairwise over the
// longer list, a missing segment counting as "0": two all-digit segments as integers of
// any length, anything else as bytes. With equal bases a version without pre-release is
// greater than one with; two pre-releases compare as bytes. So 1.10.0 > 1.9.0,
// 1.2 = 1.2.0, v2.0 = 2.0, 1.0.0 > 1.0.0-beta and 2024.10.15 > 2024.9.30.
func CompareVersions(a, b string) int {
	va, vb := parseVersion(a), parseVersion(b)
	n := max(len(va.segments), len(vb.segments))
	for i := range n {
		sa, sb := "0", "0"
		if i < len(va.segments) {
			sa = va.segments[i]
		}
		if i < len(vb.segments) {
			sb = vb.segments[i]
		}
		if c := compareSegment(sa, sb); c != 0 {
			return c
		}
	}
	switch {
	case !va.hasPre && !vb.hasPre:
		return 0
	case !va.hasPre:
		return 1
	case !vb.hasPre:
		return -1
	}
	return strings.Compare(va.pre, vb.pre)
}

type version struct {
	segments []string
	pre      string
	hasPre   bool
}

func parseVersion(s string) version {
	s = strings.TrimFunc(s, unicode.IsSpace)
	if strings.HasPrefix(s, "v") || strings.HasPrefix(s, "V") {
		s = s[1:]
	}
	if strings.HasSuffix(s, ")") {
		if i := strings.LastIndexByte(s, '('); i >= 0 {
			s = strings.TrimRightFunc(s[:i], unicode.IsSpace)
		}
	}
	var v version
	if base, pre, ok := strings.Cut(s, "-"); ok {
		s, v.pre, v.hasPre = base, pre, true
	}
	v.segments = strings.Split(s, ".")
	return v
}

// compareSegment compares two base segments: as integers of any length when both are
// all digits, else as bytes.
func compareSegment(a, b string) int {
	if allDigits(a) && allDigits(b) {
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
	}
	return strings.Compare(a, b)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// newestVersion returns the greatest of versions by CompareVersions. Versions that
// compare equal but are spelt differently ("1.2", "1.2.0") resolve to the greater
// spelling in byte order, so the same set always gives the same answer.
func newestVersion(versions []string) (string, bool) {
	best, found := "", false
	for _, v := range versions {
		if !found {
			best, found = v, true
			continue
		}
		c := CompareVersions(v, best)
		if c > 0 || (c == 0 && v > best) {
			best = v
		}
	}
	return best, found
}

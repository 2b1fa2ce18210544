package itunes

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// response is the body of GET /lookup (upstreams.md §6.2).
type response struct {
	ResultCount int      `json:"resultCount"`
	Results     []result `json:"results"`
}

// result is one app as the live API describes it. The rating fields are pointers
// because the live API leaves them out for some apps.
type result struct {
	WrapperType                        string      `json:"wrapperType"`
	Kind                               string      `json:"kind"`
	ArtistName                         string      `json:"artistName"`
	TrackID                            int64       `json:"trackId"`
	TrackName                          string      `json:"trackName"`
	TrackViewURL                       string      `json:"trackViewUrl"`
	BundleID                           string      `json:"bundleId"`
	Version                            string      `json:"version"`
	CurrentVersionReleaseDate          string      `json:"currentVersionReleaseDate,omitempty"`
	AverageUserRating                  *float64    `json:"averageUserRating,omitempty"`
	UserRatingCount                    *int64      `json:"userRatingCount,omitempty"`
	AverageUserRatingForCurrentVersion *float64    `json:"averageUserRatingForCurrentVersion,omitempty"`
	UserRatingCountForCurrentVersion   *int64      `json:"userRatingCountForCurrentVersion,omitempty"`
	Price                              json.Number `json:"price"`
	FormattedPrice                     string      `json:"formattedPrice"`
	Currency                           string      `json:"currency"`
	SellerName                         string      `json:"sellerName"`
	PrimaryGenreName                   string      `json:"primaryGenreName"`
}

func toResult(a App, country string, r Rating) result {
	seller := a.SellerName
	if seller == "" {
		seller = a.Name + " Inc."
	}
	genre := a.Genre
	if genre == "" {
		genre = "Utilities"
	}
	out := result{
		WrapperType:      "software",
		Kind:             "software",
		ArtistName:       seller,
		TrackID:          a.TrackID,
		TrackName:        a.Name,
		TrackViewURL:     "https://apps.apple.com/" + country + "/app/" + slug(a.Name) + "/id" + strconv.FormatInt(a.TrackID, 10) + "?uo=4",
		BundleID:         a.BundleID,
		Version:          a.Version,
		Price:            "0.00",
		FormattedPrice:   "Free",
		Currency:         currencyOf(country),
		SellerName:       seller,
		PrimaryGenreName: genre,
	}
	if !a.ReleasedAt.IsZero() {
		out.CurrentVersionReleaseDate = a.ReleasedAt.UTC().Format(time.RFC3339)
	}
	avg, count := r.Average, r.Count
	curAvg, curCount := avg, count
	if r.CurrentAverage != nil {
		curAvg = *r.CurrentAverage
	}
	if r.CurrentCount != nil {
		curCount = *r.CurrentCount
	}
	switch a.Variant {
	case VariantNoRatings:
	case VariantZeroCount:
		zeroF, zeroN := 0.0, int64(0)
		out.AverageUserRating, out.UserRatingCount = &zeroF, &zeroN
		out.AverageUserRatingForCurrentVersion, out.UserRatingCountForCurrentVersion = &zeroF, &zeroN
	case VariantNoCurrentVersion:
		out.AverageUserRating, out.UserRatingCount = &avg, &count
	default:
		out.AverageUserRating, out.UserRatingCount = &avg, &count
		out.AverageUserRatingForCurrentVersion, out.UserRatingCountForCurrentVersion = &curAvg, &curCount
	}
	return out
}

func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// apiError is the live API's error envelope for invalid parameters.
type apiError struct {
	ErrorMessage    string            `json:"errorMessage"`
	QueryParameters map[string]string `json:"queryParameters"`
}

func invalidValue(key string) apiError {
	return apiError{
		ErrorMessage: "Invalid value(s) for key(s): [" + key + "]",
		QueryParameters: map[string]string{
			"output":   "json",
			"callback": "A javascript function to handle your search results",
			"country":  "ISO-2A country code",
			"limit":    "The number of search results to return",
			"term":     "A search string",
			"lang":     "ISO-2A language code",
			"id":       "A comma-separated list of iTunes ids",
			"bundleId": "A comma-separated list of bundle ids",
		},
	}
}

// writeAPI writes a JSON document the way the live API does: served as JavaScript and
// preceded by three newlines, unless the switches say otherwise.
func writeAPI(w http.ResponseWriter, status int, v any, sw Switches) {
	body, err := json.Marshal(v)
	if err != nil {
		writeText(w, http.StatusInternalServerError)
		return
	}
	ct := "text/javascript; charset=utf-8"
	if sw.JSONContentType {
		ct = "application/json; charset=utf-8"
	}
	prefix := "\n\n\n"
	if sw.NoLeadingNewlines {
		prefix = ""
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(prefix))
	_, _ = w.Write(body)
	_, _ = w.Write([]byte("\n"))
}

func writeText(w http.ResponseWriter, status int) {
	ct, body := errorBody(status)
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errorBody is the live API's body for a status without content of its own: the
// parameter-error envelope for 400, a short plain-text line otherwise (throttling
// included).
func errorBody(status int) (string, []byte) {
	if status == http.StatusBadRequest {
		body, _ := json.Marshal(apiError{ErrorMessage: "Invalid value(s) for key(s): [term]", QueryParameters: map[string]string{}})
		return "text/javascript; charset=utf-8", append([]byte("\n\n\n"), body...)
	}
	return "text/plain; charset=utf-8", []byte(http.StatusText(status) + "\n")
}

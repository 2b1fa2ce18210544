package itunes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// App is what owlmetry reads from a lookup result (upstreams.md §6.2). The rating fields
// are nil when the API left them out (or sent null).
type App struct {
	// TrackID is Apple's numeric app id, the apps.apple_app_store_id (0 when absent).
	TrackID int64
	// BundleID is the bundle id.
	BundleID string
	// Name is trackName.
	Name string
	// Version is the current store version ("" when absent).
	Version string
	// AverageUserRating is the all-versions average.
	AverageUserRating *float64
	// UserRatingCount is the all-versions count.
	UserRatingCount *int64
	// AverageUserRatingForCurrentVersion is the current version's average.
	AverageUserRatingForCurrentVersion *float64
	// UserRatingCountForCurrentVersion is the current version's count.
	UserRatingCountForCurrentVersion *int64
}

// utf8BOM may precede the body when a proxy re-encodes it.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// parseLookup reads a 2xx lookup body. It ignores the content type (the live API serves
// JSON as text/javascript), skips leading whitespace, and accepts numbers sent as
// strings. It returns nil for an answer without results.
func parseLookup(body []byte) (*App, error) {
	body = bytes.TrimLeftFunc(bytes.TrimPrefix(bytes.TrimLeftFunc(body, unicode.IsSpace), utf8BOM), unicode.IsSpace)
	if len(body) == 0 || body[0] != '{' {
		return nil, errors.New("decode lookup response: not a JSON object")
	}
	var doc struct {
		Results json.RawMessage `json:"results"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode lookup response: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode lookup response: data after the JSON object")
	}
	if len(doc.Results) == 0 || string(doc.Results) == "null" {
		return nil, nil
	}
	var results []json.RawMessage
	if err := json.Unmarshal(doc.Results, &results); err != nil {
		return nil, errors.New("decode lookup response: results is not an array")
	}
	if len(results) == 0 {
		return nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(results[0], &fields); err != nil || fields == nil {
		return nil, errors.New("decode lookup response: results[0] is not an object")
	}
	app := &App{}
	var err error
	if app.TrackID, err = intField(fields, "trackId"); err != nil {
		return nil, err
	}
	app.BundleID = stringField(fields, "bundleId")
	app.Name = stringField(fields, "trackName")
	app.Version = stringField(fields, "version")
	if app.AverageUserRating, err = optFloat(fields, "averageUserRating"); err != nil {
		return nil, err
	}
	if app.UserRatingCount, err = optInt(fields, "userRatingCount"); err != nil {
		return nil, err
	}
	if app.AverageUserRatingForCurrentVersion, err = optFloat(fields, "averageUserRatingForCurrentVersion"); err != nil {
		return nil, err
	}
	if app.UserRatingCountForCurrentVersion, err = optInt(fields, "userRatingCountForCurrentVersion"); err != nil {
		return nil, err
	}
	return app, nil
}

// number reads a JSON number or a string holding one; ok is false for an absent or
// null field.
func number(fields map[string]json.RawMessage, name string) (string, bool, error) {
	raw, present := fields[name]
	if !present || string(raw) == "null" {
		return "", false, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		s = strings.TrimSpace(s)
		if _, perr := strconv.ParseFloat(s, 64); perr == nil {
			return s, true, nil
		}
	}
	return "", false, fmt.Errorf("decode lookup response: %s is not a number", name)
}

func optFloat(fields map[string]json.RawMessage, name string) (*float64, error) {
	s, ok, err := number(fields, name)
	if !ok || err != nil {
		return nil, err
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("decode lookup response: %s is not a finite number", name)
	}
	return &v, nil
}

func optInt(fields map[string]json.RawMessage, name string) (*int64, error) {
	s, ok, err := number(fields, name)
	if !ok || err != nil {
		return nil, err
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return &v, nil
	}
	// 917.0 or 9.17e2: accept integral values whatever their spelling.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return nil, fmt.Errorf("decode lookup response: %s is not an integer", name)
	}
	v := int64(f)
	return &v, nil
}

func intField(fields map[string]json.RawMessage, name string) (int64, error) {
	v, err := optInt(fields, name)
	if v == nil || err != nil {
		return 0, err
	}
	return *v, nil
}

// stringField reads a string, or the text of a number (a version sent as 3.1 stays
// usable); anything else reads as "".
func stringField(fields map[string]json.RawMessage, name string) string {
	raw, ok := fields[name]
	if !ok {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String()
	}
	return ""
}

// messageLimit is the longest error message kept (upstreams.md §2.2).
const messageLimit = 500

// errorMessage makes the message of a failed answer: the API's errorMessage when the
// body is JSON carrying one, else the raw body; control characters removed, cut to 500
// characters.
func errorMessage(body []byte) string {
	trimmed := bytes.TrimSpace(body)
	var doc struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(trimmed, &doc) == nil && doc.ErrorMessage != "" {
		return cleanMessage(doc.ErrorMessage)
	}
	return cleanMessage(string(trimmed))
}

func cleanMessage(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > messageLimit {
		s = string([]rune(s)[:messageLimit])
	}
	return s
}

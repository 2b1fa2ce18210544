package itunes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
	"github.com/owlmetry/owlmetry/internal/emulator/itunes"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// catalogue covers every shape of §8.4: a fully rated app with explicit current-version
// figures, one whose current-version figures mirror the totals, and the three variants.
func catalogue() itunes.State {
	return itunes.State{Apps: []itunes.App{
		{
			TrackID: 1500000002, BundleID: "com.example.tidepool", Name: "Tidepool", Version: "3.1.0",
			SellerName: "Tidepool Labs Inc.", Genre: "Weather", ReleasedAt: time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC),
			Storefronts: map[string]itunes.Rating{
				"us": {Average: 4.48211, Count: 917, CurrentAverage: ptr(4.61), CurrentCount: ptr[int64](88)},
				"ca": {Average: 4.1234567, Count: 240},
			},
		},
		{TrackID: 1600000001, BundleID: "com.example.unrated", Name: "Unrated", Version: "1.0", Variant: itunes.VariantNoRatings,
			Storefronts: map[string]itunes.Rating{"us": {Average: 4, Count: 3}}},
		{TrackID: 1600000002, BundleID: "com.example.zero", Name: "Zero", Version: "1.0", Variant: itunes.VariantZeroCount,
			Storefronts: map[string]itunes.Rating{"us": {Average: 4, Count: 3}}},
		{TrackID: 1600000003, BundleID: "com.example.nocurrent", Name: "No Current", Version: "2.0", Variant: itunes.VariantNoCurrentVersion,
			Storefronts: map[string]itunes.Rating{"us": {Average: 3.9, Count: 12}}},
	}}
}

type testBundle struct {
	emu   *itunes.Server
	clock *emukit.ManualClock
	base  string
	tr    *http.Transport
}

func setup(t *testing.T, mutate ...func(*itunes.Options)) *testBundle {
	t.Helper()
	b := &testBundle{clock: emukit.NewManualClock(t0)}
	opts := itunes.Options{Clock: b.clock, State: catalogue()}
	for _, m := range mutate {
		m(&opts)
	}
	emu, err := itunes.New(opts)
	require.NoError(t, err)
	b.emu = emu
	base, stop, err := emukit.Start(context.Background(), emu.Handler(), "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stop)
	b.base = base
	b.tr = &http.Transport{}
	t.Cleanup(b.tr.CloseIdleConnections)
	return b
}

type reply struct {
	Status int
	Header http.Header
	Body   string
}

func (b *testBundle) request(t *testing.T, method, pathQuery, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.base+pathQuery, rd)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: b.tr, Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: string(data)}
}

func (b *testBundle) get(t *testing.T, pathQuery string) reply {
	t.Helper()
	return b.request(t, http.MethodGet, pathQuery, "")
}

// lookupDoc decodes a lookup body strictly into the live API's shape: the three
// newlines first, then one JSON object and a newline.
func lookupDoc(t *testing.T, body string) map[string]any {
	t.Helper()
	require.True(t, strings.HasPrefix(body, "\n\n\n{"), "three newlines before the JSON: %q", body[:min(len(body), 10)])
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&doc))
	return doc
}

func results(t *testing.T, doc map[string]any) []map[string]any {
	t.Helper()
	list, ok := doc["results"].([]any)
	require.True(t, ok, "results is an array")
	require.Equal(t, json.Number(fmt.Sprint(len(list))), doc["resultCount"], "resultCount matches the results")
	out := make([]map[string]any, 0, len(list))
	for _, r := range list {
		out = append(out, r.(map[string]any))
	}
	return out
}

const emptyBody = "\n\n\n{\"resultCount\":0,\"results\":[]}\n"

func TestLookupResponseShape(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.get(t, "/lookup?bundleId=com.example.tidepool&country=us")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "text/javascript; charset=utf-8", r.Header.Get("Content-Type"))
	require.Empty(t, r.Header.Get("Retry-After"))
	res := results(t, lookupDoc(t, r.Body))
	require.Len(t, res, 1)
	got := res[0]
	want := map[string]any{
		"wrapperType":                        "software",
		"kind":                               "software",
		"artistName":                         "Tidepool Labs Inc.",
		"trackId":                            json.Number("1500000002"),
		"trackName":                          "Tidepool",
		"trackViewUrl":                       "https://apps.apple.com/us/app/tidepool/id1500000002?uo=4",
		"bundleId":                           "com.example.tidepool",
		"version":                            "3.1.0",
		"currentVersionReleaseDate":          "2026-11-03T08:00:00Z",
		"averageUserRating":                  json.Number("4.48211"),
		"userRatingCount":                    json.Number("917"),
		"averageUserRatingForCurrentVersion": json.Number("4.61"),
		"userRatingCountForCurrentVersion":   json.Number("88"),
		"price":                              json.Number("0.00"),
		"formattedPrice":                     "Free",
		"currency":                           "USD",
		"sellerName":                         "Tidepool Labs Inc.",
		"primaryGenreName":                   "Weather",
	}
	require.Equal(t, want, got)
	require.True(t, strings.HasSuffix(r.Body, "}\n"))

	again := b.get(t, "/lookup?bundleId=com.example.tidepool&country=us")
	require.Equal(t, r.Body, again.Body, "the same state answers byte-identical bodies")
}

func TestLookup(t *testing.T) {
	t.Parallel()

	first := func(t *testing.T, r reply) map[string]any {
		t.Helper()
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		res := results(t, lookupDoc(t, r.Body))
		require.Len(t, res, 1)
		return res[0]
	}

	t.Run("by id", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		got := first(t, b.get(t, "/lookup?id=1500000002&country=ca"))
		require.Equal(t, "com.example.tidepool", got["bundleId"])
		require.Equal(t, json.Number("4.1234567"), got["averageUserRating"], "many decimals survive")
		require.Equal(t, "CAD", got["currency"])
	})

	t.Run("current-version fields mirror the totals when unset", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		got := first(t, b.get(t, "/lookup?bundleId=com.example.tidepool&country=ca"))
		require.Equal(t, got["averageUserRating"], got["averageUserRatingForCurrentVersion"])
		require.Equal(t, got["userRatingCount"], got["userRatingCountForCurrentVersion"])
	})

	t.Run("several ids keep the request order", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.get(t, "/lookup?id=1600000003,999,1500000002")
		res := results(t, lookupDoc(t, r.Body))
		require.Len(t, res, 2)
		require.Equal(t, json.Number("1600000003"), res[0]["trackId"])
		require.Equal(t, json.Number("1500000002"), res[1]["trackId"])
	})

	t.Run("country is case-insensitive and defaults to us", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		upper := first(t, b.get(t, "/lookup?bundleId=com.example.tidepool&country=US"))
		none := first(t, b.get(t, "/lookup?bundleId=com.example.tidepool"))
		require.Equal(t, json.Number("917"), upper["userRatingCount"])
		require.Equal(t, upper, none)
		require.Equal(t, "CAD", first(t, b.get(t, "/lookup?bundleId=com.example.tidepool&country=Ca"))["currency"])
	})

	t.Run("bundle ids are exact", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.Equal(t, emptyBody, b.get(t, "/lookup?bundleId=COM.EXAMPLE.TIDEPOOL").Body)
	})

	t.Run("unknown app and absent storefront answer an empty 200", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, q := range []string{
			"bundleId=com.example.nothing&country=us",
			"id=42&country=us",
			"bundleId=com.example.tidepool&country=de", // a real storefront that does not sell it
			"", // neither id nor bundleId
		} {
			r := b.get(t, "/lookup?"+q)
			require.Equal(t, http.StatusOK, r.Status, q)
			require.Equal(t, emptyBody, r.Body, q)
		}
	})

	t.Run("a malformed id is a parameter error", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.get(t, "/lookup?id=abc")
		require.Equal(t, http.StatusBadRequest, r.Status)
		require.Contains(t, r.Body, `"errorMessage":"Invalid value(s) for key(s): [id]"`)
	})

	t.Run("variants", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ratingKeys := []string{"averageUserRating", "userRatingCount", "averageUserRatingForCurrentVersion", "userRatingCountForCurrentVersion"}

		unrated := first(t, b.get(t, "/lookup?bundleId=com.example.unrated"))
		for _, k := range ratingKeys {
			require.NotContains(t, unrated, k)
		}
		require.Equal(t, "1.0", unrated["version"], "the rest of the result is there")

		zero := first(t, b.get(t, "/lookup?bundleId=com.example.zero"))
		for _, k := range ratingKeys {
			require.Equal(t, json.Number("0"), zero[k], k)
		}

		noCurrent := first(t, b.get(t, "/lookup?bundleId=com.example.nocurrent"))
		require.Equal(t, json.Number("3.9"), noCurrent["averageUserRating"])
		require.Equal(t, json.Number("12"), noCurrent["userRatingCount"])
		require.NotContains(t, noCurrent, "averageUserRatingForCurrentVersion")
		require.NotContains(t, noCurrent, "userRatingCountForCurrentVersion")
	})

	t.Run("other paths and methods", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.get(t, "/search?term=tidepool")
		require.Equal(t, http.StatusNotFound, r.Status)
		r = b.request(t, http.MethodPost, "/lookup?bundleId=com.example.tidepool", "")
		require.Equal(t, http.StatusMethodNotAllowed, r.Status)
	})
}

func TestCountryOutsideStorefronts(t *testing.T) {
	t.Parallel()

	t.Run("empty 200 by default", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, cc := range []string{"aq", "zz", "usa"} {
			r := b.get(t, "/lookup?bundleId=com.example.tidepool&country="+cc)
			require.Equal(t, http.StatusOK, r.Status, cc)
			require.Equal(t, emptyBody, r.Body, cc)
		}
	})

	t.Run("400 with the switch", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *itunes.Options) {
			o.Limits = &itunes.Limits{Throttle: itunes.DefaultLimits().Throttle, Switches: itunes.Switches{RejectUnknownCountry: true}}
		})
		r := b.get(t, "/lookup?bundleId=com.example.tidepool&country=zz")
		require.Equal(t, http.StatusBadRequest, r.Status)
		var doc struct {
			ErrorMessage    string            `json:"errorMessage"`
			QueryParameters map[string]string `json:"queryParameters"`
		}
		require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(r.Body)), &doc))
		require.Equal(t, "Invalid value(s) for key(s): [country]", doc.ErrorMessage)
		require.Equal(t, "ISO-2A country code", doc.QueryParameters["country"])
		require.Equal(t, http.StatusOK, b.get(t, "/lookup?bundleId=com.example.tidepool&country=de").Status, "storefronts in the set still answer")
	})

	t.Run("a configured set replaces Appendix A", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *itunes.Options) { o.Storefronts = []string{"US"} })
		require.Contains(t, b.get(t, "/lookup?bundleId=com.example.tidepool&country=us").Body, `"resultCount":1`)
		require.Equal(t, emptyBody, b.get(t, "/lookup?bundleId=com.example.tidepool&country=ca").Body)
	})
}

func TestFormattingSwitches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.emu.SetLimits(itunes.Limits{Throttle: itunes.DefaultLimits().Throttle, Switches: itunes.Switches{JSONContentType: true, NoLeadingNewlines: true}}))
	r := b.get(t, "/lookup?bundleId=com.example.nothing")
	require.Equal(t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
	require.Equal(t, "{\"resultCount\":0,\"results\":[]}\n", r.Body)
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	const q = "/lookup?bundleId=com.example.tidepool"
	statuses := func(t *testing.T, b *testBundle, n int) []int {
		t.Helper()
		out := make([]int, 0, n)
		for range n {
			out = append(out, b.get(t, q).Status)
		}
		return out
	}
	repeat := func(status, n int) []int { return slices.Repeat([]int{status}, n) }

	t.Run("default bucket: burst 20, then one per 50 ms, answered 403 in plain text", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.Equal(t, repeat(200, 20), statuses(t, b, 20))
		r := b.get(t, q)
		require.Equal(t, http.StatusForbidden, r.Status)
		require.Equal(t, "text/plain; charset=utf-8", r.Header.Get("Content-Type"))
		require.LessOrEqual(t, len(r.Body), 40, "a short body")
		require.Empty(t, r.Header.Get("Retry-After"), "Apple sends no Retry-After")

		b.clock.Advance(49 * time.Millisecond)
		require.Equal(t, http.StatusForbidden, b.get(t, q).Status)
		b.clock.Advance(time.Millisecond)
		require.Equal(t, []int{200, 403}, statuses(t, b, 2))
		b.clock.Advance(time.Second)
		require.Equal(t, append(repeat(200, 20), 403), statuses(t, b, 21), "a second refills 20 tokens")
	})

	t.Run("429 mode", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.request(t, http.MethodPut, "/_emulator/limits", `{"throttle":{"status":429}}`)
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		statuses(t, b, 20)
		r = b.get(t, q)
		require.Equal(t, http.StatusTooManyRequests, r.Status)
		require.Equal(t, "Too Many Requests\n", r.Body)
	})

	t.Run("documented preset", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.request(t, http.MethodPut, "/_emulator/limits", `{"throttle":{"preset":"documented"}}`)
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		require.JSONEq(t, `{"throttle":{"enabled":true,"per_minute":20,"burst":20,"status":403},"switches":{"json_content_type":false,"no_leading_newlines":false,"reject_unknown_country":false}}`, r.Body)
		statuses(t, b, 20)
		require.Equal(t, http.StatusForbidden, b.get(t, q).Status)
		b.clock.Advance(2999 * time.Millisecond)
		require.Equal(t, http.StatusForbidden, b.get(t, q).Status)
		b.clock.Advance(time.Millisecond)
		require.Equal(t, []int{200, 403}, statuses(t, b, 2), "20/min is one every 3 s")
	})

	t.Run("explicit fields win over the preset in the same update", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.request(t, http.MethodPut, "/_emulator/limits", `{"throttle":{"preset":"documented","burst":2}}`)
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		require.Equal(t, itunes.Throttle{Enabled: true, PerMinute: 20, Burst: 2, Status: 403}, b.emu.Limits().Throttle)
		require.Equal(t, []int{200, 200, 403}, statuses(t, b, 3))
	})

	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *itunes.Options) {
			l := itunes.DefaultLimits()
			l.Throttle.Enabled = false
			o.Limits = &l
		})
		require.Equal(t, repeat(200, 40), statuses(t, b, 40))
	})

	t.Run("buckets are per client IP", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.Equal(t, append(repeat(200, 20), 403), statuses(t, b, 21))
		// 127.0.0.2 is loopback too on Linux: a second client address.
		tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(b.base + q)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "127.0.0.2", strings.Split(b.emu.Requests(emukit.Filter{})[21].RemoteAddr, ":")[0])
	})

	t.Run("invalid limits are refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, body := range []string{
			`{"throttle":{"status":503}}`,
			`{"throttle":{"per_minute":0}}`,
			`{"throttle":{"burst":-1}}`,
			`{"throttle":{"preset":"generous"}}`,
			`{"switches":{"strict":true}}`,
		} {
			r := b.request(t, http.MethodPut, "/_emulator/limits", body)
			require.Equal(t, http.StatusBadRequest, r.Status, body)
		}
		require.Equal(t, itunes.DefaultLimits(), b.emu.Limits(), "a refused update changes nothing")
	})
}

func TestThrottleStorm(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.request(t, http.MethodPost, "/_emulator/throttle", `{"next":3}`)
	require.Equal(t, http.StatusOK, r.Status)
	require.JSONEq(t, `{"next":3}`, r.Body)
	var got []int
	for range 4 {
		got = append(got, b.get(t, "/lookup?bundleId=com.example.tidepool").Status)
	}
	require.Equal(t, []int{403, 403, 403, 200}, got)
	require.JSONEq(t, `{"next":0}`, b.get(t, "/_emulator/throttle").Body)
	// The storm did not spend tokens: 19 more fit in the burst after the one success.
	for i := range 19 {
		require.Equal(t, 200, b.get(t, "/lookup?bundleId=com.example.tidepool").Status, i)
	}
	require.Equal(t, 403, b.get(t, "/lookup?bundleId=com.example.tidepool").Status)

	require.Equal(t, http.StatusBadRequest, b.request(t, http.MethodPost, "/_emulator/throttle", `{"next":-1}`).Status)
	require.Equal(t, http.StatusBadRequest, b.request(t, http.MethodPost, "/_emulator/throttle", `{}`).Status)

	b.emu.Throttle(2)
	b.emu.Reset()
	require.Equal(t, 200, b.get(t, "/lookup?bundleId=com.example.tidepool").Status, "reset ends a storm and refills buckets")
}

func TestFaults(t *testing.T) {
	t.Parallel()

	t.Run("slow response", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.emu.MustAddFault(emukit.FaultRule{Match: emukit.FaultMatch{Path: "/lookup"}, Action: emukit.FaultAction{Delay: emukit.Duration(40 * time.Millisecond)}})
		started := time.Now()
		r := b.get(t, "/lookup?bundleId=com.example.tidepool")
		require.GreaterOrEqual(t, time.Since(started), 40*time.Millisecond)
		require.Equal(t, 200, r.Status)
		require.Contains(t, r.Body, `"resultCount":1`)
	})

	t.Run("5xx with the vendor's body", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.emu.MustAddFault(emukit.FaultRule{Match: emukit.FaultMatch{Query: map[string]string{"country": "de"}}, Action: emukit.FaultAction{Status: 503}})
		r := b.get(t, "/lookup?bundleId=com.example.tidepool&country=de")
		require.Equal(t, 503, r.Status)
		require.Equal(t, "Service Unavailable\n", r.Body)
		require.Equal(t, 200, b.get(t, "/lookup?bundleId=com.example.tidepool&country=us").Status)
	})

	t.Run("malformed JSON", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.emu.MustAddFault(emukit.FaultRule{Action: emukit.FaultAction{MalformedJSON: true}, Times: 1})
		r := b.get(t, "/lookup?bundleId=com.example.tidepool")
		require.Equal(t, 200, r.Status)
		require.Equal(t, "text/javascript; charset=utf-8", r.Header.Get("Content-Type"))
		require.False(t, json.Valid([]byte(r.Body)))
	})

	t.Run("faults come before the throttle", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.emu.Throttle(5)
		b.emu.MustAddFault(emukit.FaultRule{Action: emukit.FaultAction{Status: 502}, Times: 1})
		require.Equal(t, 502, b.get(t, "/lookup?bundleId=com.example.tidepool").Status)
		require.Equal(t, 403, b.get(t, "/lookup?bundleId=com.example.tidepool").Status)
	})
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.emu.Throttle(1)
	req, err := http.NewRequest(http.MethodGet, b.base+"/lookup?bundleId=com.example.tidepool&country=CA", nil)
	require.NoError(t, err)
	req.Header.Set("User-Agent", "owlmetry/test")
	for range 2 {
		resp, err := (&http.Client{Transport: b.tr}).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	got := b.emu.Requests(emukit.Filter{Path: "/lookup"})
	require.Len(t, got, 2)
	require.Equal(t, "bundleId=com.example.tidepool&country=CA", got[0].Query)
	require.Equal(t, "owlmetry/test", got[0].Headers.Get("User-Agent"))
	require.Equal(t, t0, got[0].Time)
	require.Equal(t, 403, got[0].Status)
	require.Equal(t, 200, got[1].Status)
	require.Contains(t, got[1].ResponseBody, `"currency":"CAD"`)
	require.Equal(t, "text/javascript; charset=utf-8", got[1].ResponseHeaders.Get("Content-Type"))
}

func TestControlState(t *testing.T) {
	t.Parallel()

	t.Run("seed, read, upsert, reset over HTTP", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *itunes.Options) { o.State = itunes.State{} })
		require.JSONEq(t, `{"apps":[]}`, b.get(t, "/_emulator/state").Body)
		require.JSONEq(t, `{"ok":true,"api":"itunes"}`, b.get(t, "/_emulator/health").Body)

		seed := `{"apps":[{"track_id":7,"bundle_id":"com.example.seven","name":"Seven","version":"7.0","storefronts":{"us":{"average":4.5,"count":10}}}]}`
		r := b.request(t, http.MethodPut, "/_emulator/state", seed)
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		require.Contains(t, b.get(t, "/lookup?bundleId=com.example.seven").Body, `"trackId":7`)

		r = b.request(t, http.MethodPost, "/_emulator/state/apps", `[{"track_id":8,"bundle_id":"com.example.eight","name":"Eight","version":"1","storefronts":{"fr":{"average":3,"count":1}}},{"track_id":7,"bundle_id":"com.example.seven","name":"Seven","version":"7.1","storefronts":{"us":{"average":4.5,"count":11}}}]`)
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		st := b.emu.State()
		require.Len(t, st.Apps, 2)
		require.Equal(t, "7.1", st.Apps[0].Version, "an app with the same track id is replaced")
		require.Equal(t, int64(8), st.Apps[1].TrackID, "apps are listed by track id")
		require.Contains(t, b.get(t, "/lookup?id=8&country=fr").Body, `"trackId":8`)

		r = b.request(t, http.MethodPost, "/_emulator/state/apps", `{"apps":[{"track_id":9,"bundle_id":"com.example.seven","name":"Dup","version":"1","storefronts":{}}]}`)
		require.Equal(t, http.StatusBadRequest, r.Status, "a bundle id cannot be taken twice")
		require.Contains(t, r.Body, "appears twice")
		require.Equal(t, http.StatusNotFound, b.request(t, http.MethodPost, "/_emulator/state/reviews", `[]`).Status)

		b.emu.MustAddFault(emukit.FaultRule{Action: emukit.FaultAction{Status: 500}})
		require.Equal(t, http.StatusOK, b.request(t, http.MethodPost, "/_emulator/reset", "").Status)
		st = b.emu.State()
		require.Len(t, st.Apps, 1, "reset returns to the PUT seed")
		require.Equal(t, "7.0", st.Apps[0].Version)
		require.Empty(t, b.emu.Faults())
		require.Empty(t, b.emu.Requests(emukit.Filter{}))
	})

	t.Run("invalid states are refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, body := range []string{
			`{"apps":[{"track_id":0,"bundle_id":"x","storefronts":{}}]}`,
			`{"apps":[{"track_id":1,"bundle_id":"","storefronts":{}}]}`,
			`{"apps":[{"track_id":1,"bundle_id":"a","storefronts":{}},{"track_id":1,"bundle_id":"b","storefronts":{}}]}`,
			`{"apps":[{"track_id":1,"bundle_id":"a","variant":"weird","storefronts":{}}]}`,
			`{"apps":[{"track_id":1,"bundle_id":"a","storefronts":{"USA":{"average":1,"count":1}}}]}`,
			`{"apps":[{"track_id":1,"bundle_id":"a","storefronts":{"us":{"average":1,"count":-1}}}]}`,
			`{"apps":[{"track_id":1,"bundle_id":"a","colour":"red","storefronts":{}}]}`,
		} {
			r := b.request(t, http.MethodPut, "/_emulator/state", body)
			require.Equal(t, http.StatusBadRequest, r.Status, body)
		}
		require.Equal(t, catalogue().Apps[0].BundleID, b.emu.State().Apps[0].BundleID, "refused seeds change nothing")
	})

	t.Run("Go API", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.NoError(t, b.emu.PutApps(itunes.App{TrackID: 5, BundleID: "com.example.five", Name: "Five", Version: "5", Storefronts: map[string]itunes.Rating{"jp": {Average: 4.9, Count: 2}}}))
		require.Contains(t, b.get(t, "/lookup?bundleId=com.example.five&country=jp").Body, `"currency":"JPY"`)
		st := b.emu.State()
		st.Apps[0].Storefronts["us"] = itunes.Rating{Count: 1}
		require.NotEqual(t, st.Apps[0].Storefronts["us"], b.emu.State().Apps[0].Storefronts["us"], "State returns a copy")
		b.emu.Reset()
		require.Len(t, b.emu.State().Apps, len(catalogue().Apps), "PutApps does not change the seed")
		require.NoError(t, b.emu.Seed(itunes.State{}))
		require.Equal(t, emptyBody, b.get(t, "/lookup?bundleId=com.example.tidepool").Body)
	})
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	_, err := itunes.New(itunes.Options{Storefronts: []string{"usa"}})
	require.ErrorContains(t, err, "storefront")
	_, err = itunes.New(itunes.Options{Limits: &itunes.Limits{}})
	require.ErrorContains(t, err, "per_minute")
	_, err = itunes.New(itunes.Options{State: itunes.State{Apps: []itunes.App{{TrackID: -1}}}})
	require.ErrorContains(t, err, "track_id")
	emu, err := itunes.New(itunes.Options{Limits: &itunes.Limits{Throttle: itunes.Throttle{Preset: "documented", Enabled: true, Status: 429}}})
	require.NoError(t, err)
	require.Equal(t, itunes.Throttle{Enabled: true, PerMinute: 20, Burst: 20, Status: 429}, emu.Limits().Throttle)
}

func TestDefaultStorefronts(t *testing.T) {
	t.Parallel()
	codes := itunes.DefaultStorefronts()
	require.Len(t, codes, 249)
	require.True(t, slices.IsSorted(codes))
	require.Len(t, slices.Compact(slices.Clone(codes)), 249, "no duplicates")
	require.NotContains(t, codes, "aq")
	require.Contains(t, codes, "xk")
	for _, cc := range codes {
		require.Regexp(t, `^[a-z]{2}$`, cc)
	}
}

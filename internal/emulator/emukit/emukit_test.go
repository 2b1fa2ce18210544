package emukit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// toyBackend is the smallest emulator backend: a list of names as state and one limit,
// enough to exercise the Kit's generic control routes.
type toyBackend struct {
	mu     sync.Mutex
	seed   []string
	names  []string
	limit  int
	resets int
}

type toyState struct {
	Names []string `json:"names"`
}

func (b *toyBackend) StateJSON() ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return json.Marshal(toyState{Names: append([]string{}, b.names...)})
}

func (b *toyBackend) SeedJSON(data []byte) error {
	var st toyState
	if err := emukit.DecodeJSON(data, &st); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seed, b.names = st.Names, append([]string{}, st.Names...)
	return nil
}

func (b *toyBackend) UpsertJSON(collection string, data []byte) error {
	if collection != "names" {
		return fmt.Errorf("%w %q", emukit.ErrUnknownCollection, collection)
	}
	var names []string
	if err := emukit.DecodeJSON(data, &names); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.names = append(b.names, names...)
	return nil
}

func (b *toyBackend) ResetState() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.names = append([]string{}, b.seed...)
	b.resets++
}

func (b *toyBackend) LimitsJSON() ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return json.Marshal(map[string]int{"limit": b.limit})
}

func (b *toyBackend) UpdateLimitsJSON(data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := struct {
		Limit int `json:"limit"`
	}{b.limit}
	if err := emukit.DecodeJSON(data, &l); err != nil {
		return err
	}
	if l.Limit < 0 {
		return errors.New("limit must not be negative")
	}
	b.limit = l.Limit
	return nil
}

// toyVendor answers GET /v1/echo/{id} with a small JSON document and POST /v1/items
// with the request body.
func toyVendor(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/echo/"):
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Toy", "yes")
		_, _ = fmt.Fprintf(w, `{"id":%q,"query":%q}`, strings.TrimPrefix(r.URL.Path, "/v1/echo/"), r.URL.RawQuery)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/items":
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"not found"}`)
	}
}

type testBundle struct {
	kit     *emukit.Kit
	backend *toyBackend
	clock   *emukit.ManualClock
	base    string
	http    *http.Client
}

func setup(t *testing.T, mutate ...func(*emukit.Options)) *testBundle {
	t.Helper()
	b := &testBundle{backend: &toyBackend{seed: []string{"a"}, names: []string{"a"}, limit: 5}, clock: emukit.NewManualClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	opts := emukit.Options{
		API:     "toy",
		Clock:   b.clock,
		Vendor:  http.HandlerFunc(toyVendor),
		Backend: b.backend,
		ErrorBody: func(status int) (string, []byte) {
			return "application/json", []byte(fmt.Sprintf(`{"error":{"status":%d}}`, status))
		},
	}
	for _, m := range mutate {
		m(&opts)
	}
	b.kit = emukit.New(opts)
	base, stop, err := emukit.Start(context.Background(), b.kit, "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stop)
	b.base = base
	// A fresh transport per test, closed at the end, so goleak sees no idle connections.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	b.http = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return b
}

type reply struct {
	Status int
	Header http.Header
	Body   string
}

func (b *testBundle) do(t *testing.T, method, path string, body string, headers ...string) (reply, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: string(data)}, err
}

func (b *testBundle) mustDo(t *testing.T, method, path string, body string, headers ...string) reply {
	t.Helper()
	r, err := b.do(t, method, path, body, headers...)
	require.NoError(t, err)
	return r
}

func TestMatchPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/v1/apps", "/v1/apps", true},
		{"/v1/apps", "/v1/apps/1", false},
		{"/v1/*", "/v1/apps", true},
		{"/v1/*", "/v1/apps/1", false},
		{"/v1/*/reviews", "/v1/apps/reviews", true},
		{"/v1/**", "/v1", true},
		{"/v1/**", "/v1/a/b/c", true},
		{"/**/reviews", "/v1/apps/1/reviews", true},
		{"/**/reviews", "/v1/apps/1/responses", false},
		{"/customers/*", "/customers/%24RCAnonymousID%3Aabc", true},
		{"/customers/$RCAnonymousID:abc", "/customers/%24RCAnonymousID%3Aabc", false},
		{"**", "/anything/at/all", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, emukit.MatchPath(tt.pattern, tt.path))
		})
	}
}

func TestTokenBucket(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	t.Run("burst then one per interval", func(t *testing.T) {
		t.Parallel()
		b := emukit.NewTokenBucket(1200, time.Minute, 20) // 50ms per token
		for i := range 20 {
			ok, _ := b.Take("ip", t0)
			require.True(t, ok, "request %d of the burst", i+1)
		}
		ok, wait := b.Take("ip", t0)
		require.False(t, ok)
		require.Equal(t, 50*time.Millisecond, wait)
		ok, _ = b.Take("ip", t0.Add(49*time.Millisecond))
		require.False(t, ok, "a token is not back before its interval")
		ok, _ = b.Take("ip", t0.Add(50*time.Millisecond))
		require.True(t, ok)
	})

	t.Run("keys are independent", func(t *testing.T) {
		t.Parallel()
		b := emukit.NewTokenBucket(1, time.Minute, 1)
		ok, _ := b.Take("a", t0)
		require.True(t, ok)
		ok, _ = b.Take("a", t0)
		require.False(t, ok)
		ok, _ = b.Take("b", t0)
		require.True(t, ok)
	})

	t.Run("exactly the rate is never refused, a hair faster eventually is", func(t *testing.T) {
		t.Parallel()
		exact := emukit.NewTokenBucket(1200, time.Minute, 1)
		for i := range 10_000 {
			ok, _ := exact.Take("ip", t0.Add(time.Duration(i)*50*time.Millisecond))
			require.True(t, ok, "request %d at the exact rate", i)
		}
		fast := emukit.NewTokenBucket(1200, time.Minute, 20)
		refused := -1
		for i := range 10_000 {
			if ok, _ := fast.Take("ip", t0.Add(time.Duration(i)*49*time.Millisecond)); !ok {
				refused = i
				break
			}
		}
		// 1 ms gained per request: the burst of 19 spare tokens lasts about 19×50 requests.
		require.Greater(t, refused, 900)
		require.Less(t, refused, 1000)
	})

	t.Run("reset refills", func(t *testing.T) {
		t.Parallel()
		b := emukit.NewTokenBucket(1, time.Hour, 1)
		ok, _ := b.Take("ip", t0)
		require.True(t, ok)
		b.Reset()
		ok, _ = b.Take("ip", t0)
		require.True(t, ok)
	})
}

func TestJournal(t *testing.T) {
	t.Parallel()

	t.Run("records both sides of each exchange", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.mustDo(t, http.MethodGet, "/v1/echo/%24x?b=2&a=1", "", "User-Agent", "probe/1", "Authorization", "Bearer secret-token")
		require.Equal(t, http.StatusOK, r.Status)
		b.mustDo(t, http.MethodPost, "/v1/items", `{"n":1}`)

		all := b.kit.Requests(emukit.Filter{})
		require.Len(t, all, 2)
		e := all[0]
		require.Equal(t, int64(1), e.Seq)
		require.Equal(t, b.clock.Now(), e.Time, "entries carry emulator time")
		require.Equal(t, http.MethodGet, e.Method)
		require.Equal(t, "/v1/echo/%24x", e.Path, "the escaped path is kept")
		require.Equal(t, "b=2&a=1", e.Query, "the raw query is kept in order")
		require.Equal(t, "probe/1", e.Headers.Get("User-Agent"))
		require.Equal(t, "Bearer secret-token", e.Headers.Get("Authorization"), "the journal is for tests; it keeps what was sent")
		require.Equal(t, http.StatusOK, e.Status)
		require.Equal(t, "yes", e.ResponseHeaders.Get("X-Toy"))
		require.Equal(t, `{"id":"$x","query":"b=2&a=1"}`, e.ResponseBody)
		require.Contains(t, e.RemoteAddr, "127.0.0.1:")
		require.Empty(t, e.FaultID)
		require.Empty(t, e.Error)

		p := all[1]
		require.Equal(t, int64(2), p.Seq)
		require.Equal(t, `{"n":1}`, p.Body)
		require.Equal(t, http.StatusCreated, p.Status)
	})

	t.Run("filters by since, method and path pattern", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.mustDo(t, http.MethodGet, "/v1/echo/1", "")
		b.mustDo(t, http.MethodPost, "/v1/items", `[]`)
		b.mustDo(t, http.MethodGet, "/v1/echo/2", "")
		require.Len(t, b.kit.Requests(emukit.Filter{Method: http.MethodGet}), 2)
		require.Len(t, b.kit.Requests(emukit.Filter{Path: "/v1/echo/*"}), 2)
		got := b.kit.Requests(emukit.Filter{Since: 1, Path: "/v1/echo/*"})
		require.Len(t, got, 1)
		require.Equal(t, "/v1/echo/2", got[0].Path)
		require.Empty(t, b.kit.Requests(emukit.Filter{Since: b.kit.LastSeq()}))
	})

	t.Run("control routes are not journaled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.mustDo(t, http.MethodGet, "/_emulator/health", "")
		require.Empty(t, b.kit.Requests(emukit.Filter{}))
	})

	t.Run("ring keeps the newest entries and sequence numbers keep counting", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *emukit.Options) { o.JournalSize = 3 })
		for i := range 5 {
			b.mustDo(t, http.MethodGet, fmt.Sprintf("/v1/echo/%d", i), "")
		}
		got := b.kit.Requests(emukit.Filter{})
		require.Len(t, got, 3)
		require.Equal(t, []int64{3, 4, 5}, []int64{got[0].Seq, got[1].Seq, got[2].Seq})
		require.Equal(t, "/v1/echo/2", got[0].Path)
		b.kit.ClearRequests()
		require.Empty(t, b.kit.Requests(emukit.Filter{}))
		b.mustDo(t, http.MethodGet, "/v1/echo/x", "")
		require.Equal(t, int64(6), b.kit.Requests(emukit.Filter{})[0].Seq)
	})

	t.Run("bodies are kept up to 64 KiB", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		big := `"` + strings.Repeat("x", 70<<10) + `"`
		r := b.mustDo(t, http.MethodPost, "/v1/items", big)
		require.Len(t, r.Body, len(big), "the client gets the whole body")
		e := b.kit.Requests(emukit.Filter{})[0]
		require.Len(t, e.Body, 64<<10)
		require.Len(t, e.ResponseBody, 64<<10)
	})
}

func TestFaults(t *testing.T) {
	t.Parallel()

	t.Run("status with the vendor's error body", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rule := b.kit.MustAddFault(emukit.FaultRule{Match: emukit.FaultMatch{Path: "/v1/echo/*"}, Action: emukit.FaultAction{Status: 503}})
		require.Equal(t, "f1", rule.ID)
		r := b.mustDo(t, http.MethodGet, "/v1/echo/1", "")
		require.Equal(t, 503, r.Status)
		require.Equal(t, `{"error":{"status":503}}`, r.Body)
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		e := b.kit.Requests(emukit.Filter{})[0]
		require.Equal(t, "f1", e.FaultID)
		require.Equal(t, 503, e.Status)
		require.Equal(t, 1, b.kit.Faults()[0].Applied)
	})

	t.Run("status with a JSON or text body and header edits", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		retry, gone := "7", (*string)(nil)
		b.kit.MustAddFault(emukit.FaultRule{Match: emukit.FaultMatch{Query: map[string]string{"q": "json"}}, Action: emukit.FaultAction{Status: 429, Body: json.RawMessage(`{"x":1}`), Headers: map[string]*string{"Retry-After": &retry}}})
		b.kit.MustAddFault(emukit.FaultRule{Match: emukit.FaultMatch{Query: map[string]string{"q": "text"}}, Action: emukit.FaultAction{Status: 400, BodyText: "nope"}})
		b.kit.MustAddFault(emukit.FaultRule{Match: emukit.FaultMatch{Query: map[string]string{"q": "strip"}}, Action: emukit.FaultAction{Headers: map[string]*string{"X-Toy": gone}}})

		r := b.mustDo(t, http.MethodGet, "/v1/echo/1?q=json", "")
		require.Equal(t, 429, r.Status)
		require.JSONEq(t, `{"x":1}`, r.Body)
		require.Equal(t, "7", r.Header.Get("Retry-After"))

		r = b.mustDo(t, http.MethodGet, "/v1/echo/1?q=text", "")
		require.Equal(t, 400, r.Status)
		require.Equal(t, "nope", r.Body)

		r = b.mustDo(t, http.MethodGet, "/v1/echo/1?q=strip", "")
		require.Equal(t, 200, r.Status, "a header-only rule lets the request through")
		require.Empty(t, r.Header.Values("X-Toy"))
	})

	t.Run("match on method, header and body", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.kit.MustAddFault(emukit.FaultRule{Match: emukit.FaultMatch{Method: http.MethodPost, Header: map[string]string{"X-Tenant": "t1"}, BodyContains: "boom"}, Action: emukit.FaultAction{Status: 500}})
		require.Equal(t, 201, b.mustDo(t, http.MethodPost, "/v1/items", `{"boom":1}`).Status, "header missing")
		require.Equal(t, 201, b.mustDo(t, http.MethodPost, "/v1/items", `{"ok":1}`, "X-Tenant", "t1").Status, "body does not match")
		require.Equal(t, 200, b.mustDo(t, http.MethodGet, "/v1/echo/boom", "", "X-Tenant", "t1").Status, "method does not match")
		require.Equal(t, 500, b.mustDo(t, http.MethodPost, "/v1/items", `{"boom":1}`, "X-Tenant", "t1").Status)
	})

	t.Run("after, times and insertion order", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.kit.MustAddFault(emukit.FaultRule{ID: "second-and-third", Match: emukit.FaultMatch{Path: "/v1/echo/*"}, Action: emukit.FaultAction{Status: 502}, After: 1, Times: 2})
		b.kit.MustAddFault(emukit.FaultRule{ID: "always", Match: emukit.FaultMatch{Path: "/v1/echo/*"}, Action: emukit.FaultAction{Status: 504}})
		var got []int
		for range 5 {
			got = append(got, b.mustDo(t, http.MethodGet, "/v1/echo/1", "").Status)
		}
		// The first request passes the first rule (After) and meets the second.
		require.Equal(t, []int{504, 502, 502, 504, 504}, got)
		faults := b.kit.Faults()
		require.Len(t, faults, 1, "a rule retires after Times applications")
		require.Equal(t, "always", faults[0].ID)
	})

	t.Run("probability follows the seeded generator", func(t *testing.T) {
		t.Parallel()
		run := func(seed uint64) []int {
			b := setup(t, func(o *emukit.Options) { o.RandSeed = seed })
			b.kit.MustAddFault(emukit.FaultRule{Action: emukit.FaultAction{Status: 500}, Probability: 0.5})
			var got []int
			for range 60 {
				got = append(got, b.mustDo(t, http.MethodGet, "/v1/echo/1", "").Status)
			}
			return got
		}
		a, again, other := run(7), run(7), run(8)
		require.Equal(t, a, again, "the same seed gives the same faults")
		require.NotEqual(t, a, other)
		failed := 0
		for _, s := range a {
			if s == 500 {
				failed++
			}
		}
		require.Greater(t, failed, 10)
		require.Less(t, failed, 50)
	})

	t.Run("delay then normal handling", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.kit.MustAddFault(emukit.FaultRule{Action: emukit.FaultAction{Delay: emukit.Duration(30 * time.Millisecond)}})
		started := time.Now()
		r := b.mustDo(t, http.MethodGet, "/v1/echo/slow", "")
		require.Equal(t, 200, r.Status)
		require.JSONEq(t, `{"id":"slow","query":""}`, r.Body)
		require.GreaterOrEqual(t, time.Since(started), 30*time.Millisecond)
		require.GreaterOrEqual(t, time.Duration(b.kit.Requests(emukit.Filter{})[0].Duration), 30*time.Millisecond)
	})

	t.Run("a client leaving during a delay is journaled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.kit.MustAddFault(emukit.FaultRule{Action: emukit.FaultAction{Delay: emukit.Duration(time.Hour)}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/v1/echo/held", nil)
			resp, err := b.http.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer wcancel()
		require.NoError(t, b.kit.WaitArrivals(wctx, 1))
		require.Empty(t, b.kit.Requests(emukit.Filter{}), "the held request is not answered yet")
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-wctx.Done():
			t.Fatal("the client did not return after cancelling")
		}
		require.NoError(t, b.kit.WaitRecorded(wctx, 1))
		e := b.kit.Requests(emukit.Filter{})[0]
		require.Equal(t, 0, e.Status)
		require.Contains(t, e.Error, "client went away")
	})

	t.Run("close connection", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.kit.MustAddFault(emukit.FaultRule{Match: emukit.FaultMatch{Method: http.MethodGet}, Action: emukit.FaultAction{CloseConnection: true}, Times: 1})
		_, err := b.do(t, http.MethodGet, "/v1/echo/1", "")
		require.Error(t, err)
		require.ErrorIs(t, err, io.EOF)
		e := b.kit.Requests(emukit.Filter{})[0]
		require.Equal(t, 0, e.Status)
		require.Equal(t, "f1", e.FaultID)
		require.Equal(t, 200, b.mustDo(t, http.MethodGet, "/v1/echo/1", "").Status, "the rule retired after one use")
	})

	t.Run("truncated body", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		n := 5
		b.kit.MustAddFault(emukit.FaultRule{Action: emukit.FaultAction{TruncateBodyAt: &n}})
		r, err := b.do(t, http.MethodGet, "/v1/echo/abcdef", "")
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		require.Equal(t, 200, r.Status)
		require.Equal(t, `{"id"`, r.Body)
		e := b.kit.Requests(emukit.Filter{})[0]
		require.Contains(t, e.Error, "truncated")
		require.Equal(t, `{"id":"abcdef","query":""}`, e.ResponseBody, "the journal keeps what would have been sent")
	})

	t.Run("malformed JSON keeps the status", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.kit.MustAddFault(emukit.FaultRule{Action: emukit.FaultAction{MalformedJSON: true}})
		r := b.mustDo(t, http.MethodGet, "/v1/echo/abcdef", "")
		require.Equal(t, 200, r.Status)
		require.False(t, json.Valid([]byte(r.Body)), r.Body)
		require.True(t, strings.HasPrefix(r.Body, `{"id":"abc`), r.Body)
	})

	t.Run("invalid rules are refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		neg := -1
		for name, rule := range map[string]emukit.FaultRule{
			"no action":       {},
			"bad status":      {Action: emukit.FaultAction{Status: 42}},
			"bad body":        {Action: emukit.FaultAction{Status: 500, Body: json.RawMessage(`{`)}},
			"both bodies":     {Action: emukit.FaultAction{Status: 500, Body: json.RawMessage(`{}`), BodyText: "x"}},
			"neg truncate":    {Action: emukit.FaultAction{TruncateBodyAt: &neg}},
			"bad probability": {Action: emukit.FaultAction{Status: 500}, Probability: 2},
		} {
			_, err := b.kit.AddFault(rule)
			require.Error(t, err, name)
		}
		b.kit.MustAddFault(emukit.FaultRule{ID: "x", Action: emukit.FaultAction{Status: 500}})
		_, err := b.kit.AddFault(emukit.FaultRule{ID: "x", Action: emukit.FaultAction{Status: 500}})
		require.ErrorContains(t, err, "exists")
	})
}

func TestControlAPI(t *testing.T) {
	t.Parallel()

	t.Run("health", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.mustDo(t, http.MethodGet, "/_emulator/health", "")
		require.Equal(t, 200, r.Status)
		require.JSONEq(t, `{"ok":true,"api":"toy"}`, r.Body)
	})

	t.Run("state, collections and reset", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.JSONEq(t, `{"names":["a"]}`, b.mustDo(t, http.MethodGet, "/_emulator/state", "").Body)

		r := b.mustDo(t, http.MethodPut, "/_emulator/state", `{"names":["x","y"]}`)
		require.Equal(t, 200, r.Status)
		require.JSONEq(t, `{"names":["x","y"]}`, r.Body)

		r = b.mustDo(t, http.MethodPost, "/_emulator/state/names", `["z"]`)
		require.Equal(t, 200, r.Status)
		require.JSONEq(t, `{"names":["x","y","z"]}`, r.Body)

		r = b.mustDo(t, http.MethodPost, "/_emulator/state/widgets", `[]`)
		require.Equal(t, 404, r.Status)
		require.Contains(t, r.Body, "unknown collection")

		r = b.mustDo(t, http.MethodPut, "/_emulator/state", `{"nmes":[]}`)
		require.Equal(t, 400, r.Status, "unknown fields are refused")
		require.Contains(t, r.Body, "nmes")

		b.mustDo(t, http.MethodGet, "/v1/echo/1", "")
		b.kit.MustAddFault(emukit.FaultRule{Action: emukit.FaultAction{Status: 500}})
		r = b.mustDo(t, http.MethodPost, "/_emulator/reset", "")
		require.Equal(t, 200, r.Status)
		require.JSONEq(t, `{"names":["x","y"]}`, b.mustDo(t, http.MethodGet, "/_emulator/state", "").Body, "reset goes back to the last seed")
		require.Empty(t, b.kit.Faults())
		require.Empty(t, b.kit.Requests(emukit.Filter{}))
		require.Equal(t, 1, b.backend.resets)
	})

	t.Run("faults over HTTP", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.mustDo(t, http.MethodPost, "/_emulator/faults", `{"match":{"path":"/v1/echo/*"},"action":{"status":503,"delay":"1ms"},"times":3}`)
		require.Equal(t, 201, r.Status)
		var added emukit.FaultRule
		require.NoError(t, json.Unmarshal([]byte(r.Body), &added))
		require.Equal(t, "f1", added.ID)
		require.Equal(t, emukit.Duration(time.Millisecond), added.Action.Delay)

		require.Equal(t, 503, b.mustDo(t, http.MethodGet, "/v1/echo/1", "").Status)
		r = b.mustDo(t, http.MethodGet, "/_emulator/faults", "")
		require.Contains(t, r.Body, `"applied": 1`)

		require.Equal(t, 400, b.mustDo(t, http.MethodPost, "/_emulator/faults", `{"action":{"status":503},"tims":3}`).Status)
		require.Equal(t, 400, b.mustDo(t, http.MethodPost, "/_emulator/faults", `{"action":{"delay":"soon"}}`).Status)

		b.mustDo(t, http.MethodPost, "/_emulator/faults", `{"id":"keep","action":{"status":500}}`)
		require.Equal(t, 204, b.mustDo(t, http.MethodDelete, "/_emulator/faults/f1", "").Status)
		require.Equal(t, 404, b.mustDo(t, http.MethodDelete, "/_emulator/faults/f1", "").Status)
		require.Len(t, b.kit.Faults(), 1)
		require.Equal(t, 204, b.mustDo(t, http.MethodDelete, "/_emulator/faults", "").Status)
		require.Empty(t, b.kit.Faults())
	})

	t.Run("requests over HTTP", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.mustDo(t, http.MethodGet, "/v1/echo/1", "")
		b.mustDo(t, http.MethodPost, "/v1/items", `[1]`)
		b.mustDo(t, http.MethodGet, "/v1/echo/2", "")
		var doc struct {
			Requests []emukit.Entry `json:"requests"`
			LastSeq  int64          `json:"last_seq"`
		}
		r := b.mustDo(t, http.MethodGet, "/_emulator/requests?since=1&method=GET&path=/v1/echo/*", "")
		require.Equal(t, 200, r.Status)
		require.NoError(t, json.Unmarshal([]byte(r.Body), &doc))
		require.Equal(t, int64(3), doc.LastSeq)
		require.Len(t, doc.Requests, 1)
		require.Equal(t, "/v1/echo/2", doc.Requests[0].Path)

		require.Equal(t, 400, b.mustDo(t, http.MethodGet, "/_emulator/requests?since=x", "").Status)
		require.Equal(t, 204, b.mustDo(t, http.MethodDelete, "/_emulator/requests", "").Status)
		require.Empty(t, b.kit.Requests(emukit.Filter{}))
	})

	t.Run("manual clock", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.mustDo(t, http.MethodGet, "/_emulator/clock", "")
		require.JSONEq(t, `{"now":"2026-03-01T12:00:00Z","manual":true}`, r.Body)
		r = b.mustDo(t, http.MethodPost, "/_emulator/clock", `{"advance":"90m"}`)
		require.Equal(t, 200, r.Status)
		require.JSONEq(t, `{"now":"2026-03-01T13:30:00Z","manual":true}`, r.Body)
		r = b.mustDo(t, http.MethodPost, "/_emulator/clock", `{"set":"2027-01-26T00:00:00Z"}`)
		require.Equal(t, 200, r.Status)
		require.Equal(t, time.Date(2027, 1, 26, 0, 0, 0, 0, time.UTC), b.clock.Now().UTC())
		require.Equal(t, 400, b.mustDo(t, http.MethodPost, "/_emulator/clock", `{}`).Status)
		require.Equal(t, 400, b.mustDo(t, http.MethodPost, "/_emulator/clock", `{"advance":"-1s"}`).Status)
		require.Equal(t, 400, b.mustDo(t, http.MethodPost, "/_emulator/clock", `{"set":"2027-01-26T00:00:00Z","advance":"1s"}`).Status)
	})

	t.Run("real clock cannot be moved", func(t *testing.T) {
		t.Parallel()
		b := setup(t, func(o *emukit.Options) { o.Clock = nil })
		r := b.mustDo(t, http.MethodPost, "/_emulator/clock", `{"advance":"1m"}`)
		require.Equal(t, 400, r.Status)
		require.Contains(t, r.Body, "real clock")
		require.Contains(t, b.mustDo(t, http.MethodGet, "/_emulator/clock", "").Body, `"manual": false`)
	})

	t.Run("limits", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.JSONEq(t, `{"limit":5}`, b.mustDo(t, http.MethodGet, "/_emulator/limits", "").Body)
		r := b.mustDo(t, http.MethodPut, "/_emulator/limits", `{"limit":9}`)
		require.Equal(t, 200, r.Status)
		require.JSONEq(t, `{"limit":9}`, r.Body)
		r = b.mustDo(t, http.MethodPut, "/_emulator/limits", `{"limit":-1}`)
		require.Equal(t, 400, r.Status)
		require.Contains(t, r.Body, "limit must not be negative")
	})

	t.Run("API actions and unknown routes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.kit.HandleControl("POST /tokens/revoke", func(w http.ResponseWriter, _ *http.Request) {
			emukit.WriteJSON(w, http.StatusOK, map[string]int{"revoked": 3})
		})
		r := b.mustDo(t, http.MethodPost, "/_emulator/tokens/revoke", "")
		require.Equal(t, 200, r.Status)
		require.JSONEq(t, `{"revoked":3}`, r.Body)
		r = b.mustDo(t, http.MethodGet, "/_emulator/nothing", "")
		require.Equal(t, 404, r.Status)
		require.Contains(t, r.Body, "no control route")
	})
}

func TestPublicBaseURL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:4103/v1/apps", nil)
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:4103", b.kit.PublicBaseURL(req), "derived from Host when unset")
	b.kit.SetPublicBaseURL("http://emulator.test:9/")
	require.Equal(t, "http://emulator.test:9", b.kit.PublicBaseURL(req))
}

func TestStart(t *testing.T) {
	t.Parallel()

	t.Run("busy port falls back to an ephemeral one", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		base, stop, err := emukit.Start(context.Background(), http.NotFoundHandler(), ln.Addr().String())
		require.NoError(t, err)
		defer stop()
		require.NotEqual(t, "http://"+ln.Addr().String(), base)
		require.True(t, strings.HasPrefix(base, "http://127.0.0.1:"))
	})

	t.Run("stop is idempotent and ends held requests", func(t *testing.T) {
		t.Parallel()
		held := make(chan struct{})
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(held)
			<-r.Context().Done()
		})
		base, stop, err := emukit.Start(context.Background(), h, "127.0.0.1:0")
		require.NoError(t, err)
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		errc := make(chan error, 1)
		go func() {
			resp, err := (&http.Client{Transport: tr}).Get(base + "/x")
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		<-held
		stop()
		stop()
		require.Error(t, <-errc)
		_, err = (&http.Client{Transport: tr}).Get(base + "/x")
		require.Error(t, err, "the listener is closed")
	})

	t.Run("context cancellation stops the server", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		base, stop, err := emukit.Start(ctx, http.NotFoundHandler(), "127.0.0.1:0")
		require.NoError(t, err)
		cancel()
		stop() // waits for the shutdown the cancellation started
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		_, err = (&http.Client{Transport: tr}).Get(base + "/x")
		require.Error(t, err)
	})

	t.Run("bad address", func(t *testing.T) {
		t.Parallel()
		_, _, err := emukit.Start(context.Background(), http.NotFoundHandler(), "not-an-address")
		require.ErrorContains(t, err, "listen on not-an-address")
	})
}

func TestDuration(t *testing.T) {
	t.Parallel()
	var d emukit.Duration
	require.NoError(t, json.Unmarshal([]byte(`"1m30s"`), &d))
	require.Equal(t, emukit.Duration(90*time.Second), d)
	require.NoError(t, json.Unmarshal([]byte(`250`), &d))
	require.Equal(t, emukit.Duration(250), d)
	require.Error(t, json.Unmarshal([]byte(`"later"`), &d))
	require.Error(t, json.Unmarshal([]byte(`true`), &d))
	out, err := json.Marshal(emukit.Duration(1500 * time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, `"1.5s"`, string(out))
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	var v struct {
		A int `json:"a"`
	}
	require.NoError(t, emukit.DecodeJSON([]byte(` {"a":1} `), &v))
	require.Equal(t, 1, v.A)
	require.Error(t, emukit.DecodeJSON([]byte(`{"b":1}`), &v))
	require.Error(t, emukit.DecodeJSON([]byte(`{"a":1}{"a":2}`), &v))
	require.Error(t, emukit.DecodeJSON(bytes.Repeat([]byte("{"), 3), &v))
}

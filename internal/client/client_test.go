package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

const runID = "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f"

type seen struct {
	mu   sync.Mutex
	reqs []capturedRequest
}

type capturedRequest struct {
	Method, Path, RawPath string
	Query                 string
	Header                http.Header
	Body                  []byte
	HasBody               bool
}

func (s *seen) add(r *http.Request) capturedRequest {
	b, _ := io.ReadAll(r.Body)
	c := capturedRequest{Query: r.URL.RawQuery, Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Header: r.Header.Clone(), Body: b, HasBody: len(b) > 0}
	s.mu.Lock()
	s.reqs = append(s.reqs, c)
	s.mu.Unlock()
	return c
}

func (s *seen) all() []capturedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]capturedRequest(nil), s.reqs...)
}

// sleeps records retry delays instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func newTestClient(t *testing.T, endpoint string, sl *sleeps) *Client {
	t.Helper()
	o := Options{Endpoint: endpoint, APIKey: "owl_agent_secret", UserAgent: "owlmetry/test (linux/amd64)"}
	if sl != nil {
		o.SleepFunc = sl.sleep
	}
	return New(o)
}

func runJSON(status string, extra string) string {
	return fmt.Sprintf(`{"id":%q,"job_type":"apple_ads_sync","status":%q,"team_id":"9c0d11aa-0000-4000-8000-000000000001","project_id":null,"triggered_by":"schedule","params":null,"progress":null,"result":null,"error":null,"notify":false,"started_at":null,"completed_at":null,"created_at":"2026-11-29T10:30:01.187Z","cancel_requested_at":null%s}`, runID, status, extra)
}

func TestBodylessPostAndPathPrefix(t *testing.T) {
	t.Parallel()
	var s seen
	mux := http.NewServeMux()
	mux.HandleFunc("/owl/", func(w http.ResponseWriter, r *http.Request) {
		s.add(r)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/cancel"):
			_, _ = io.WriteString(w, `{"cancelled":true,"status":"running"}`)
		case strings.HasSuffix(r.URL.Path, "/trigger"):
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"job_run":`+runJSON("pending", "")+`}`)
		default:
			_, _ = io.WriteString(w, `{"syncing":true,"total":3,"job_run_id":"`+runID+`"}`)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL+"/owl", nil)
	ctx := context.Background()

	res, err := c.JobRunCancel(ctx, runID)
	require.NoError(t, err)
	require.True(t, res.Cancelled)
	require.Equal(t, apitype.StatusRunning, res.Status)
	_, err = c.RatingsSync(ctx, "1a2b3c4d-0000-4000-8000-000000000001")
	require.NoError(t, err)
	_, err = c.IntegrationUserSync(ctx, IntegrationUserSyncParams{ProjectID: "p", Provider: "revenuecat", UserID: "a/b c"})
	require.NoError(t, err)
	run, err := c.JobRunTrigger(ctx, JobRunTriggerParams{TeamID: "t", TriggerRequest: apitype.TriggerRequest{JobType: "apple_ads_sync", ProjectID: "p"}})
	require.NoError(t, err)
	require.Equal(t, runID, run.ID)

	reqs := s.all()
	require.Len(t, reqs, 4)
	require.Equal(t, "/owl/v1/jobs/"+runID+"/cancel", reqs[0].Path, "the endpoint's path prefix is kept")
	require.Equal(t, "/owl/v1/projects/1a2b3c4d-0000-4000-8000-000000000001/ratings/sync", reqs[1].Path)
	require.Equal(t, "/owl/v1/projects/p/integrations/revenuecat/sync/a%2Fb%20c", reqs[2].RawPath, "the user id is escaped as one segment")
	for _, r := range reqs[:3] {
		require.Equal(t, http.MethodPost, r.Method)
		require.False(t, r.HasBody, "body-less POST sends no body")
		require.Empty(t, r.Header.Get("Content-Type"), "body-less POST sends no Content-Type")
		require.Equal(t, "Bearer owl_agent_secret", r.Header.Get("Authorization"))
		require.Equal(t, "application/json", r.Header.Get("Accept"))
		require.Equal(t, "owlmetry/test (linux/amd64)", r.Header.Get("User-Agent"))
	}
	require.Equal(t, "application/json", reqs[3].Header.Get("Content-Type"))
	require.JSONEq(t, `{"job_type":"apple_ads_sync","project_id":"p"}`, string(reqs[3].Body), "params and notify only when given")
}

func TestAPIErrorMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		want   string
	}{
		{"error only", 404, "application/json", `{"error":"Job run not found"}`, "Job run not found (HTTP 404)"},
		{"error and message", 400, "application/json", `{"error":"auth_error","message":"invalid_client"}`, "auth_error: invalid_client (HTTP 400)"},
		{"same error and message", 400, "application/json", `{"error":"x","message":"x"}`, "x (HTTP 400)"},
		{"framework envelope", 400, "application/json", `{"statusCode":400,"error":"Bad Request","message":"body/job_type must be string"}`, "body/job_type must be string (HTTP 400)"},
		{"upstream failure", 502, "application/json", `{"error":"RevenueCat request failed","message":"upstream timeout","statusCode":0}`, "RevenueCat request failed: upstream timeout (HTTP 502)"},
		{"not JSON", 502, "text/html", `<html>bad gateway</html>`, "unexpected response from server (HTTP 502 Bad Gateway)"},
		{"JSON without error", 500, "application/json", `{"oops":1}`, "unexpected response from server (HTTP 500 Internal Server Error)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			sl := &sleeps{}
			_, err := newTestClient(t, srv.URL, sl).JobRunCancel(context.Background(), runID)
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, tt.status, apiErr.StatusCode)
			require.EqualError(t, err, tt.want)
			require.Empty(t, sl.all(), "a POST is never retried on %d", tt.status)
		})
	}
}

func TestConflict(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"error":"revenuecat_sync is already running or pending for this project","existing_run_id":"`+runID+`","existing_run_ids":{"revenuecat_sync":"`+runID+`","apple_ads_sync":null}}`)
	}))
	t.Cleanup(srv.Close)
	_, err := newTestClient(t, srv.URL, nil).AdsSync(context.Background(), "p")
	var conflict *apitype.ConflictError
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, runID, conflict.ExistingRunID)
	require.Equal(t, map[string]string{"revenuecat_sync": runID}, conflict.ExistingRunIDs, "null ids are dropped")
	require.Equal(t, "revenuecat_sync is already running or pending for this project", conflict.Error())
	require.EqualError(t, err, "revenuecat_sync is already running or pending for this project (HTTP 409)")
	require.Equal(t, http.StatusConflict, StatusOf(err))
}

func TestRetries(t *testing.T) {
	t.Parallel()
	type step struct {
		status     int
		retryAfter string
	}
	tests := []struct {
		name       string
		method     string
		steps      []step
		wantCalls  int
		wantSleeps []time.Duration // exact; nil means "check count only"
		nSleeps    int
		wantErr    bool
	}{
		{name: "GET 503 thrice then ok", method: "GET", steps: []step{{503, ""}, {502, ""}, {504, ""}, {200, ""}}, wantCalls: 4, nSleeps: 3},
		{name: "GET gives up after three retries", method: "GET", steps: []step{{503, ""}, {503, ""}, {503, ""}, {503, ""}, {200, ""}}, wantCalls: 4, nSleeps: 3, wantErr: true},
		{name: "GET honours Retry-After capped at 60s", method: "GET", steps: []step{{429, "120"}, {429, "3"}, {200, ""}}, wantCalls: 3, wantSleeps: []time.Duration{60 * time.Second, 3 * time.Second}},
		{name: "GET 500 is not retried", method: "GET", steps: []step{{500, ""}, {200, ""}}, wantCalls: 1, wantErr: true},
		{name: "POST 429 with Retry-After", method: "POST", steps: []step{{429, "2"}, {429, "1"}, {200, ""}}, wantCalls: 3, wantSleeps: []time.Duration{2 * time.Second, time.Second}},
		{name: "POST 429 retried at most twice", method: "POST", steps: []step{{429, "1"}, {429, "1"}, {429, "1"}, {200, ""}}, wantCalls: 3, nSleeps: 2, wantErr: true},
		{name: "POST 429 over 60s is not retried", method: "POST", steps: []step{{429, "61"}, {200, ""}}, wantCalls: 1, wantErr: true},
		{name: "POST 429 without Retry-After is not retried", method: "POST", steps: []step{{429, ""}, {200, ""}}, wantCalls: 1, wantErr: true},
		{name: "POST 503 is not retried", method: "POST", steps: []step{{503, ""}, {200, ""}}, wantCalls: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			calls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				st := tt.steps[calls]
				calls++
				mu.Unlock()
				if st.retryAfter != "" {
					w.Header().Set("Retry-After", st.retryAfter)
				}
				w.WriteHeader(st.status)
				if r.Method == http.MethodGet {
					_, _ = io.WriteString(w, `{"job_run":`+runJSON("running", "")+`}`)
				} else {
					_, _ = io.WriteString(w, `{"error":"x"}`)
				}
			}))
			t.Cleanup(srv.Close)
			sl := &sleeps{}
			c := newTestClient(t, srv.URL, sl)
			var err error
			if tt.method == "GET" {
				_, err = c.JobRunGet(context.Background(), runID)
			} else {
				_, err = c.RatingsSync(context.Background(), "p")
			}
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			mu.Lock()
			require.Equal(t, tt.wantCalls, calls)
			mu.Unlock()
			if tt.wantSleeps != nil {
				require.Equal(t, tt.wantSleeps, sl.all())
			} else {
				require.Len(t, sl.all(), tt.nSleeps)
				for i, d := range sl.all() {
					if tt.method != "GET" {
						break
					}
					base := getDelays[i]
					require.GreaterOrEqual(t, d, time.Duration(float64(base)*0.8))
					require.LessOrEqual(t, d, time.Duration(float64(base)*1.2), "±20 %% jitter")
				}
			}
		})
	}
}

func closedEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

func TestNetworkErrors(t *testing.T) {
	t.Parallel()
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		ep := closedEndpoint(t)
		sl := &sleeps{}
		_, err := newTestClient(t, ep, sl).RatingsSync(context.Background(), "p")
		var ne *NetworkError
		require.ErrorAs(t, err, &ne)
		require.EqualError(t, err, "cannot reach "+ep+": connection refused")
		require.True(t, ne.Loopback())
		require.True(t, ne.Refused)
		require.Len(t, sl.all(), 2, "a POST whose connection failed before sending is retried twice")
	})
	t.Run("timeout per attempt", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(release); srv.Close() })
		c := New(Options{Endpoint: srv.URL, RequestTimeout: 50 * time.Millisecond, SleepFunc: (&sleeps{}).sleep})
		_, err := c.RatingsSync(context.Background(), "p")
		require.EqualError(t, err, "cannot reach "+srv.URL+": timed out after 50ms")
	})
	t.Run("no such host", func(t *testing.T) {
		t.Parallel()
		_, err := newTestClient(t, "http://owlmetry-test.invalid", &sleeps{}).AuthWhoAmI(context.Background())
		require.EqualError(t, err, "cannot reach http://owlmetry-test.invalid: no such host")
	})
	t.Run("caller cancellation is not a network error", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := newTestClient(t, closedEndpoint(t), &sleeps{}).AuthWhoAmI(ctx)
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, IsNetworkError(err))
	})
}

func TestDebugTransportNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"job_run":`+runJSON("pending", "")+`}`)
	}))
	t.Cleanup(srv.Close)
	var out strings.Builder
	tick := time.Unix(0, 0)
	now := func() time.Time { tick = tick.Add(45 * time.Millisecond); return tick }
	c := New(Options{Endpoint: srv.URL, APIKey: "owl_agent_topsecret", HTTPClient: &http.Client{Transport: DebugTransport(nil, &out, now)}})
	_, err := c.JobRunTrigger(context.Background(), JobRunTriggerParams{TeamID: "t", TriggerRequest: apitype.TriggerRequest{JobType: "x", Params: map[string]string{"secret_param": "hunter2"}}})
	require.NoError(t, err)
	require.Equal(t, "debug: POST "+srv.URL+"/v1/teams/t/jobs/trigger → 201 in 45ms\n", out.String())
	require.NotContains(t, out.String(), "topsecret")
	require.NotContains(t, out.String(), "hunter2")
}

func TestPublicServerZeroSyncShape(t *testing.T) {
	t.Parallel()
	// The public Owlmetry server answers a RevenueCat sync with nothing to do like this;
	// owlmetry's own server adds syncing: false.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"synced": 0, "total": 0}`)
	}))
	t.Cleanup(srv.Close)
	res, err := newTestClient(t, srv.URL, nil).IntegrationSync(context.Background(), "p", "revenuecat")
	require.NoError(t, err)
	require.False(t, res.Started())
	require.Nil(t, res.JobRunID)
	b, err := json.Marshal(res)
	require.NoError(t, err)
	require.JSONEq(t, `{"synced": 0, "total": 0}`, string(b), "the body is re-emitted as received")
}

func TestJobRunListQuery(t *testing.T) {
	t.Parallel()
	var s seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(r)
		_, _ = io.WriteString(w, `{"job_runs":[`+runJSON("running", `,"future_field":[1,2]`)+`],"cursor":"2026-11-29T10:30:00.123456Z|`+runID+`","has_more":true,"extra":"kept"}`)
	}))
	t.Cleanup(srv.Close)
	list, err := newTestClient(t, srv.URL, nil).JobRunList(context.Background(), JobRunListParams{TeamID: "t", Status: "running", Since: "7d", Cursor: "2026-11-29T10:30:00Z|x", Limit: 20})
	require.NoError(t, err)
	require.True(t, list.HasMore)
	require.Len(t, list.JobRuns, 1)
	req := s.all()[0]
	require.Equal(t, "/v1/teams/t/jobs", req.Path)
	require.Equal(t, "cursor=2026-11-29T10%3A30%3A00Z%7Cx&limit=20&since=7d&status=running", req.Query, "only the given filters, the cursor URL-encoded")
	b, err := json.Marshal(list.JobRuns[0])
	require.NoError(t, err)
	require.Contains(t, string(b), `"future_field":[1,2]`, "unknown fields survive")
	b, err = json.Marshal(list)
	require.NoError(t, err)
	require.Contains(t, string(b), `"extra":"kept"`)
}

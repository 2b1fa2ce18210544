package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
)

// fuzzRoutes are the path templates the fuzzer aims at: every route, plus "/" + seg for
// arbitrary paths. {team}, {run} and {project} are replaced by an id the fuzzer picks.
var fuzzRoutes = []string{
	"/v1/teams/{team}/jobs",
	"/v1/teams/{team}/jobs/trigger",
	"/v1/jobs/{run}",
	"/v1/jobs/{run}/cancel",
	"/v1/jobs/{run}/events",
	"/v1/projects/{project}/ads/sync",
	"/v1/projects/{project}/ratings/sync",
	"/v1/projects/{project}/integrations",
	"/v1/projects/{project}/integrations/app-store-connect/sync",
	"/v1/projects/{project}/integrations/revenuecat/sync",
	"/v1/projects/{project}/integrations/apple-search-ads/sync",
	"/v1/auth/whoami",
	"/healthz",
	"/readyz",
	"/metrics",
	"/{seg}",
}

var fuzzMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "FUZZ"}

// FuzzRoutes sends arbitrary methods, ids, query strings, content types and bodies to
// every route over a real listener. Whatever the input, the answer is never a 500, never
// a panic, and every error is the JSON envelope. `go test` runs the committed seeds
// (testdata/fuzz/FuzzRoutes); `go test -fuzz FuzzRoutes` searches for more.
func FuzzRoutes(f *testing.F) {
	// Every type a route can create has a handler, so inputs reach the inserts.
	stack := owltest.StartStack(f, owltest.WithBlockingHandler(jobtype.AppleAdsSync, jobtype.RevenueCatSync,
		jobtype.RevenueCatUserBackfill, jobtype.AppStoreRatingsSync, jobtype.AppStoreConnectReviewsSync))
	team := stack.Team
	project := stack.SeedProject(f, owltest.WithIntegration("revenuecat"), owltest.WithIntegration("apple-search-ads"),
		owltest.WithIntegration("app-store-connect"), owltest.WithAppleApps(1), owltest.WithAppUsers(1))
	other := stack.SeedTeam(f)
	foreignProject := stack.SeedProject(f, owltest.InTeam(other))
	run := insertRun(f, stack, seedRun{teamID: &team.ID, projectID: &project.ID, status: "completed"})
	foreignRun := insertRun(f, stack, seedRun{teamID: &other.ID, status: "failed"})
	systemRun := insertRun(f, stack, seedRun{jobType: "retention_cleanup", status: "cancelled"})
	member := stack.SeedUser(f, team, owltest.RoleMember)
	admin := stack.SeedUser(f, team, owltest.RoleAdmin)
	client := stack.SeedKey(f, team, []string{"jobs:read"}, owltest.KeyType("client"))

	f.Add(uint8(0), uint8(0), uint8(0), uint8(1), "", "status=running&limit=5", "", []byte(nil))
	f.Add(uint8(1), uint8(1), uint8(0), uint8(1), "", "", "application/json",
		[]byte(`{"job_type":"apple_ads_sync","project_id":"`+project.ID+`","params":{"project_id":1e400}}`))
	f.Add(uint8(1), uint8(1), uint8(3), uint8(2), "%zz", "", "application/json; charset=utf-8", []byte(`{"job_type":null}`))
	f.Add(uint8(1), uint8(1), uint8(0), uint8(3), "", "", "application/json",
		[]byte(`{"job_type":"revenuecat_user_backfill","project_id":"`+project.ID+`","params":{"starting_after":"\u0000"},"notify":true}`))
	f.Add(uint8(4), uint8(0), uint8(0), uint8(1), "", "", "", []byte(nil))
	f.Add(uint8(14), uint8(7), uint8(3), uint8(4), "v1/jobs/../x", "cursor=%7C", "text/plain", []byte("\x00\xff"))

	f.Fuzz(func(t *testing.T, route, method, idMode, auth uint8, seg, query, contentType string, body []byte) {
		tmpl := fuzzRoutes[int(route)%len(fuzzRoutes)]
		ids := map[string][]string{
			"{team}":    {team.ID, other.ID, strings.ToUpper(team.ID)},
			"{run}":     {run, foreignRun, systemRun},
			"{project}": {project.ID, foreignProject.ID, strings.ToUpper(project.ID)},
		}
		path := tmpl
		for ph, choices := range ids {
			if strings.Contains(path, ph) {
				id := url.PathEscape(seg)
				if n := int(idMode) % 4; n < 3 {
					id = choices[n]
				}
				path = strings.Replace(path, ph, id, 1)
			}
		}
		path = strings.Replace(path, "{seg}", url.PathEscape(seg), 1)
		target := stack.URL + path
		for i := 0; i < len(query); i++ {
			if c := query[i]; c <= ' ' || c >= 0x7f || c == '#' {
				// Not a request target a client sends: net/http itself answers such a
				// request line with its own 400 before any handler runs.
				return
			}
		}
		if query != "" {
			target += "?" + query
		}
		m := fuzzMethods[int(method)%len(fuzzMethods)]

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := http.NewRequestWithContext(ctx, m, target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client can send (a malformed URL)
		}
		if len(body) == 0 {
			r.Body, r.ContentLength = nil, 0
		}
		if contentType != "" {
			if !httpguts.ValidHeaderFieldValue(contentType) {
				return // the client refuses to send it
			}
			r.Header.Set("Content-Type", contentType)
		}
		switch auth % 5 {
		case 1:
			r.Header.Set("Authorization", "Bearer "+stack.Key.Token)
		case 2:
			r.Header.Set("Authorization", "Bearer "+member.Token)
		case 3:
			r.Header.Set("Authorization", "Bearer "+admin.Token)
		case 4:
			r.Header.Set("Authorization", "Bearer "+client.Token)
			if seg != "" && httpguts.ValidHeaderFieldValue(seg) {
				r.Header.Set("Authorization", seg)
			}
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				return // an event stream of an active run stays open; nothing went wrong
			}
			t.Fatalf("%s %s: %v", m, target, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil && ctx.Err() == nil {
			t.Fatalf("%s %s: read body: %v", m, target, err)
		}
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented && resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s %s (%q, %q): %d %s", m, target, contentType, body, resp.StatusCode, b)
		}
		if strings.Contains(string(b), "goroutine ") || strings.Contains(string(b), "panic") {
			t.Fatalf("%s %s: stack trace in the answer: %s", m, target, b)
		}
		if resp.StatusCode >= 400 && m != http.MethodHead {
			var env map[string]any
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatalf("%s %s: %d answer is not JSON: %q", m, target, resp.StatusCode, b)
			}
			if msg, ok := env["error"].(string); !ok || msg == "" {
				t.Fatalf("%s %s: %d answer has no error message: %s", m, target, resp.StatusCode, b)
			}
		}
	})
}

package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/config"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// apiError obtains a real *client.APIError by letting the client meet a server that
// answers with status and body.
func apiError(t *testing.T, status int, body string) error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	_, err := client.New(client.Options{Endpoint: srv.URL}).RatingsSync(t.Context(), "p")
	require.Error(t, err)
	return err
}

func reportWith(t *testing.T, format string, err error) (cmdutil.ExitCode, string) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	f := cmdutil.NewTestFactory(ios, map[string]string{"OWLMETRY_FORMAT": format})
	code := report(f, nil, err)
	require.Empty(t, out.String(), "errors never go to stdout")
	return code, errOut.String()
}

const existing = "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f"

func TestReportConflict(t *testing.T) {
	t.Parallel()
	err := apiError(t, 409, `{"error":"apple_ads_sync is already running or pending for this project","existing_run_id":"`+existing+`"}`)

	code, text := reportWith(t, "table", err)
	require.Equal(t, cmdutil.ExitConflict, code)
	require.Equal(t, "error: apple_ads_sync is already running or pending for this project (HTTP 409)\n"+
		"existing run: "+existing+"\n"+
		"hint: wait for it: owlmetry jobs wait "+existing+"\n"+
		"hint: or run again with --attach\n", text)

	code, text = reportWith(t, "json", err)
	require.Equal(t, cmdutil.ExitConflict, code)
	require.Equal(t, 1, strings.Count(text, "\n"), "one compact object on one line")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(text), &doc))
	require.Equal(t, map[string]any{
		"error":           "apple_ads_sync is already running or pending for this project",
		"code":            "conflict",
		"exit_code":       float64(5),
		"status":          float64(409),
		"existing_run_id": existing,
		"hint":            "wait for it: owlmetry jobs wait " + existing + "; or run again with --attach",
	}, doc)

	// A 409 without an id is still exit 5, without the id line.
	code, text = reportWith(t, "table", apiError(t, 409, `{"error":"Integration revenuecat already exists for this project"}`))
	require.Equal(t, cmdutil.ExitConflict, code)
	require.Equal(t, "error: Integration revenuecat already exists for this project (HTTP 409)\n", text)
}

func TestReportStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		body   string
		code   cmdutil.ExitCode
		name   string
		hint   string
	}{
		{401, `{"error":"Invalid API key"}`, cmdutil.ExitAuth, "auth_rejected", "hint: the server rejected the API key; store a new one with owlmetry auth login"},
		{403, `{"error":"Missing permission: jobs:write"}`, cmdutil.ExitAuth, "forbidden", "hint: the API key lacks jobs:write"},
		{404, `{"error":"Project not found"}`, cmdutil.ExitFailure, "not_found", ""},
		{400, `{"error":"Invalid cursor"}`, cmdutil.ExitFailure, "bad_request", ""},
		{422, `{"error":"x"}`, cmdutil.ExitFailure, "bad_request", ""},
		{429, `{"error":"RevenueCat rate budget exhausted, retry later"}`, cmdutil.ExitFailure, "rate_limited", ""},
		{502, `{"error":"RevenueCat request failed","message":"boom","statusCode":0}`, cmdutil.ExitFailure, "server_error", ""},
		{400, `{"statusCode":400,"error":"Bad Request","message":"body/job_type must be string"}`, cmdutil.ExitFailure, "bad_request", ""},
		{503, `{"error":"RevenueCat integration credentials cannot be decrypted with this server's OWLMETRY_SECRET_KEY"}`, cmdutil.ExitFailure, "server_error", "hint: the server's OWLMETRY_SECRET_KEY changed; store the credentials again with owlmetry integrations update <provider>"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			err := apiError(t, tt.status, tt.body)
			code, text := reportWith(t, "table", err)
			require.Equal(t, tt.code, code)
			require.True(t, strings.HasPrefix(text, "error: "), text)
			require.Contains(t, text, fmt.Sprintf("(HTTP %d)", tt.status))
			if tt.hint != "" {
				require.Contains(t, text, tt.hint+"\n")
			} else {
				require.NotContains(t, text, "hint:")
			}
			_, js := reportWith(t, "json", err)
			var doc map[string]any
			require.NoError(t, json.Unmarshal([]byte(js), &doc))
			require.Equal(t, tt.name, doc["code"])
			require.Equal(t, float64(tt.status), doc["status"])
			require.NotContains(t, doc["error"], "(HTTP", "the status has its own key")
		})
	}
}

func TestReportServerFieldsCopied(t *testing.T) {
	t.Parallel()
	_, js := reportWith(t, "json", apiError(t, 400, `{"ok":false,"error":"auth_error","message":"invalid_client"}`))
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(js), &doc))
	require.Equal(t, false, doc["ok"])
	require.Equal(t, "invalid_client", doc["message"])
	require.Equal(t, "auth_error: invalid_client", doc["error"])
}

func TestReportOutcome(t *testing.T) {
	t.Parallel()
	err := &cmdutil.OutcomeError{Code: cmdutil.ExitInterrupted, Name: "interrupted", Message: "interrupted", RunIDs: []string{existing},
		Hint: "re-attach: owlmetry jobs wait " + existing, Notes: []string{"note: the run was not cancelled"}, Reported: true}
	code, text := reportWith(t, "table", err)
	require.Equal(t, cmdutil.ExitInterrupted, code)
	require.Equal(t, "hint: re-attach: owlmetry jobs wait "+existing+"\nnote: the run was not cancelled\n", text, "no error line after outcome lines")

	code, text = reportWith(t, "json", err)
	require.Equal(t, cmdutil.ExitInterrupted, code)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(text), &doc))
	require.Equal(t, []any{existing}, doc["run_ids"])
	require.Equal(t, "interrupted", doc["code"])
	require.Equal(t, float64(130), doc["exit_code"])

	// An outcome that printed nothing yet gets its error line.
	code, text = reportWith(t, "table", &cmdutil.OutcomeError{Code: cmdutil.ExitFailure, Name: "interrupted", Message: "stopped at once by a second signal"})
	require.Equal(t, cmdutil.ExitFailure, code)
	require.Equal(t, "error: stopped at once by a second signal\n", text)
}

func TestReportOtherErrors(t *testing.T) {
	t.Parallel()
	code, text := reportWith(t, "table", &config.InvalidError{Path: "/x/config.json", Reason: "not JSON"})
	require.Equal(t, cmdutil.ExitFailure, code)
	require.Equal(t, "error: config file /x/config.json is not valid: not JSON\n", text)
	_, js := reportWith(t, "json", fmt.Errorf("save: %w", config.ErrLocked))
	require.Contains(t, js, `"code":"config"`)

	noSleep := func(context.Context, time.Duration) error { return nil }
	_, err := client.New(client.Options{Endpoint: "http://127.0.0.1:1", SleepFunc: noSleep}).AuthWhoAmI(t.Context())
	code, text = reportWith(t, "table", err)
	require.Equal(t, cmdutil.ExitFailure, code)
	require.Equal(t, "error: cannot reach http://127.0.0.1:1: connection refused\nhint: is owlmetry server (or owlmetry dev) running?\n", text)
	_, js = reportWith(t, "json", err)
	require.Contains(t, js, `"code":"network"`)

	code, _ = reportWith(t, "table", cmdutil.Reword(apiError(t, 404, `{"error":"Job run not found"}`), "no job run x"))
	require.Equal(t, cmdutil.ExitFailure, code, "a reworded error keeps its classification")
	_, js = reportWith(t, "json", cmdutil.Reword(apiError(t, 404, `{"error":"Job run not found"}`), "no job run x"))
	require.Contains(t, js, `"code":"not_found"`)
	require.Contains(t, js, `"error":"no job run x"`)
}

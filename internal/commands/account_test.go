package commands_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/config"
)

const (
	acmeID    = "9c0d11aa-0000-4000-8000-000000000001"
	stagingID = "4e5f6a7b-0000-4000-8000-000000000002"
	projectID = "1a2b3c4d-0000-4000-8000-000000000001"
)

const twoProfiles = `{
  "endpoint": "https://top.example.com",
  "ingest_endpoint": "https://ingest.example.com",
  "active_team": "` + acmeID + `",
  "kept": {"by": "the public CLI"},
  "teams": {
    "` + acmeID + `": {"api_key": "owl_agent_0123456789abcdef", "team_name": "Acme", "team_slug": "acme", "endpoint": "https://acme.example.com"},
    "` + stagingID + `": {"api_key": "owl_agent_fedcba", "team_name": "Staging", "team_slug": "staging", "extra": 1}
  }
}`

// home makes a home directory with an optional config file and returns the env of a
// CLI run there.
func home(t *testing.T, body string) (map[string]string, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, ".owlmetry", "config.json")
	if body != "" {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	}
	return map[string]string{"HOME": dir}, path
}

func load(t *testing.T, path string) *config.Loaded {
	t.Helper()
	l, err := config.Load(path)
	require.NoError(t, err)
	return l
}

func jsonDoc(t *testing.T, res result) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(res.Stdout.Bytes(), &doc), res.Stdout.String())
	return doc
}

func TestConfigPathNeedsNoFile(t *testing.T) {
	t.Parallel()
	env, path := home(t, "{corrupt")
	res := run(t, env, "config", "path")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Equal(t, path+"\n", res.Stdout.String())

	env["OWLMETRY_CONFIG"] = "/elsewhere/c.json"
	res = run(t, env, "config", "path", "--format", "json")
	require.JSONEq(t, `{"config_path":"/elsewhere/c.json"}`, res.Stdout.String())
	res = run(t, env, "config", "path", "--config", "/flag/c.json")
	require.Equal(t, "/flag/c.json\n", res.Stdout.String(), "--config beats OWLMETRY_CONFIG")
}

func TestConfigSetGetUnset(t *testing.T) {
	t.Parallel()
	env, path := home(t, twoProfiles)

	res := run(t, env, "config", "set", "default_project", strings.ToUpper(projectID))
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	l := load(t, path)
	require.Equal(t, projectID, l.Teams[acmeID].DefaultProject, "stored lower-cased in the active profile")
	require.Contains(t, l.Extra(), "kept", "unknown keys survive")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	res = run(t, env, "config", "get", "default_project")
	require.Equal(t, projectID+"\n", res.Stdout.String())

	res = run(t, env, "config", "get", "default_project", "--team", "staging")
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Empty(t, res.Stdout.String())
	require.Equal(t, "error: default_project is not set\n", res.Stderr.String())
	res = run(t, env, "config", "get", "default_project", "--team", "staging", "--format", "json")
	require.Contains(t, res.Stderr.String(), `"code":"not_found"`)

	res = run(t, env, "config", "set", "endpoint", "https://new.example.com/owl/", "--format", "json")
	require.JSONEq(t, `{"key":"endpoint","value":"https://new.example.com/owl"}`, res.Stdout.String())
	require.Equal(t, "https://new.example.com/owl", load(t, path).Teams[acmeID].Endpoint, "the selected profile's endpoint")

	res = run(t, env, "config", "set", "active_team", "Staging")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.Equal(t, stagingID, load(t, path).ActiveTeam, "stored as the profile key")

	res = run(t, env, "config", "unset", "ingest_endpoint", "--format", "json")
	require.JSONEq(t, `{"key":"ingest_endpoint","value":null}`, res.Stdout.String())
	require.Empty(t, load(t, path).IngestEndpoint)
}

func TestConfigSetRefusals(t *testing.T) {
	t.Parallel()
	env, path := home(t, twoProfiles)
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"config", "set", "colour", "blue"}, `unknown key "colour": valid keys are endpoint, ingest_endpoint, active_team, default_project`},
		{[]string{"config", "set", "endpoint", "ftp://x"}, `invalid endpoint "ftp://x"`},
		{[]string{"config", "set", "default_project", "nope"}, `invalid default_project "nope"`},
		{[]string{"config", "set", "active_team", "nobody"}, `no configured team matches "nobody"`},
		{[]string{"config", "get"}, "missing a key"},
		{[]string{"config", "frobnicate"}, `unknown command "frobnicate"`},
	} {
		res := run(t, env, tc.args...)
		require.Equal(t, cmdutil.ExitUsage, res.ExitCode, tc.args)
		require.Contains(t, res.Stderr.String(), tc.want)
		require.Empty(t, res.Stdout.String())
	}
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, before, after, "refused changes leave the file as it was")

	env, _ = home(t, "")
	res := run(t, env, "config", "set", "default_project", projectID)
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "default_project needs a team profile")
}

func TestConfigList(t *testing.T) {
	t.Parallel()
	env, path := home(t, twoProfiles)
	env["OWLMETRY_PROJECT_ID"] = projectID
	env["DATABASE_URL"] = "postgres://owner:hunter2@db.example.com/owlmetry"
	res := run(t, env, "config", "list", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	var doc struct {
		ConfigPath string `json:"config_path"`
		Settings   map[string]struct {
			Value  any    `json:"value"`
			Source string `json:"source"`
		} `json:"settings"`
	}
	require.NoError(t, json.Unmarshal(res.Stdout.Bytes(), &doc))
	require.Equal(t, path, doc.ConfigPath)
	get := func(k string) (any, string) { return doc.Settings[k].Value, doc.Settings[k].Source }
	v, src := get("api_key")
	require.Equal(t, "owl_agent_0123…", v, "the key is masked")
	require.Equal(t, "profile", src)
	v, src = get("endpoint")
	require.Equal(t, "https://acme.example.com", v)
	require.Equal(t, "profile", src)
	v, src = get("team_id")
	require.Equal(t, acmeID, v)
	require.Equal(t, "profile", src)
	v, src = get("project_id")
	require.Equal(t, projectID, v)
	require.Equal(t, "env", src)
	v, src = get("format")
	require.Equal(t, "json", v)
	require.Equal(t, "flag", src)
	v, _ = get("database_url")
	require.Equal(t, "postgres://owner:****@db.example.com/owlmetry", v)
	require.NotContains(t, res.Stdout.String(), "hunter2")
	require.NotContains(t, res.Stdout.String(), "0123456789abcdef")

	// A key from the environment borrows nothing from the profile; the team comes from whoami.
	env["OWLMETRY_API_KEY"] = "owl_agent_9999"
	res = run(t, env, "config", "--format", "json")
	require.NoError(t, json.Unmarshal(res.Stdout.Bytes(), &doc))
	v, src = get("team_id")
	require.Equal(t, "(from whoami)", v)
	require.Equal(t, "whoami", src)
	v, src = get("endpoint")
	require.Equal(t, "https://top.example.com", v)
	require.Equal(t, "file", src)
	v, src = get("api_key")
	require.Equal(t, "owl_agent_9999…", v)
	require.Equal(t, "env", src)

	res = run(t, env, "config")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Contains(t, res.Stdout.String(), "endpoint\thttps://top.example.com\tfile\n", "piped: name, value, source")

	env, _ = home(t, "{corrupt")
	res = run(t, env, "config", "list")
	require.Equal(t, cmdutil.ExitFailure, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "is not valid")
}

func TestAuthSwitch(t *testing.T) {
	t.Parallel()
	env, path := home(t, twoProfiles)

	res := run(t, env, "auth", "switch")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Equal(t, acmeID+"\tacme\tAcme\ttrue\thttps://acme.example.com\n"+stagingID+"\tstaging\tStaging\tfalse\thttps://top.example.com\n", res.Stdout.String())

	res = run(t, env, "auth", "switch", "--format", "json")
	var list []map[string]any
	require.NoError(t, json.Unmarshal(res.Stdout.Bytes(), &list))
	require.Len(t, list, 2)
	require.Equal(t, true, list[0]["active"])

	res = run(t, env, "auth", "switch", "acme")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Empty(t, res.Stdout.String())
	require.Equal(t, "Already using Acme (acme)\n", res.Stderr.String())

	res = run(t, env, "switch", "Staging", "--format", "json") // the hidden alias
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.JSONEq(t, `{"team_id":"`+stagingID+`","team_name":"Staging","team_slug":"staging"}`, res.Stdout.String())
	require.Equal(t, stagingID, load(t, path).ActiveTeam)
	require.Equal(t, float64(1), func() any {
		var m map[string]any
		b, _ := os.ReadFile(path)
		_ = json.Unmarshal(b, &m)
		return m["teams"].(map[string]any)[stagingID].(map[string]any)["extra"]
	}(), "unknown profile keys survive")

	res = run(t, env, "auth", "switch", "nobody")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "error: no configured team matches \"nobody\"\n"+acmeID+"  Acme (acme)\n"+stagingID+"  Staging (staging)\n")

	env, _ = home(t, "")
	res = run(t, env, "auth", "switch", "acme")
	require.Equal(t, cmdutil.ExitAuth, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "error: no team profiles configured\nhint: owlmetry auth login\n")
}

func TestAuthLogout(t *testing.T) {
	t.Parallel()
	env, path := home(t, twoProfiles)
	res := run(t, env, "auth", "logout", "--format", "json")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode, res.Stderr.String())
	require.JSONEq(t, `{"removed":{"team_id":"`+acmeID+`","team_name":"Acme","team_slug":"acme"},"active_team":"`+stagingID+`"}`, res.Stdout.String())
	l := load(t, path)
	require.NotContains(t, l.Teams, acmeID)
	require.Equal(t, stagingID, l.ActiveTeam, "the remaining profile becomes active")

	res = run(t, env, "auth", "logout", "staging", "--format", "json")
	require.JSONEq(t, `{"removed":{"team_id":"`+stagingID+`","team_name":"Staging","team_slug":"staging"},"active_team":null}`, res.Stdout.String())
	require.Empty(t, load(t, path).ActiveTeam)

	res = run(t, env, "auth", "logout")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "no profile to remove")
}

func TestCommandsThatReadNothing(t *testing.T) {
	t.Parallel()
	env, _ := home(t, "{corrupt")
	for _, args := range [][]string{{"version"}, {"jobs", "types"}, {"completion", "zsh"}, {"config", "path"}, {"help", "exit-codes"}, {"jobs", "--help"}} {
		res := run(t, env, args...)
		require.Equal(t, cmdutil.ExitOK, res.ExitCode, "%v: %s", args, res.Stderr.String())
		require.Empty(t, res.Stderr.String(), "%v", args)
	}
}

func TestHelpGroupsAndAliases(t *testing.T) {
	t.Parallel()
	res := run(t, nil)
	out := res.Stdout.String()
	jobs := strings.Index(out, "Job commands:")
	account := strings.Index(out, "Account commands:")
	owner := strings.Index(out, "Server-owner commands:")
	other := strings.Index(out, "Other commands:")
	require.True(t, jobs > 0 && jobs < account && account < owner && owner < other, out)
	for _, name := range []string{"jobs", "ads", "ratings", "integrations"} {
		require.Regexp(t, `(?s)Job commands:.*\n  `+name+` .*Account commands:`, out)
	}
	for _, name := range []string{"auth", "whoami", "config"} {
		require.Regexp(t, `(?s)Account commands:.*\n  `+name+` .*Server-owner commands:`, out)
	}
	require.NotContains(t, out, "setup")
	require.NotRegexp(t, `\n  switch `, out)

	res = run(t, nil, "jobs", "lis")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Contains(t, res.Stderr.String(), "did you mean list?")

	res = run(t, nil, "ads")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Contains(t, res.Stdout.String(), "sync")

	res = run(t, nil, "integrations", "providers")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode, "public-CLI subcommands outside the tree are unknown")
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		res := run(t, nil, "completion", sh)
		require.Equal(t, cmdutil.ExitOK, res.ExitCode)
		require.Contains(t, res.Stdout.String(), "owlmetry")
	}
	res := run(t, nil, "completion", "tcsh")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)

	res = run(t, nil, "__complete", "jobs", "trigger", "")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	out := res.Stdout.String()
	require.Contains(t, out, "apple_ads_sync\tApple Ads Sync")
	require.Contains(t, out, "revenuecat_user_backfill")
	require.NotContains(t, out, "retention_cleanup", "system types cannot be triggered")

	res = run(t, nil, "__complete", "jobs", "list", "--status", "")
	require.Contains(t, res.Stdout.String(), "cancelled")
	res = run(t, nil, "__complete", "integrations", "sync", "")
	require.Contains(t, res.Stdout.String(), "app-store-connect")
	res = run(t, nil, "__complete", "config", "set", "")
	require.Contains(t, res.Stdout.String(), "default_project")
	res = run(t, nil, "__complete", "jobs", "wait", "--progress", "")
	require.Contains(t, res.Stdout.String(), "lines")
	res = run(t, nil, "__complete", "ratings", "sync", "--project-id", "")
	require.Equal(t, ":4\n", res.Stdout.String(), "ids never complete as file names")
	res = run(t, nil, "__complete", "jobs", "list", "--config", "")
	require.Equal(t, ":0\n", res.Stdout.String(), "--config completes file names")

	env, _ := home(t, twoProfiles)
	res = run(t, env, "__complete", "auth", "switch", "")
	require.Contains(t, res.Stdout.String(), "staging\tStaging")
	res = run(t, env, "__complete", "jobs", "list", "--team", "")
	require.Contains(t, res.Stdout.String(), "acme\tAcme")
	// Run ids need the API; with none reachable completion offers nothing and says nothing.
	env["OWLMETRY_ENDPOINT"] = "http://127.0.0.1:1"
	res = run(t, env, "__complete", "jobs", "view", "")
	require.Equal(t, cmdutil.ExitOK, res.ExitCode)
	require.Equal(t, ":4\n", res.Stdout.String(), "no candidates")
	require.NotContains(t, res.Stderr.String(), "error")
	require.NotContains(t, res.Stderr.String(), "warning")
}

func TestUsageErrorsBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	// The endpoint is unreachable: any request would fail with exit 1, so exit 2 proves
	// validation came first.
	env := map[string]string{"OWLMETRY_API_KEY": "owl_agent_x", "OWLMETRY_ENDPOINT": "http://127.0.0.1:1", "OWLMETRY_PROJECT_ID": projectID, "OWLMETRY_TEAM_ID": acmeID}
	for _, args := range [][]string{
		{"jobs", "view", "3f2a9c1e"},
		{"jobs", "list", "--status", "done"},
		{"jobs", "list", "--since", "last week"},
		{"jobs", "trigger", "db_pruning"},
		{"jobs", "trigger", "apple_ads_sync", "--timeout", "1m"},
		{"jobs", "cancel", "x"},
		{"jobs", "wait"},
		{"ads", "sync", "--project-id", "x"},
		{"ratings", "sync", "--progress", "bar"},
		{"ratings", "sync", "--wait", "--progress", "bar", "--format", "json"},
		{"ratings", "sync", "--wait", "--progress", "bar"},
		{"integrations", "sync", "stripe"},
		{"integrations", "list", "--project-id", "nope"},
		{"jobs", "list", "--format", "yaml"},
	} {
		res := run(t, env, args...)
		require.Equal(t, cmdutil.ExitUsage, res.ExitCode, "%v: %s", args, res.Stderr.String())
		require.Empty(t, res.Stdout.String())
		if strings.Contains(strings.Join(args, " "), "--format json") {
			require.Contains(t, res.Stderr.String(), `"code":"usage"`, "%v", args)
		} else {
			require.Contains(t, res.Stderr.String(), "Run 'owlmetry", "%v", args)
		}
	}
	env["OWLMETRY_PROJECT_ID"] = "not-a-uuid"
	res := run(t, env, "ratings", "sync")
	require.Equal(t, cmdutil.ExitUsage, res.ExitCode)
	require.Contains(t, res.Stderr.String(), `invalid OWLMETRY_PROJECT_ID "not-a-uuid"`)
}

func TestNoColorAndForce(t *testing.T) {
	t.Parallel()
	res := run(t, map[string]string{"CLICOLOR_FORCE": "1"}, "jobs", "trigger", "db_pruning")
	require.Contains(t, res.Stderr.String(), "\x1b[31merror:\x1b[0m")
	res = run(t, map[string]string{"CLICOLOR_FORCE": "1", "NO_COLOR": "1"}, "jobs", "trigger", "db_pruning")
	require.NotContains(t, res.Stderr.String(), "\x1b[")
	res = run(t, map[string]string{"CLICOLOR_FORCE": "1"}, "jobs", "trigger", "db_pruning", "--no-color")
	require.NotContains(t, res.Stderr.String(), "\x1b[")
}

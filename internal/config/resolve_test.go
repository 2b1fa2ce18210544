package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

const (
	acmeID    = "9c0d11aa-0000-4000-8000-000000000001"
	stagingID = "4e5f6a7b-0000-4000-8000-000000000002"
	projectID = "1a2b3c4d-0000-4000-8000-000000000001"
)

const twoProfiles = `{
  "endpoint": "https://top.example.com",
  "active_team": "` + acmeID + `",
  "teams": {
    "` + acmeID + `": {"api_key": "owl_agent_acme", "team_name": "Acme", "team_slug": "acme",
      "endpoint": "https://acme.example.com", "default_project": "` + projectID + `"},
    "` + stagingID + `": {"api_key": "owl_agent_staging", "team_name": "Staging", "team_slug": "staging"},
    "_manual": {"api_key": "owl_agent_manual", "team_name": "acme", "team_slug": "manual"}
  }
}`

type resolverBundle struct {
	r        *Resolver
	warnings []string
	path     string
}

// newResolver builds a resolver over a config file with the given body ("" for none),
// global flags parsed from args, and env.
func newResolver(t *testing.T, body string, args []string, env map[string]string) *resolverBundle {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if body != "" {
		writeFile(t, dir, body, 0o600)
	}
	fs := pflag.NewFlagSet("owlmetry", pflag.ContinueOnError)
	for _, name := range []string{"endpoint", "api-key", "team", "format", "config"} {
		fs.String(name, "", "")
	}
	require.NoError(t, fs.Parse(args))
	full := map[string]string{"OWLMETRY_CONFIG": path}
	for k, v := range env {
		full[k] = v
	}
	b := &resolverBundle{path: path}
	b.r = NewResolver(Options{
		Flags:         fs,
		LookupEnvFunc: func(k string) (string, bool) { v, ok := full[k]; return v, ok },
		WarnFunc:      func(m string) { b.warnings = append(b.warnings, m) },
	})
	return b
}

func TestAPIKeyPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		body     string
		want     string
		wantFrom Source
		wantErr  error
	}{
		{name: "flag beats env", args: []string{"--api-key", "owl_agent_flag"}, env: map[string]string{"OWLMETRY_API_KEY": "owl_agent_env"}, body: twoProfiles, want: "owl_agent_flag", wantFrom: SourceFlag},
		{name: "env beats file", env: map[string]string{"OWLMETRY_API_KEY": "owl_agent_env"}, body: twoProfiles, want: "owl_agent_env", wantFrom: SourceEnv},
		{name: "active profile", body: twoProfiles, want: "owl_agent_acme", wantFrom: SourceProfile},
		{name: "team flag picks a profile by slug", args: []string{"--team", "staging"}, body: twoProfiles, want: "owl_agent_staging", wantFrom: SourceProfile},
		{name: "OWLMETRY_TEAM picks a profile by key", env: map[string]string{"OWLMETRY_TEAM": stagingID}, body: twoProfiles, want: "owl_agent_staging", wantFrom: SourceProfile},
		{name: "no file", wantErr: ErrNotLoggedIn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newResolver(t, tt.body, tt.args, tt.env)
			v, err := b.r.APIKey()
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, v.Value)
			require.Equal(t, tt.wantFrom, v.Source)
		})
	}
}

func TestKeyFromOutsideBorrowsNothingFromProfile(t *testing.T) {
	t.Parallel()
	b := newResolver(t, twoProfiles, []string{"--team", "acme"}, map[string]string{"OWLMETRY_API_KEY": "owl_agent_env"})

	ep, err := b.r.Endpoint()
	require.NoError(t, err)
	require.Equal(t, "https://top.example.com", ep.Value, "the top-level endpoint still applies, the profile's does not")
	require.Equal(t, SourceFile, ep.Source)

	team, err := b.r.TeamID("")
	require.NoError(t, err)
	require.False(t, team.Set(), "the profile key is not used as team id")

	project, err := b.r.ProjectID("")
	require.NoError(t, err)
	require.False(t, project.Set(), "default_project is not used")

	require.Equal(t, []string{"--team is ignored because the API key comes from OWLMETRY_API_KEY"}, b.warnings, "warned once")
}

func TestKeyFromFlagNamesFlagInWarning(t *testing.T) {
	t.Parallel()
	b := newResolver(t, twoProfiles, []string{"--api-key", "owl_agent_x"}, map[string]string{"OWLMETRY_TEAM": "acme"})
	_, _, err := b.r.Profile()
	require.NoError(t, err)
	require.Equal(t, []string{"OWLMETRY_TEAM is ignored because the API key comes from --api-key"}, b.warnings)
}

func TestEndpointPrecedenceAndChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		body    string
		want    string
		source  Source
		wantErr string
		warn    string
	}{
		{name: "default", want: DefaultEndpoint, source: SourceDefault},
		{name: "profile endpoint", body: twoProfiles, want: "https://acme.example.com", source: SourceProfile},
		{name: "profile without endpoint falls back to top level", body: twoProfiles, args: []string{"--team", "staging"}, want: "https://top.example.com", source: SourceFile},
		{name: "env beats profile", body: twoProfiles, env: map[string]string{"OWLMETRY_ENDPOINT": "https://env.example.com/"}, want: "https://env.example.com", source: SourceEnv},
		{name: "flag beats env and keeps its path prefix", env: map[string]string{"OWLMETRY_ENDPOINT": "https://env.example.com"}, args: []string{"--endpoint", "https://h.example.com/owl//"}, want: "https://h.example.com/owl", source: SourceFlag},
		{name: "query refused", args: []string{"--endpoint", "https://h.example.com/?a=b"}, wantErr: `invalid --endpoint "https://h.example.com/?a=b": must not have a query or fragment`},
		{name: "relative refused", env: map[string]string{"OWLMETRY_ENDPOINT": "api.example.com"}, wantErr: `invalid OWLMETRY_ENDPOINT "api.example.com"`},
		{name: "ftp refused", args: []string{"--endpoint", "ftp://h.example.com"}, wantErr: "must be an absolute http or https URL"},
		{name: "plain http warns", args: []string{"--endpoint", "http://api.example.com"}, want: "http://api.example.com", source: SourceFlag, warn: "the API key is sent unencrypted to api.example.com"},
		{name: "plain http to loopback is fine", args: []string{"--endpoint", "http://127.0.0.1:4114"}, want: "http://127.0.0.1:4114", source: SourceFlag},
		{name: "localhost is fine", args: []string{"--endpoint", "http://localhost:4114"}, want: "http://localhost:4114", source: SourceFlag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newResolver(t, tt.body, tt.args, tt.env)
			v, err := b.r.Endpoint()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, v.Value)
			require.Equal(t, tt.source, v.Source)
			if tt.warn != "" {
				require.Equal(t, []string{tt.warn}, b.warnings)
			} else {
				require.Empty(t, b.warnings)
			}
		})
	}
}

func TestIDsFromEachSource(t *testing.T) {
	t.Parallel()
	upper := strings.ToUpper(stagingID)

	b := newResolver(t, twoProfiles, nil, nil)
	v, err := b.r.TeamID(upper)
	require.NoError(t, err)
	require.Equal(t, Value{Value: stagingID, Source: SourceFlag, From: "--team-id"}, v, "lower-cased")

	v, err = b.r.TeamID("")
	require.NoError(t, err)
	require.Equal(t, acmeID, v.Value)
	require.Equal(t, SourceProfile, v.Source)

	v, err = b.r.ProjectID("")
	require.NoError(t, err)
	require.Equal(t, projectID, v.Value)
	require.Equal(t, SourceProfile, v.Source)

	b = newResolver(t, twoProfiles, nil, map[string]string{"OWLMETRY_TEAM_ID": "nope", "OWLMETRY_PROJECT_ID": "also-nope"})
	_, err = b.r.TeamID("")
	require.ErrorContains(t, err, `invalid OWLMETRY_TEAM_ID "nope"`)
	_, err = b.r.ProjectID("")
	require.ErrorContains(t, err, `invalid OWLMETRY_PROJECT_ID "also-nope"`)

	// A non-UUID profile key (the public CLI's _manual) supplies no team id.
	b = newResolver(t, twoProfiles, []string{"--team", "manual"}, nil)
	v, err = b.r.TeamID("")
	require.NoError(t, err)
	require.False(t, v.Set())
}

func TestTeamHints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		hint    string
		wantKey string
		kind    TeamErrorKind
		body    string
	}{
		{hint: acmeID, wantKey: acmeID},
		{hint: strings.ToUpper(acmeID), wantKey: acmeID},
		{hint: "staging", wantKey: stagingID},
		{hint: "STAGING", wantKey: stagingID, body: `{"teams": {"` + stagingID + `": {"team_name": "Staging", "team_slug": "staging"}}}`},
		// "acme" is the slug of one profile and the name of another: slugs win.
		{hint: "acme", wantKey: acmeID},
		{hint: "nobody", kind: TeamNoMatch},
		{hint: "twin", kind: TeamAmbiguous, body: `{"teams": {"a": {"team_name": "Twin", "team_slug": "t1"}, "b": {"team_name": "twin", "team_slug": "t2"}}}`},
		{hint: "x", kind: TeamNoProfiles, body: `{"teams": {}}`},
	}
	for _, tt := range tests {
		t.Run(tt.hint, func(t *testing.T) {
			t.Parallel()
			body := tt.body
			if body == "" {
				body = twoProfiles
			}
			f, err := Parse([]byte(body))
			require.NoError(t, err)
			key, err := SelectProfile(f, tt.hint)
			if tt.kind != 0 {
				var te *TeamError
				require.ErrorAs(t, err, &te)
				require.Equal(t, tt.kind, te.Kind)
				if tt.kind == TeamAmbiguous {
					require.Equal(t, "several configured teams match \"twin\"\na  Twin (t1)\nb  twin (t2)", err.Error())
				}
				if tt.kind == TeamNoMatch {
					require.Contains(t, err.Error(), "no configured team matches \"nobody\"\n")
					require.Contains(t, err.Error(), stagingID+"  Staging (staging)")
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantKey, key)
		})
	}
}

func TestActiveTeamMissing(t *testing.T) {
	t.Parallel()
	b := newResolver(t, `{"active_team": "gone", "teams": {"x": {"api_key": "owl_agent_x"}}}`, nil, nil)
	_, err := b.r.APIKey()
	var te *TeamError
	require.ErrorAs(t, err, &te)
	require.Equal(t, TeamActiveMissing, te.Kind)
	require.EqualError(t, err, "active team gone is not configured")

	// A command that needs nothing from the profile does not trip over it.
	b = newResolver(t, `{"active_team": "gone"}`, []string{"--endpoint", "https://x.example"}, map[string]string{"OWLMETRY_API_KEY": "owl_agent_x"})
	_, err = b.r.Endpoint()
	require.NoError(t, err)
	_, err = b.r.APIKey()
	require.NoError(t, err)
}

func TestCorruptFileOnlyWhenNeeded(t *testing.T) {
	t.Parallel()
	b := newResolver(t, "{corrupt", []string{"--endpoint", "https://x.example"}, map[string]string{"OWLMETRY_API_KEY": "owl_agent_x", "OWLMETRY_PROJECT_ID": projectID})
	_, err := b.r.APIKey()
	require.NoError(t, err)
	_, err = b.r.Endpoint()
	require.NoError(t, err)
	_, err = b.r.ProjectID("")
	require.NoError(t, err)

	b = newResolver(t, "{corrupt", nil, nil)
	_, err = b.r.APIKey()
	require.ErrorIs(t, err, ErrInvalid)
}

func TestExposedFileWarnsOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, twoProfiles, 0o644)
	b := newResolver(t, "", nil, map[string]string{"OWLMETRY_CONFIG": filepath.Join(dir, "config.json")})
	_, err := b.r.APIKey()
	require.NoError(t, err)
	_, err = b.r.Endpoint()
	require.NoError(t, err)
	p := filepath.Join(dir, "config.json")
	require.Equal(t, []string{p + " is readable by other users; run: chmod 600 " + p}, b.warnings)
}

func TestPathPrecedence(t *testing.T) {
	t.Parallel()
	b := newResolver(t, "", []string{"--config", "/tmp/flag.json"}, nil)
	v, err := b.r.Path()
	require.NoError(t, err)
	require.Equal(t, Value{Value: "/tmp/flag.json", Source: SourceFlag, From: "--config"}, v)

	r := NewResolver(Options{LookupEnvFunc: func(k string) (string, bool) {
		if k == "HOME" {
			return "/home/ada", true
		}
		return "", false
	}})
	v, err = r.Path()
	require.NoError(t, err)
	require.Equal(t, "/home/ada/.owlmetry/config.json", v.Value)
	require.Equal(t, SourceDefault, v.Source)

	_, err = NewResolver(Options{}).Path()
	require.ErrorContains(t, err, "cannot find the home directory")
}

func TestFormatSource(t *testing.T) {
	t.Parallel()
	require.Equal(t, Value{Value: "table", Source: SourceDefault}, newResolver(t, "", nil, nil).r.Format())
	require.Equal(t, Value{Value: "json", Source: SourceEnv, From: "OWLMETRY_FORMAT"}, newResolver(t, "", nil, map[string]string{"OWLMETRY_FORMAT": "json"}).r.Format())
	require.Equal(t, Value{Value: "table", Source: SourceFlag, From: "--format"}, newResolver(t, "", []string{"--format", "table"}, map[string]string{"OWLMETRY_FORMAT": "json"}).r.Format())
}

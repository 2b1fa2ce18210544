package cmdutil

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"runtime"
	"sync"

	"golang.org/x/net/http/httpproxy"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/build"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/config"
)

// Settings is the resolved configuration of one invocation (cli.md §2.7): a
// config.Resolver whose errors are turned into the error types that pick exit codes, plus
// the rule that needs the API (the whoami fallback for the team id).
type Settings struct {
	f *Factory
	r *config.Resolver

	whoamiOnce sync.Once
	whoami     apitype.WhoAmI
	whoamiErr  error
}

// Settings returns the invocation's settings, built on first use. Nothing is read until
// a value is asked for.
func (f *Factory) Settings() *Settings {
	f.settingsOnce.Do(func() {
		f.settings = &Settings{f: f, r: config.NewResolver(config.Options{
			Flags:         f.GlobalFlagSet,
			LookupEnvFunc: f.LookupEnvFunc,
			WarnFunc:      func(msg string) { Warnf(f.IOStreams, "%s", msg) },
		})}
	})
	return f.settings
}

// Resolver gives access to the raw resolver, for `config` and `auth`.
func (s *Settings) Resolver() *config.Resolver { return s.r }

// ConfigPath is the config file path and where it came from.
func (s *Settings) ConfigPath() (config.Value, error) {
	v, err := s.r.Path()
	return v, ConfigError(err)
}

// File loads the config file.
func (s *Settings) File() (*config.Loaded, error) {
	l, err := s.r.File()
	return l, ConfigError(err)
}

// APIKey resolves the key; none is exit 4 with the login hint.
func (s *Settings) APIKey() (config.Value, error) {
	v, err := s.r.APIKey()
	return v, ConfigError(err)
}

// Endpoint resolves and checks the API base URL.
func (s *Settings) Endpoint() (config.Value, error) {
	v, err := s.r.Endpoint()
	return v, ConfigError(err)
}

// Profile resolves the selected profile.
func (s *Settings) Profile() (string, *config.Profile, error) {
	key, p, err := s.r.Profile()
	return key, p, ConfigError(err)
}

// ErrNoTeam is the usage error of a team id that cannot be resolved.
var ErrNoTeam = errors.New("no team: pass --team-id")

// TeamID resolves the team for team-scoped requests: --team-id (flagValue, "" when not
// given), OWLMETRY_TEAM_ID, the profile key, then team.id from one GET /v1/auth/whoami
// (a 404 there counts as none). None is exit 2.
func (s *Settings) TeamID(ctx context.Context, flagValue string) (config.Value, error) {
	v, err := s.r.TeamID(flagValue)
	if err != nil {
		return v, ConfigError(err)
	}
	if v.Set() {
		return v, nil
	}
	who, err := s.WhoAmI(ctx)
	if err != nil {
		if client.IsNotFound(err) {
			return config.Value{}, FlagErrorWrap(ErrNoTeam)
		}
		return config.Value{}, err
	}
	if who.Team == nil || who.Team.ID == "" {
		return config.Value{}, FlagErrorWrap(ErrNoTeam)
	}
	return config.Value{Value: who.Team.ID, Source: config.SourceWhoami, From: "whoami"}, nil
}

// WhoAmI asks the server once per invocation who the key belongs to.
func (s *Settings) WhoAmI(ctx context.Context) (apitype.WhoAmI, error) {
	s.whoamiOnce.Do(func() {
		c, err := s.f.APIClient()
		if err != nil {
			s.whoamiErr = err
			return
		}
		s.whoami, s.whoamiErr = c.AuthWhoAmI(ctx)
	})
	return s.whoami, s.whoamiErr
}

// NoProjectMessage is the usage error of a required project that cannot be resolved.
const NoProjectMessage = "no project: pass --project-id, set OWLMETRY_PROJECT_ID, or run owlmetry config set default_project <id>"

// ProjectID resolves a required project: --project-id (flagValue, "" when not given),
// OWLMETRY_PROJECT_ID, the profile's default_project. None is exit 2. Filters never call
// this: they take no defaults.
func (s *Settings) ProjectID(flagValue string) (string, error) {
	v, err := s.r.ProjectID(flagValue)
	if err != nil {
		return "", ConfigError(err)
	}
	if !v.Set() {
		return "", FlagErrorf("%s", NoProjectMessage)
	}
	return v.Value, nil
}

// ConfigError turns the config package's errors into the types that pick exit codes
// (cli.md §2.3, §2.5, §2.7). Invalid and locked files keep their own type (exit 1).
func ConfigError(err error) error {
	if err == nil {
		return nil
	}
	var (
		valueErr *config.ValueError
		teamErr  *config.TeamError
	)
	switch {
	case errors.Is(err, config.ErrNotLoggedIn):
		return &CredentialsError{Message: "not logged in", Hint: "owlmetry auth login, or set OWLMETRY_API_KEY"}
	case errors.As(err, &valueErr):
		return FlagErrorWrap(err)
	case errors.As(err, &teamErr):
		switch teamErr.Kind {
		case config.TeamNoProfiles:
			return &CredentialsError{Message: err.Error(), Hint: "owlmetry auth login"}
		case config.TeamActiveMissing:
			return &CredentialsError{Message: err.Error(), Hint: "owlmetry auth switch <team>"}
		default:
			return FlagErrorWrap(err)
		}
	}
	return err
}

// UserAgent is `owlmetry/<version> (<os>/<arch>)`.
func UserAgent() string {
	return "owlmetry/" + build.Current().Version + " (" + runtime.GOOS + "/" + runtime.GOARCH + ")"
}

// APIClient returns a client for the resolved endpoint and key, built once.
func (f *Factory) APIClient() (*client.Client, error) {
	f.clientOnce.Do(func() {
		s := f.Settings()
		key, err := s.APIKey()
		if err != nil {
			f.clientErr = err
			return
		}
		ep, err := s.Endpoint()
		if err != nil {
			f.clientErr = err
			return
		}
		f.client = client.New(client.Options{
			Endpoint:       ep.Value,
			APIKey:         key.Value,
			HTTPClient:     f.HTTPClient(),
			RequestTimeout: f.Flags.RequestTimeout,
			UserAgent:      UserAgent(),
		})
	})
	return f.client, f.clientErr
}

// HTTPClient is the transport every API request uses: the proxy from HTTPS_PROXY,
// HTTP_PROXY and NO_PROXY of the injected environment, and the --debug line writer.
func (f *Factory) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	cfg := httpproxy.Config{
		HTTPProxy:  firstEnv(f.LookupEnvFunc, "HTTP_PROXY", "http_proxy"),
		HTTPSProxy: firstEnv(f.LookupEnvFunc, "HTTPS_PROXY", "https_proxy"),
		NoProxy:    firstEnv(f.LookupEnvFunc, "NO_PROXY", "no_proxy"),
	}
	proxy := cfg.ProxyFunc()
	tr.Proxy = func(r *http.Request) (*url.URL, error) { return proxy(r.URL) }
	var rt http.RoundTripper = tr
	if f.Flags.Debug {
		rt = client.DebugTransport(tr, f.IOStreams.ErrOut, nil)
	}
	return &http.Client{Transport: rt}
}

func firstEnv(lookup func(string) (string, bool), keys ...string) string {
	for _, k := range keys {
		if v, ok := lookup(k); ok && v != "" {
			return v
		}
	}
	return ""
}

package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// DefaultEndpoint is the API base URL used when nothing else names one.
const DefaultEndpoint = "https://api.owlmetry.com"

// Source says where a resolved value came from; `config list` prints it.
type Source string

// The sources of cli.md §9.5.
const (
	SourceFlag    Source = "flag"
	SourceEnv     Source = "env"
	SourceProfile Source = "profile"
	SourceFile    Source = "file"
	SourceDefault Source = "default"
	SourceWhoami  Source = "whoami"
	SourceUnset   Source = "unset"
)

// Value is one resolved setting.
type Value struct {
	// Value is the resolved value, "" when unset.
	Value string
	// Source is where it came from.
	Source Source
	// From names the flag, variable or profile it came from ("--team-id",
	// "OWLMETRY_TEAM_ID", "profile acme"), for messages.
	From string
}

// Set reports whether the value has a source other than unset.
func (v Value) Set() bool { return v.Source != "" && v.Source != SourceUnset }

// ErrNotLoggedIn means no API key was found anywhere (cli.md §2.7).
var ErrNotLoggedIn = errors.New("not logged in")

// ValueError is a value that fails its check, naming where it came from so the user
// knows what to fix (cli.md §2.7: "naming the flag or variable it came from").
type ValueError struct {
	From   string
	Value  string
	Reason string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.From, e.Value, e.Reason)
}

// Options are what a Resolver reads.
type Options struct {
	// Flags holds the global flags (config, endpoint, api-key, team, format). It may be
	// nil, as in tests of a single command; every flag then counts as not given.
	Flags *pflag.FlagSet
	// LookupEnvFunc is the injected environment.
	LookupEnvFunc func(string) (string, bool)
	// WarnFunc prints a warning line; each distinct warning is passed at most once.
	WarnFunc func(msg string)
}

// Resolver resolves settings for one invocation, lazily and each on its own: a setting
// that comes from a flag or the environment never reads the file, so a broken file only
// matters to commands that need it (cli.md §2.3, §2.7).
type Resolver struct {
	opts Options
	v    *viper.Viper

	loadOnce sync.Once
	loaded   *Loaded
	loadErr  error

	mu     sync.Mutex
	warned map[string]bool
}

// NewResolver builds a resolver with its own viper instance, never the package-level one.
func NewResolver(o Options) *Resolver {
	if o.LookupEnvFunc == nil {
		o.LookupEnvFunc = func(string) (string, bool) { return "", false }
	}
	r := &Resolver{opts: o, v: viper.New(), warned: map[string]bool{}}
	for _, name := range []string{"endpoint", "api-key", "team", "format"} {
		if f := r.flag(name); f != nil {
			_ = r.v.BindPFlag(name, f)
		}
	}
	env := map[string]any{}
	for key, name := range map[string]string{"endpoint": "OWLMETRY_ENDPOINT", "api-key": "OWLMETRY_API_KEY", "team": "OWLMETRY_TEAM", "format": "OWLMETRY_FORMAT"} {
		if s, ok := r.env(name); ok {
			env[key] = s
		}
	}
	// Environment values enter as viper's config layer: below flags, above defaults.
	_ = r.v.MergeConfigMap(env)
	return r
}

func (r *Resolver) flag(name string) *pflag.Flag {
	if r.opts.Flags == nil {
		return nil
	}
	return r.opts.Flags.Lookup(name)
}

func (r *Resolver) flagChanged(name string) bool {
	f := r.flag(name)
	return f != nil && f.Changed
}

func (r *Resolver) env(name string) (string, bool) {
	s, ok := r.opts.LookupEnvFunc(name)
	if !ok || s == "" {
		return "", false
	}
	return s, true
}

func (r *Resolver) warn(msg string) {
	r.mu.Lock()
	seen := r.warned[msg]
	r.warned[msg] = true
	r.mu.Unlock()
	if !seen && r.opts.WarnFunc != nil {
		r.opts.WarnFunc(msg)
	}
}

// Path resolves the config file path: --config, OWLMETRY_CONFIG, then
// <home>/.owlmetry/config.json (cli.md §2.1). It reads nothing.
func (r *Resolver) Path() (Value, error) {
	if r.flagChanged("config") {
		return Value{Value: r.flag("config").Value.String(), Source: SourceFlag, From: "--config"}, nil
	}
	if s, ok := r.env("OWLMETRY_CONFIG"); ok {
		return Value{Value: s, Source: SourceEnv, From: "OWLMETRY_CONFIG"}, nil
	}
	homeVar := "HOME"
	if runtime.GOOS == "windows" {
		homeVar = "USERPROFILE"
	}
	home, ok := r.env(homeVar)
	if !ok {
		return Value{}, &ValueError{From: homeVar, Value: "", Reason: "cannot find the home directory; pass --config or set OWLMETRY_CONFIG"}
	}
	return Value{Value: filepath.Join(home, ".owlmetry", "config.json"), Source: SourceDefault}, nil
}

// File loads the config file once per invocation. A file whose mode lets other users
// read it produces one warning.
func (r *Resolver) File() (*Loaded, error) {
	r.loadOnce.Do(func() {
		p, err := r.Path()
		if err != nil {
			r.loadErr = err
			return
		}
		r.loaded, r.loadErr = Load(p.Value)
		if r.loadErr == nil && r.loaded.Exposed {
			r.warn(fmt.Sprintf("%s is readable by other users; run: chmod 600 %s", p.Value, p.Value))
		}
	})
	return r.loaded, r.loadErr
}

// KeyFromOutside reports whether the API key comes from --api-key or OWLMETRY_API_KEY,
// and which. Such a key borrows nothing from a profile (cli.md §2.7).
func (r *Resolver) KeyFromOutside() (string, bool) {
	if r.flagChanged("api-key") && r.flag("api-key").Value.String() != "" {
		return "--api-key", true
	}
	if _, ok := r.env("OWLMETRY_API_KEY"); ok {
		return "OWLMETRY_API_KEY", true
	}
	return "", false
}

// teamHint returns --team or OWLMETRY_TEAM and which one it was.
func (r *Resolver) teamHint() (hint, from string) {
	if r.flagChanged("team") {
		if s := r.v.GetString("team"); s != "" {
			return s, "--team"
		}
	}
	if s, ok := r.env("OWLMETRY_TEAM"); ok {
		return s, "OWLMETRY_TEAM"
	}
	return "", ""
}

// Profile selects the profile: --team, OWLMETRY_TEAM, then active_team (cli.md §2.5,
// §2.7). It returns key "" and a nil profile when none is selected, which is not an
// error. When the key comes from outside the file no profile is used, and a team hint
// given at the same time is warned about.
func (r *Resolver) Profile() (string, *Profile, error) {
	hint, hintFrom := r.teamHint()
	if keyFrom, outside := r.KeyFromOutside(); outside {
		if hint != "" {
			r.warn(fmt.Sprintf("%s is ignored because the API key comes from %s", hintFrom, keyFrom))
		}
		return "", nil, nil
	}
	return r.selectedProfile(hint)
}

func (r *Resolver) selectedProfile(hint string) (string, *Profile, error) {
	l, err := r.File()
	if err != nil {
		return "", nil, err
	}
	if hint != "" {
		key, err := SelectProfile(l.File, hint)
		if err != nil {
			return "", nil, err
		}
		return key, l.Teams[key], nil
	}
	if l.ActiveTeam == "" {
		return "", nil, nil
	}
	p, ok := l.Teams[l.ActiveTeam]
	if !ok {
		return "", nil, &TeamError{Kind: TeamActiveMissing, Hint: l.ActiveTeam}
	}
	return l.ActiveTeam, p, nil
}

// APIKey resolves the key: --api-key, OWLMETRY_API_KEY, the profile's api_key.
func (r *Resolver) APIKey() (Value, error) {
	if r.flagChanged("api-key") {
		if s := r.v.GetString("api-key"); s != "" {
			return Value{Value: s, Source: SourceFlag, From: "--api-key"}, nil
		}
	}
	if s, ok := r.env("OWLMETRY_API_KEY"); ok {
		return Value{Value: s, Source: SourceEnv, From: "OWLMETRY_API_KEY"}, nil
	}
	key, p, err := r.Profile()
	if err != nil {
		return Value{}, err
	}
	if p == nil || p.APIKey == "" {
		return Value{Source: SourceUnset}, ErrNotLoggedIn
	}
	return Value{Value: p.APIKey, Source: SourceProfile, From: profileName(key, p)}, nil
}

// Endpoint resolves the API base URL: --endpoint, OWLMETRY_ENDPOINT, the profile's
// endpoint (not for a key from outside the file), the top-level endpoint, the default.
// The result is checked and normalised by ParseEndpoint.
func (r *Resolver) Endpoint() (Value, error) {
	var src Value
	switch {
	case r.flagChanged("endpoint") && r.flag("endpoint").Value.String() != "":
		src = Value{Source: SourceFlag, From: "--endpoint"}
	case r.hasEnv("OWLMETRY_ENDPOINT"):
		src = Value{Source: SourceEnv, From: "OWLMETRY_ENDPOINT"}
	default:
		// Only now is the file needed; its values are viper's lowest layer.
		fallback := Value{Value: DefaultEndpoint, Source: SourceDefault, From: "the default endpoint"}
		_, outside := r.KeyFromOutside()
		var profile *Profile
		var key string
		if !outside {
			var err error
			if key, profile, err = r.Profile(); err != nil {
				return Value{}, err
			}
		} else if _, err := r.File(); err != nil {
			return Value{}, err
		}
		l, _ := r.File()
		switch {
		case profile != nil && profile.Endpoint != "":
			fallback = Value{Value: profile.Endpoint, Source: SourceProfile, From: profileName(key, profile) + " endpoint"}
		case l != nil && l.Endpoint != "":
			fallback = Value{Value: l.Endpoint, Source: SourceFile, From: "endpoint in " + l.Path}
		}
		r.v.SetDefault("endpoint", fallback.Value)
		src = fallback
	}
	raw := r.v.GetString("endpoint")
	u, err := ParseEndpoint(raw)
	if err != nil {
		return Value{}, &ValueError{From: src.From, Value: raw, Reason: err.Error()}
	}
	if host, insecure := InsecureHost(u); insecure {
		r.warn("the API key is sent unencrypted to " + host)
	}
	src.Value = u
	return src, nil
}

func (r *Resolver) hasEnv(name string) bool {
	_, ok := r.env(name)
	return ok
}

// TeamID resolves the team for team-scoped requests: the --team-id value (pass "" when
// the flag was not given), OWLMETRY_TEAM_ID, then the profile key when it is a UUID
// (not for a key from outside the file). Unset means the caller may ask whoami.
func (r *Resolver) TeamID(flagValue string) (Value, error) {
	if flagValue != "" {
		return checkedID(flagValue, SourceFlag, "--team-id")
	}
	if s, ok := r.env("OWLMETRY_TEAM_ID"); ok {
		return checkedID(s, SourceEnv, "OWLMETRY_TEAM_ID")
	}
	key, p, err := r.Profile()
	if err != nil {
		return Value{}, err
	}
	if p != nil {
		if id, ok := ParseUUID(key); ok {
			return Value{Value: id, Source: SourceProfile, From: profileName(key, p)}, nil
		}
	}
	return Value{Source: SourceUnset}, nil
}

// ProjectID resolves the project where one is required: the --project-id value (pass ""
// when not given), OWLMETRY_PROJECT_ID, then the profile's default_project (not for a key
// from outside the file). Filters never call this: they take no defaults.
func (r *Resolver) ProjectID(flagValue string) (Value, error) {
	if flagValue != "" {
		return checkedID(flagValue, SourceFlag, "--project-id")
	}
	if s, ok := r.env("OWLMETRY_PROJECT_ID"); ok {
		return checkedID(s, SourceEnv, "OWLMETRY_PROJECT_ID")
	}
	key, p, err := r.Profile()
	if err != nil {
		return Value{}, err
	}
	if p != nil && p.DefaultProject != "" {
		return checkedID(p.DefaultProject, SourceProfile, profileName(key, p)+" default_project")
	}
	return Value{Source: SourceUnset}, nil
}

// Format resolves the output format's raw text: --format, OWLMETRY_FORMAT, table.
func (r *Resolver) Format() Value {
	r.v.SetDefault("format", "table")
	v := r.v.GetString("format")
	switch {
	case r.flagChanged("format"):
		return Value{Value: v, Source: SourceFlag, From: "--format"}
	case r.hasEnv("OWLMETRY_FORMAT"):
		return Value{Value: v, Source: SourceEnv, From: "OWLMETRY_FORMAT"}
	}
	return Value{Value: v, Source: SourceDefault}
}

func checkedID(v string, src Source, from string) (Value, error) {
	id, ok := ParseUUID(strings.TrimSpace(v))
	if !ok {
		return Value{}, &ValueError{From: from, Value: v, Reason: "must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"}
	}
	return Value{Value: id, Source: src, From: from}, nil
}

func profileName(key string, p *Profile) string {
	if p != nil && p.TeamSlug != "" {
		return "profile " + p.TeamSlug
	}
	return "profile " + key
}

// ProfileLabel names a profile for people: its slug, else its key.
func ProfileLabel(key string, p *Profile) string {
	if p != nil && p.TeamSlug != "" {
		return p.TeamSlug
	}
	return key
}

// ParseUUID accepts the canonical 8-4-4-4-12 form in any case and lower-cases it.
func ParseUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !isHex(c) {
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// ParseEndpoint checks an API base URL (cli.md §2.7): absolute http or https, with a
// host, without query or fragment. Trailing slashes are removed; a path prefix is kept.
func ParseEndpoint(s string) (string, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("must be an absolute http or https URL")
	}
	if u.Host == "" {
		return "", errors.New("has no host")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return "", errors.New("must not have a query or fragment")
	}
	if u.User != nil {
		return "", errors.New("must not contain credentials")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u.String(), nil
}

// InsecureHost reports an http endpoint whose host is not a loopback address, to which
// the key would travel in clear text.
func InsecureHost(endpoint string) (string, bool) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" {
		return "", false
	}
	host := u.Hostname()
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "", false
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return "", false
	}
	return host, true
}

// TeamErrorKind distinguishes the ways a team hint can fail (cli.md §2.5).
type TeamErrorKind int

// The kinds of TeamError.
const (
	// TeamAmbiguous: several profiles match under one rule (exit 2).
	TeamAmbiguous TeamErrorKind = iota + 1
	// TeamNoMatch: no profile matches (exit 2).
	TeamNoMatch
	// TeamNoProfiles: there are no profiles at all (exit 4).
	TeamNoProfiles
	// TeamActiveMissing: active_team names no profile (exit 4).
	TeamActiveMissing
)

// TeamError is a team hint or active team that selects no single profile.
type TeamError struct {
	Kind TeamErrorKind
	// Hint is the hint given, or the active_team value.
	Hint string
	// Candidates are the profiles to list, one "<key>  <team_name> (<team_slug>)" each.
	Candidates []string
}

func (e *TeamError) Error() string {
	var head string
	switch e.Kind {
	case TeamAmbiguous:
		head = fmt.Sprintf("several configured teams match %q", e.Hint)
	case TeamNoMatch:
		head = fmt.Sprintf("no configured team matches %q", e.Hint)
	case TeamNoProfiles:
		return "no team profiles configured"
	default:
		return fmt.Sprintf("active team %s is not configured", e.Hint)
	}
	if len(e.Candidates) == 0 {
		return head
	}
	return head + "\n" + strings.Join(e.Candidates, "\n")
}

// SelectProfile resolves a team hint to one profile key: exact key, then exact slug,
// then name case-insensitively; the first rule with a match decides (cli.md §2.5).
func SelectProfile(f *File, hint string) (string, error) {
	if len(f.Teams) == 0 {
		return "", &TeamError{Kind: TeamNoProfiles, Hint: hint}
	}
	if _, ok := f.Teams[hint]; ok {
		return hint, nil
	}
	if id, ok := ParseUUID(hint); ok {
		if _, ok := f.Teams[id]; ok {
			return id, nil
		}
	}
	rules := []func(p *Profile) bool{
		func(p *Profile) bool { return p.TeamSlug != "" && p.TeamSlug == hint },
		func(p *Profile) bool { return p.TeamName != "" && strings.EqualFold(p.TeamName, hint) },
	}
	for _, match := range rules {
		var keys []string
		for k, p := range f.Teams {
			if match(p) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		switch len(keys) {
		case 0:
			continue
		case 1:
			return keys[0], nil
		default:
			return "", &TeamError{Kind: TeamAmbiguous, Hint: hint, Candidates: profileLines(f, keys)}
		}
	}
	return "", &TeamError{Kind: TeamNoMatch, Hint: hint, Candidates: profileLines(f, f.ProfileKeys())}
}

func profileLines(f *File, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		p := f.Teams[k]
		out[i] = fmt.Sprintf("%s  %s (%s)", k, p.TeamName, p.TeamSlug)
	}
	return out
}

// FileProfile selects the profile a change to the file applies to: --team,
// OWLMETRY_TEAM, then active_team — whatever the key's source, because `config set` and
// `auth` edit the file, not a request.
func (r *Resolver) FileProfile() (string, *Profile, error) {
	hint, _ := r.teamHint()
	return r.selectedProfile(hint)
}

// TeamHint returns --team or OWLMETRY_TEAM, "" when neither is given.
func (r *Resolver) TeamHint() string {
	hint, _ := r.teamHint()
	return hint
}

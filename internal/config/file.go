package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
)

// ErrInvalid is the cause of every error about a config file that cannot be used: not
// readable, not JSON, or a known key with the wrong type (cli.md §2.3).
var ErrInvalid = errors.New("invalid config file")

// InvalidError names the file and why it cannot be used.
type InvalidError struct {
	Path   string
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("config file %s is not valid: %s", e.Path, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// File is config.json: the keys both owlmetry and the public Owlmetry CLI use, plus every
// key neither knows, kept verbatim so a rewrite never loses them (cli.md §2.2).
type File struct {
	// Endpoint is the API base URL of the most recent login. Used when the selected
	// profile has none.
	Endpoint string
	// IngestEndpoint is the SDK ingest URL; kept for the public CLI, never called.
	IngestEndpoint string
	// ActiveTeam is the key of the default profile in Teams.
	ActiveTeam string
	// Teams maps a profile key (the team's UUID, or "_manual") to the profile.
	Teams map[string]*Profile

	extra map[string]json.RawMessage
}

// Profile is one stored team login.
type Profile struct {
	// APIKey is the agent key.
	APIKey string
	// TeamName is the team's name at login time.
	TeamName string
	// TeamSlug is the team's slug at login time.
	TeamSlug string
	// Endpoint is the API base URL the key was verified against (owlmetry addition).
	Endpoint string
	// DefaultProject is the project used when a command needs one and none is given
	// (owlmetry addition).
	DefaultProject string

	extra map[string]json.RawMessage
}

var (
	fileKeys    = []string{"endpoint", "ingest_endpoint", "active_team", "teams"}
	profileKeys = []string{"api_key", "team_name", "team_slug", "endpoint", "default_project"}
)

// UnmarshalJSON decodes the known keys, checking their types, and keeps all others.
func (f *File) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return errors.New("the top level is not a JSON object")
	}
	if m == nil {
		return errors.New("the top level is not a JSON object")
	}
	var err error
	if f.Endpoint, err = takeString(m, "endpoint", ""); err != nil {
		return err
	}
	if f.IngestEndpoint, err = takeString(m, "ingest_endpoint", ""); err != nil {
		return err
	}
	if f.ActiveTeam, err = takeString(m, "active_team", ""); err != nil {
		return err
	}
	f.Teams = map[string]*Profile{}
	if raw, ok := m["teams"]; ok {
		delete(m, "teams")
		if !isNull(raw) {
			var teams map[string]json.RawMessage
			if err := json.Unmarshal(raw, &teams); err != nil || teams == nil {
				return errors.New(`"teams" must be an object`)
			}
			for key, praw := range teams {
				p := &Profile{}
				if err := p.decode(key, praw); err != nil {
					return err
				}
				f.Teams[key] = p
			}
		}
	}
	f.extra = m
	return nil
}

func (p *Profile) decode(key string, b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return fmt.Errorf("teams[%q] must be an object", key)
	}
	where := fmt.Sprintf("teams[%q].", key)
	var err error
	if p.APIKey, err = takeString(m, "api_key", where); err != nil {
		return err
	}
	if p.TeamName, err = takeString(m, "team_name", where); err != nil {
		return err
	}
	if p.TeamSlug, err = takeString(m, "team_slug", where); err != nil {
		return err
	}
	if p.Endpoint, err = takeString(m, "endpoint", where); err != nil {
		return err
	}
	if p.DefaultProject, err = takeString(m, "default_project", where); err != nil {
		return err
	}
	p.extra = m
	return nil
}

// takeString removes a known key from m and decodes it as a string. null counts as
// absent; any other type is an error naming the key.
func takeString(m map[string]json.RawMessage, key, where string) (string, error) {
	raw, ok := m[key]
	if !ok {
		return "", nil
	}
	delete(m, key)
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s%s must be a string", where, key)
	}
	return s, nil
}

func isNull(b json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

// MarshalJSON writes the known keys that have a value and every unknown key unchanged.
func (f *File) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(f.extra)+len(fileKeys))
	for k, v := range f.extra {
		m[k] = v
	}
	putString(m, "endpoint", f.Endpoint)
	putString(m, "ingest_endpoint", f.IngestEndpoint)
	putString(m, "active_team", f.ActiveTeam)
	// teams is always written: the public CLI expects the object to exist.
	teams := make(map[string]any, len(f.Teams))
	for k, p := range f.Teams {
		teams[k] = p.toMap()
	}
	m["teams"] = teams
	return encode(m, "")
}

func (p *Profile) toMap() map[string]any {
	m := make(map[string]any, len(p.extra)+len(profileKeys))
	for k, v := range p.extra {
		m[k] = v
	}
	putString(m, "api_key", p.APIKey)
	putString(m, "team_name", p.TeamName)
	putString(m, "team_slug", p.TeamSlug)
	putString(m, "endpoint", p.Endpoint)
	putString(m, "default_project", p.DefaultProject)
	return m
}

func putString(m map[string]any, key, v string) {
	if v != "" {
		m[key] = v
	}
}

// encode writes JSON without HTML escaping, so unknown values keep their exact text.
func encode(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Document renders the file as written to disk: two-space indent, trailing newline.
func (f *File) Document() ([]byte, error) {
	b, err := f.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Extra returns the unknown top-level keys, for tests and diagnostics.
func (f *File) Extra() map[string]json.RawMessage { return f.extra }

// ProfileKeys returns the profile keys sorted by team name, then key.
func (f *File) ProfileKeys() []string {
	keys := make([]string, 0, len(f.Teams))
	for k := range f.Teams {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := strings.ToLower(f.Teams[keys[i]].TeamName), strings.ToLower(f.Teams[keys[j]].TeamName)
		if a != b {
			return a < b
		}
		return keys[i] < keys[j]
	})
	return keys
}

// Loaded is a file as read from disk, with what is known about it.
type Loaded struct {
	*File
	// Path is where it was read from.
	Path string
	// Exists is false when there was no file; File is then empty.
	Exists bool
	// Exposed is true when the file's mode grants group or other permissions.
	Exposed bool
}

// Load reads the config file. A missing file is an empty File, not an error; a file that
// cannot be read or decoded is an *InvalidError.
func Load(path string) (*Loaded, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Loaded{File: &File{Teams: map[string]*Profile{}}, Path: path}, nil
	}
	if err != nil {
		return nil, &InvalidError{Path: path, Reason: readReason(err)}
	}
	f, err := Parse(b)
	if err != nil {
		return nil, &InvalidError{Path: path, Reason: err.Error()}
	}
	l := &Loaded{File: f, Path: path, Exists: true}
	if fi, err := os.Stat(path); err == nil {
		l.Exposed = exposed(fi.Mode())
	}
	return l, nil
}

// Parse decodes a config document.
func Parse(b []byte) (*File, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("the file is empty")
	}
	f := &File{}
	if err := json.Unmarshal(b, f); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("not JSON (%s at byte %d)", syn.Error(), syn.Offset)
		}
		return nil, err
	}
	return f, nil
}

func readReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

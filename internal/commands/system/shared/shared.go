// Package shared holds what the server-owner commands (`owlmetry system …`) have in
// common: reaching the database with the session settings and schema check of cli.md
// §10.1, the values they parse (time filters, ages, --param), and the renderers of runs,
// schedules and identities.
package shared

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// Deps is what the `system` commands take from the process besides the Factory.
type Deps struct {
	// Handlers builds the job handlers `system jobs run` enqueues and executes. Nil means
	// the handlers compiled into this binary; tests pass their own.
	Handlers localjobs.HandlersFunc
}

// StoreFunc opens the database for one command. write says whether the command changes
// anything: a write command refuses a database schema newer than this binary.
type StoreFunc func(ctx context.Context, write bool) (*localjobs.Store, error)

// AddDatabaseFlags adds --database-url and --statement-timeout (default 10s) to cmd.
func AddDatabaseFlags(cmd *cobra.Command, o *cmdutil.DatabaseOptions) {
	o.DefaultStatementTimeout = 10 * time.Second
	o.BuildFlags(cmd.Flags(), true)
}

// Opener returns the StoreFunc of a command: resolve the URL (flag, OWLMETRY_DATABASE_URL,
// DATABASE_URL, PG* variables), open the pool with the server-owner session settings,
// compare the schema with this binary, and wrap the pool in a Store that reads the
// server's settings from the same environment. handlers is nil except for commands that
// start runs.
func Opener(f *cmdutil.Factory, o *cmdutil.DatabaseOptions, handlers localjobs.HandlersFunc) StoreFunc {
	return func(ctx context.Context, write bool) (*localjobs.Store, error) {
		pool, err := o.Open(ctx, f.LookupEnvFunc)
		if err != nil {
			return nil, err
		}
		warn := func(msg string) { cmdutil.Warnf(f.IOStreams, "%s", msg) }
		if err := cmdutil.CheckSchema(ctx, pool, write, warn); err != nil {
			pool.Close()
			return nil, err
		}
		st, err := localjobs.New(pool, localjobs.Config{LookupEnv: f.LookupEnvFunc, Handlers: handlers})
		if err != nil {
			pool.Close()
			return nil, err
		}
		return st, nil
	}
}

// HandlersOr returns h, or the handlers of this build when h is nil.
func HandlersOr(h localjobs.HandlersFunc) localjobs.HandlersFunc {
	if h != nil {
		return h
	}
	return localjobs.BuildHandlers
}

var relative = regexp.MustCompile(`^([0-9]{1,9})([smhdw])$`)

var units = map[string]time.Duration{
	"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
}

// ParseTime turns a time filter (cli.md §0) into an instant: `<n>s|m|h|d|w` before now,
// an RFC 3339 timestamp with zone, or YYYY-MM-DD at UTC midnight. Anything else is a
// usage error naming the flag.
func ParseTime(flag, value string, now time.Time) (time.Time, error) {
	if m := relative.FindStringSubmatch(value); m != nil {
		n, _ := strconv.Atoi(m[1])
		return now.Add(-time.Duration(n) * units[m[2]]).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, value); err == nil {
		return t.UTC(), nil
	}
	if len(value) == len("2006-01-02") {
		if t, err := time.ParseInLocation("2006-01-02", value, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, cmdutil.FlagErrorf("invalid %s %q: use a relative time (30s, 15m, 2h, 7d, 1w), an RFC 3339 timestamp with zone, or YYYY-MM-DD", flag, value)
}

var ageRE = regexp.MustCompile(`^([0-9]{1,6})([dw])$`)

// ParseAge reads an age (cli.md §0): a Go duration, or `<n>d` and `<n>w`.
func ParseAge(flag, value string) (time.Duration, error) {
	if m := ageRE.FindStringSubmatch(value); m != nil {
		n, _ := strconv.Atoi(m[1])
		return time.Duration(n) * units[m[2]], nil
	}
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, cmdutil.FlagErrorf("invalid %s %q: use a duration such as 90d, 2w or 36h", flag, value)
	}
	return d, nil
}

var paramKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ParseParams splits repeated --param key=value at the first "=" (cli.md §7.3, §10.4).
// A malformed or repeated key, or project_id (which has its own flag), is a usage error.
func ParseParams(raw []string) (map[string]string, error) {
	var out map[string]string
	for _, r := range raw {
		k, v, ok := strings.Cut(r, "=")
		if !ok {
			return nil, cmdutil.FlagErrorf("invalid --param %q: use key=value", r)
		}
		if !paramKey.MatchString(k) {
			return nil, cmdutil.FlagErrorf("invalid --param key %q: lower-case letters, digits and underscores", k)
		}
		if k == "project_id" {
			return nil, cmdutil.FlagErrorf("--param project_id is not allowed: use --project-id")
		}
		if _, dup := out[k]; dup {
			return nil, cmdutil.FlagErrorf("--param %s given twice", k)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out, nil
}

// ParseJobType checks a registry type; an unknown one lists the valid types.
func ParseJobType(value string) (string, error) {
	t, err := cmdutil.ParseJobType(value)
	if err != nil {
		return "", err
	}
	return t.Name, nil
}

// ParseStatuses checks repeated --status values.
func ParseStatuses(values []string) ([]apitype.Status, error) {
	out := make([]apitype.Status, 0, len(values))
	for _, v := range values {
		s := apitype.Status(v)
		if !s.Valid() {
			return nil, cmdutil.FlagErrorf("invalid --status %q: valid statuses are pending, running, completed, failed, cancelled", v)
		}
		out = append(out, s)
	}
	return out, nil
}

// UsageError turns the validation errors of the engine and localjobs into usage errors
// (exit 2): unknown params, values of the wrong type, missing required params, a project
// that does not exist, a type without a handler, refused schedules and cron expressions,
// bad bootstrap input, unknown teams and users. Everything else is returned as it is.
func UsageError(err error) error {
	if localjobs.IsUsage(err) {
		return cmdutil.FlagErrorWrap(err)
	}
	return err
}

// ViewHint is how to follow or re-attach to a run from the server-owner side.
func ViewHint(id string) string {
	return "follow it: owlmetry system jobs view " + id + " --wait"
}

// ShortID is the first 8 characters of an id.
func ShortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Plural is "1 run", "2 runs".
func Plural(n int64, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

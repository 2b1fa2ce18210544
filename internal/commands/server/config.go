package server

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobs"
	"github.com/owlmetry/owlmetry/internal/notify"
	apiserver "github.com/owlmetry/owlmetry/internal/server"
)

// DefaultListen is the listen address when neither --listen nor OWLMETRY_LISTEN is set.
const DefaultListen = ":4114"

// settings is everything `owlmetry server` resolved from its flags and environment
// before it touches the network or the database.
type settings struct {
	listen        string
	databaseURL   string
	engine        engine.Settings
	jwtSecret     []byte
	secretKey     []byte
	metricsToken  string
	sseMaxStreams int
	logFormat     string
	logLevel      slog.Level
	notify        notify.Config
	jobs          jobs.Config
}

// settingError is an invalid or missing setting: one line naming it (engine.md §17).
type settingError struct{ msg string }

func (e *settingError) Error() string { return e.msg }

func invalid(name, value, want string) error {
	return &settingError{msg: fmt.Sprintf("invalid %s %q: %s", name, value, want)}
}

// source returns a flag's value when it was given, else the variable's, else def, and the
// name to blame when the value is wrong.
func source(fs *pflag.FlagSet, flag, flagValue, env string, lookup func(string) (string, bool), def string) (string, string) {
	if fs.Changed(flag) {
		return flagValue, "--" + flag
	}
	if v, ok := lookup(env); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v), env
	}
	return def, "--" + flag
}

// resolve applies flags over the environment over defaults and validates every value,
// in the order the help lists them.
func resolve(opts *ServerOptions, fs *pflag.FlagSet) (settings, error) {
	lookup := opts.lookupEnv()
	var s settings

	format, name := source(fs, "log-format", opts.LogFormat, "OWLMETRY_LOG_FORMAT", lookup, "auto")
	switch format {
	case "auto", "text", "json":
		s.logFormat = format
	default:
		return s, invalid(name, format, "auto, text or json")
	}
	level, name := source(fs, "log-level", opts.LogLevel, "OWLMETRY_LOG_LEVEL", lookup, "info")
	if err := s.logLevel.UnmarshalText([]byte(level)); err != nil || strings.ContainsAny(level, "+-") {
		return s, invalid(name, level, "debug, info, warn or error")
	}

	listen, name := source(fs, "listen", opts.Listen, "OWLMETRY_LISTEN", lookup, DefaultListen)
	if _, port, err := net.SplitHostPort(listen); err != nil || !validPort(port) {
		return s, invalid(name, listen, "a host:port address such as :4114 or 127.0.0.1:4114")
	}
	s.listen = listen

	es, err := engine.LoadSettings(lookup)
	if err != nil {
		return s, &settingError{msg: err.Error()}
	}
	if fs.Changed("workers") {
		if opts.Workers < 0 {
			return s, invalid("--workers", strconv.Itoa(opts.Workers), "an integer ≥ 0")
		}
		es.Workers = opts.Workers
	}
	if fs.Changed("node-id") {
		es.NodeID = opts.NodeID
	}
	es.Scheduler = !opts.NoScheduler
	if opts.ShutdownTimeout <= 0 {
		return s, invalid("--shutdown-timeout", opts.ShutdownTimeout.String(), "a positive duration such as 25s")
	}
	es.ShutdownTimeout = opts.ShutdownTimeout
	if err := es.Validate(); err != nil {
		return s, &settingError{msg: err.Error()}
	}
	if es.DBMaxConns < es.Workers+10 {
		return s, invalid("OWLMETRY_DB_MAX_CONNS", strconv.Itoa(es.DBMaxConns),
			fmt.Sprintf("must be at least the worker count plus 10 (%d)", es.Workers+10))
	}
	s.engine = es

	jwtSecret, _ := lookup("JWT_SECRET")
	if strings.TrimSpace(jwtSecret) == "" {
		return s, &settingError{msg: "JWT_SECRET is required: the HS256 key that signs user tokens"}
	}
	s.jwtSecret = []byte(jwtSecret)

	key, _ := lookup("OWLMETRY_SECRET_KEY")
	key = strings.TrimSpace(key)
	if key == "" {
		return s, &settingError{msg: "OWLMETRY_SECRET_KEY is required: 32 random bytes as 64 hex characters or base64"}
	}
	if s.secretKey = parseSecretKey(key); s.secretKey == nil {
		// The value is a secret: never echo it.
		return s, &settingError{msg: "invalid OWLMETRY_SECRET_KEY: must be 32 bytes as 64 hex characters or base64"}
	}

	if v, ok := lookup("OWLMETRY_METRICS_TOKEN"); ok {
		s.metricsToken = strings.TrimSpace(v)
	}
	s.sseMaxStreams = apiserver.DefaultSSEMaxStreams
	if v, ok := lookup("OWLMETRY_SSE_MAX_STREAMS"); ok && strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return s, invalid("OWLMETRY_SSE_MAX_STREAMS", v, "an integer ≥ 1")
		}
		s.sseMaxStreams = n
	}

	if s.notify, err = notify.LoadConfig(lookup); err != nil {
		return s, &settingError{msg: err.Error()}
	}
	if s.jobs, err = jobs.LoadConfig(lookup); err != nil {
		return s, &settingError{msg: err.Error()}
	}

	url, err := cmdutil.ResolveDatabaseURL(opts.Database.URL, lookup)
	if err != nil {
		return s, &settingError{msg: "a database is required: pass --database-url or set OWLMETRY_DATABASE_URL or DATABASE_URL"}
	}
	s.databaseURL = url
	return s, nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}

// parseSecretKey reads the credentials key (engine.md §17): 64 hex characters or
// standard base64, 32 bytes either way. It returns nil for anything else.
func parseSecretKey(v string) []byte {
	if len(v) == 64 {
		if b, err := hex.DecodeString(v); err == nil {
			return b
		}
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) == 32 {
		return b
	}
	return nil
}

// newLogger builds the process logger on stderr: text on a terminal, JSON otherwise,
// unless the format says which.
func newLogger(w io.Writer, format string, level slog.Level, tty bool) *slog.Logger {
	o := &slog.HandlerOptions{Level: level}
	if format == "text" || (format == "auto" && tty) {
		return slog.New(slog.NewTextHandler(w, o))
	}
	return slog.New(slog.NewJSONHandler(w, o))
}

// shutdownDrain is how long open requests get to finish after the first signal.
const shutdownDrain = 10 * time.Second

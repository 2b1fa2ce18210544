package cmdutil

import (
	"os"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// GlobalFlags are the root's persistent flags (cli.md §3). The root command binds them;
// everything else reads them through the Factory.
type GlobalFlags struct {
	Format         string
	Endpoint       string
	APIKey         string
	Team           string
	Config         string
	IngestEndpoint string
	NoColor        bool
	RequestTimeout time.Duration
	Debug          bool
}

// Factory is how a command reaches anything outside itself (style §4). Its getters are
// lazy: `version`, `--help` and completion never resolve credentials, read the config
// file or open a connection.
type Factory struct {
	IOStreams *iostreams.IOStreams
	// LookupEnvFunc is the injected environment.
	LookupEnvFunc func(string) (string, bool)
	// NowFunc is the clock.
	NowFunc func() time.Time
	// Signals delivers the signals after the first, which cancelled the command's context.
	Signals <-chan os.Signal
	// Flags are the parsed global flags.
	Flags *GlobalFlags
	// GlobalFlagSet is the root's persistent flag set, so settings can tell a flag the
	// user typed from its default. Nil in tests of a single command.
	GlobalFlagSet *pflag.FlagSet

	settingsOnce sync.Once
	settings     *Settings

	clientOnce sync.Once
	client     *client.Client
	clientErr  error

	formatOnce sync.Once
	format     Format
	formatErr  error
}

// NewFactory builds the Factory for one invocation.
func NewFactory(ios *iostreams.IOStreams, lookupEnv func(string) (string, bool), now func() time.Time, signals <-chan os.Signal) *Factory {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	if now == nil {
		now = time.Now
	}
	return &Factory{IOStreams: ios, LookupEnvFunc: lookupEnv, NowFunc: now, Signals: signals, Flags: &GlobalFlags{RequestTimeout: 30 * time.Second}}
}

// Getenv returns an environment value, "" when unset.
func (f *Factory) Getenv(key string) string {
	v, _ := f.LookupEnvFunc(key)
	return v
}

// Format resolves --format, OWLMETRY_FORMAT, then table.
func (f *Factory) Format() (Format, error) {
	f.formatOnce.Do(func() {
		v := f.Flags.Format
		if v == "" {
			v = f.Getenv("OWLMETRY_FORMAT")
		}
		f.format, f.formatErr = ParseFormat(v)
		if f.formatErr == nil {
			f.IOStreams.SetJSONOutput(f.format == FormatJSON)
		}
	})
	return f.format, f.formatErr
}

// Printer returns the printer for the resolved format. Call it inside RunE, after flags
// are parsed; an invalid format is a usage error.
func (f *Factory) Printer() (*Printer, error) {
	format, err := f.Format()
	if err != nil {
		return nil, err
	}
	return &Printer{IO: f.IOStreams, Format: format, Now: f.NowFunc}, nil
}

// NewTestFactory builds a Factory for tests of one command: the given streams, env as
// the whole environment (nil for none), and the real clock.
func NewTestFactory(ios *iostreams.IOStreams, env map[string]string) *Factory {
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ios.SetEnv(lookup)
	return NewFactory(ios, lookup, nil, nil)
}

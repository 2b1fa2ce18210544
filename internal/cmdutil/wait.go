package cmdutil

import (
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// ProgressMode is --progress (cli.md §6.4).
type ProgressMode string

// The progress modes.
const (
	ProgressAuto  ProgressMode = "auto"
	ProgressBar   ProgressMode = "bar"
	ProgressLines ProgressMode = "lines"
	ProgressNone  ProgressMode = "none"
)

// ProgressModes lists the values of --progress, for help and completion.
var ProgressModes = []string{string(ProgressAuto), string(ProgressBar), string(ProgressLines), string(ProgressNone)}

// WaitMode says whether a command waits only with --wait or always.
type WaitMode int

// The wait modes.
const (
	// WaitOptional adds --wait; the other wait flags require it.
	WaitOptional WaitMode = iota
	// WaitAlways is for `jobs wait`, which always waits and has no --wait flag.
	WaitAlways
)

// WaitOptions are the flags of every command that can follow runs to their end
// (cli.md §6.1).
type WaitOptions struct {
	// Enabled is --wait. Commands that always wait have it set.
	Enabled bool
	// Timeout stops waiting after this long. Defaults to 0, which waits without limit.
	Timeout time.Duration
	// PollInterval is used only when the server has no event stream. Defaults to 2s.
	PollInterval time.Duration
	// Progress is --progress: auto, bar, lines or none. Defaults to auto.
	Progress ProgressMode
	// CancelOnInterrupt cancels the runs on the first signal instead of leaving them be.
	CancelOnInterrupt bool

	progress string
	mode     WaitMode
}

// BuildFlags adds the wait flags to fs.
func (o *WaitOptions) BuildFlags(fs *pflag.FlagSet, mode WaitMode) {
	o.mode = mode
	if mode == WaitOptional {
		fs.BoolVar(&o.Enabled, "wait", false, "follow the run until it ends; the exit code tells how it ended")
	} else {
		o.Enabled = true
	}
	fs.DurationVar(&o.Timeout, "timeout", 0, "stop waiting after this long (exit 8); 0 waits without limit")
	fs.DurationVar(&o.PollInterval, "poll-interval", 2*time.Second, "time between polls when the server has no event stream")
	fs.StringVar(&o.progress, "progress", string(ProgressAuto), "progress display: auto, bar, lines or none")
	fs.BoolVar(&o.CancelOnInterrupt, "cancel-on-interrupt", false, "cancel the runs on Ctrl-C instead of leaving them running")
}

// RegisterCompletions offers the values of --progress.
func (o *WaitOptions) RegisterCompletions(cmd *cobra.Command) {
	_ = cmd.RegisterFlagCompletionFunc("progress", cobra.FixedCompletions(ProgressModes, cobra.ShellCompDirectiveNoFileComp))
}

// Validate applies the rules of cli.md §6.1. It needs the flag set to tell a default
// from a value the user typed.
func (o *WaitOptions) Validate(fs *pflag.FlagSet) error {
	if !o.Enabled {
		for _, name := range []string{"timeout", "poll-interval", "progress", "cancel-on-interrupt"} {
			if fs.Changed(name) {
				return FlagErrorf("--%s requires --wait", name)
			}
		}
	}
	if o.Timeout < 0 {
		return FlagErrorf("--timeout must not be negative")
	}
	if o.PollInterval < 500*time.Millisecond || o.PollInterval > 5*time.Minute {
		return FlagErrorf("--poll-interval must be between 500ms and 5m")
	}
	switch p := ProgressMode(strings.ToLower(o.progress)); p {
	case ProgressAuto, ProgressBar, ProgressLines, ProgressNone:
		o.Progress = p
	case "":
		o.Progress = ProgressAuto
	default:
		return FlagErrorf("invalid --progress %q: valid values are auto, bar, lines, none", o.progress)
	}
	return nil
}

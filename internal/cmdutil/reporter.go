package cmdutil

import (
	"context"
	"time"

	"github.com/owlmetry/owlmetry/internal/follow"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// CheckWait refuses, before any request, a progress display that cannot be shown
// (cli.md §6.4 rules 1 and 2).
func (f *Factory) CheckWait(w *WaitOptions) error {
	if !w.Enabled {
		return nil
	}
	format, err := f.Format()
	if err != nil {
		return err
	}
	_, err = chooseDisplay(f.IOStreams, format, w.Progress)
	return err
}

// chooseDisplay applies the rules of cli.md §6.4, first match wins.
func chooseDisplay(ios *iostreams.IOStreams, format Format, mode ProgressMode) (ProgressMode, error) {
	terminal := ios.IsStderrTTY() && !ios.IsDumbTerminal()
	switch {
	case format == FormatJSON && (mode == ProgressBar || mode == ProgressLines):
		return "", FlagErrorf("--progress %s cannot be used with --format json", mode)
	case format == FormatJSON, mode == ProgressNone:
		return ProgressNone, nil
	case mode == ProgressBar && !terminal:
		return "", FlagErrorf("--progress bar needs a terminal on stderr")
	case mode == ProgressLines, mode == ProgressAuto && !terminal:
		return ProgressLines, nil
	default:
		return ProgressBar, nil
	}
}

// NewReporter picks how a wait shows progress (cli.md §6.4). It is the only place that
// decides.
func NewReporter(ctx context.Context, ios *iostreams.IOStreams, format Format, mode ProgressMode, now func() time.Time) (follow.Reporter, error) {
	display, err := chooseDisplay(ios, format, mode)
	switch {
	case err != nil:
		return nil, err
	case display == ProgressNone:
		return tui.Quiet(), nil
	case display == ProgressLines:
		return tui.NewLines(ios.ErrOut, now), nil
	default:
		// The bar outlives the first signal: with --cancel-on-interrupt it keeps
		// drawing while the runs stop. follow stops it.
		return tui.NewBar(context.WithoutCancel(ctx), ios, now), nil
	}
}

package cmdutil

import (
	"context"
	"time"

	"github.com/owlmetry/owlmetry/internal/follow"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// NewReporter picks how a wait shows progress (cli.md §6.4). It is the only place that
// decides.
func NewReporter(ctx context.Context, ios *iostreams.IOStreams, format Format, mode ProgressMode, now func() time.Time) (follow.Reporter, error) {
	terminal := ios.IsStderrTTY() && !ios.IsDumbTerminal()
	switch {
	case format == FormatJSON && (mode == ProgressBar || mode == ProgressLines):
		return nil, FlagErrorf("--progress %s cannot be used with --format json", mode)
	case format == FormatJSON, mode == ProgressNone:
		return tui.Quiet(), nil
	case mode == ProgressBar && !terminal:
		return nil, FlagErrorf("--progress bar needs a terminal on stderr")
	case mode == ProgressLines, mode == ProgressAuto && !terminal:
		return tui.NewLines(ios.ErrOut, now), nil
	default:
		// The bar outlives the first signal: with --cancel-on-interrupt it keeps
		// drawing while the runs stop. follow stops it.
		return tui.NewBar(context.WithoutCancel(ctx), ios, now), nil
	}
}

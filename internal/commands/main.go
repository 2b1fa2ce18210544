// Package commands builds the owlmetry command tree and runs it. Main gathers the real
// world — arguments, streams, environment, clock, signals — and Run executes one command
// line against whatever it is given, so tests run the whole CLI in process.
package commands

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// Options is everything Run takes from the outside world. Tests build their own.
type Options struct {
	Args          []string
	IO            *iostreams.IOStreams
	LookupEnvFunc func(string) (string, bool)
	NowFunc       func() time.Time
	Signals       <-chan os.Signal
	// JobHandlers builds the job handlers `system jobs run` enqueues and executes; nil
	// means the handlers compiled into this binary. Tests hand in their own.
	JobHandlers localjobs.HandlersFunc
}

// Main runs owlmetry with the process's arguments, streams, environment and signals.
func Main() cmdutil.ExitCode {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	return Run(context.Background(), Options{
		Args:          os.Args[1:],
		IO:            iostreams.System(os.LookupEnv),
		LookupEnvFunc: os.LookupEnv,
		NowFunc:       time.Now,
		Signals:       sigs,
	})
}

// Run executes one command line and reports how it ended.
func Run(ctx context.Context, opts Options) cmdutil.ExitCode {
	ctx, later, cancel := cmdutil.InterruptContext(ctx, opts.Signals)
	defer cancel(nil)
	if opts.IO == nil {
		opts.IO, _, _, _ = iostreams.Test()
	}
	if opts.LookupEnvFunc != nil {
		opts.IO.SetEnv(opts.LookupEnvFunc)
	}
	f := cmdutil.NewFactory(opts.IO, opts.LookupEnvFunc, opts.NowFunc, later)

	root := newCmdRoot(f, opts)
	root.SetArgs(opts.Args)
	root.SetIn(opts.IO.In)
	root.SetOut(opts.IO.Out)
	root.SetErr(opts.IO.ErrOut)

	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && ctx.Err() != nil && !errors.As(err, new(*cmdutil.OutcomeError)) {
		if cause := context.Cause(ctx); errors.Is(cause, cmdutil.ErrInterrupted) {
			err = cause // report "interrupted", not whatever the cancel broke
		}
	}
	return report(f, cmd, err)
}

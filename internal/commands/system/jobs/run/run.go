// Package run implements `owlmetry system jobs run`.
package run

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// RunOptions holds what `owlmetry system jobs run` needs.
type RunOptions struct {
	IO      *iostreams.IOStreams
	Printer func() (*cmdutil.Printer, error)
	Store   shared.StoreFunc
	Follow  shared.FollowFunc
	// FollowLocal follows a run this process executes (cli.md §10.4 signals).
	FollowLocal func(ctx context.Context, st *localjobs.Store, id string, w cmdutil.WaitOptions) (cmdutil.FollowResult, error)
	Database    cmdutil.DatabaseOptions
	NowFunc     func() time.Time
	// Signals delivers the signals after the first; with --local the second one fails
	// the run at once.
	Signals <-chan os.Signal

	Request localjobs.StartRequest
	// Local is --local: execute the run in this process.
	Local    bool
	Attach   bool
	Wait     cmdutil.WaitOptions
	rawParam []string
}

// NewCmdRun builds `owlmetry system jobs run`. deps.Handlers are the handlers the run may
// use (nil: this build's). Tests pass runFunc to inspect the parsed options without
// connecting.
func NewCmdRun(f *cmdutil.Factory, deps shared.Deps, runFunc func(context.Context, *RunOptions) error) *cobra.Command {
	opts := &RunOptions{IO: f.IOStreams, Printer: f.Printer, Follow: shared.Follower(f), NowFunc: f.NowFunc, Signals: f.Signals,
		FollowLocal: func(ctx context.Context, st *localjobs.Store, id string, w cmdutil.WaitOptions) (cmdutil.FollowResult, error) {
			return shared.FollowLocal(ctx, f, st, id, w)
		}}
	opts.Store = shared.Opener(f, &opts.Database, shared.HandlersOr(deps.Handlers))
	cmd := &cobra.Command{
		Use:   "run <job-type>",
		Short: "Start any job type, queued for a server or right here with --local",
		Long: `Start a run of any registered job type through the engine's single enqueue path,
with the same overlap rule as the API and the scheduler: when a run with the same
key is pending or running the command exits 5 and names it, or adopts it with
--attach. Without --project-id the run is a system run (a fan-out for the types
that have one); with it, a run of the project's team. --param values are checked
against the type's declared params before anything is written.

By default the run is queued for a running owlmetry server; --wait follows it.
With --local this process executes it instead, with the engine's full lifecycle —
lease and heartbeats, progress, cancellation from any process, notifications
queued for a server to send — and always waits. The first Ctrl-C asks the run to
stop at its next checkpoint; a second one marks it failed ("interrupted by
operator") and exits at once. Local runs read the job settings from the same
environment variables as owlmetry server.

` + cmdutil.DatabaseHelp,
		Example: `  # Queue the partition job for the servers and follow it
  owlmetry system jobs run partition_creation --wait

  # Run it here, now, with a live progress bar
  owlmetry system jobs run partition_creation --local

  # Backfill one project's RevenueCat users from a given customer on
  owlmetry system jobs run revenuecat_user_backfill --project-id 1a2b3c4d-0000-4000-8000-000000000001 --param starting_after=user_812 --local

  # In a script: start or join the running prune, wait, keep the final run
  owlmetry system jobs run db_pruning --param max_size_bytes=53687091200 --attach --wait --format json > run.json`,
		Args:              cmdutil.ExactArgs(1, "a job type"),
		ValidArgsFunction: runs.CompleteJobTypes(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.parse(cmd, args[0]); err != nil {
				return err
			}
			if err := f.CheckWait(&opts.Wait); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return runRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Request.ProjectID, "project-id", "", "run for this project (its team's run); default: a system run")
	fl.StringArrayVar(&opts.rawParam, "param", nil, "a param as key=value (repeatable)")
	fl.BoolVar(&opts.Local, "local", false, "execute the run in this process instead of a server; always waits")
	fl.BoolVar(&opts.Attach, "attach", false, "when the same job is already pending or running, adopt that run")
	shared.AddWaitFlags(cmd, &opts.Wait)
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

func (o *RunOptions) parse(cmd *cobra.Command, typeArg string) error {
	fl := cmd.Flags()
	name, err := shared.ParseJobType(typeArg)
	if err != nil {
		return err
	}
	o.Request.JobType = name
	if fl.Changed("project-id") {
		if o.Request.ProjectID, err = cmdutil.ParseUUID("--project-id", o.Request.ProjectID); err != nil {
			return err
		}
	}
	if o.Request.Params, err = shared.ParseParams(o.rawParam); err != nil {
		return err
	}
	if err := localjobs.CheckParams(o.Request); err != nil {
		return cmdutil.FlagErrorWrap(err)
	}
	if o.Local {
		for _, name := range []string{"timeout", "cancel-on-interrupt"} {
			if fl.Changed(name) {
				return cmdutil.FlagErrorf("--%s cannot be used with --local", name)
			}
		}
		o.Wait.Enabled = true // a local run is always followed
	}
	if err := o.Wait.Validate(fl); err != nil {
		return err
	}
	return o.Database.Validate()
}

func runRun(ctx context.Context, opts *RunOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	st, err := opts.Store(ctx, true)
	if err != nil {
		return err
	}
	defer st.Close()
	has, err := st.HasHandler(opts.Request.JobType)
	if err != nil {
		return err
	}
	if !has {
		return cmdutil.FlagErrorf("%s has no handler in this build", opts.Request.JobType)
	}
	if opts.Local {
		return runLocal(ctx, opts, p, st)
	}

	run, err := st.Enqueue(ctx, opts.Request)
	attached := false
	if err != nil {
		if run, err = adopt(ctx, opts, p, st, err); err != nil {
			return err
		}
		attached = true
	}
	if !attached {
		if live, err := st.LiveWorkers(ctx); err == nil && !live {
			cmdutil.Warnf(opts.IO, "no running owlmetry server found; the run starts when one does (or use --local)")
		}
	}
	if !opts.Wait.Enabled {
		if err := p.Print(run, shared.Started(run)); err != nil {
			return err
		}
		cmdutil.Hintf(opts.IO, p.Format, "%s", shared.ViewHint(run.ID))
		return nil
	}
	return followRun(ctx, opts, p, st, run.ID)
}

// adopt handles an enqueue error: with --attach, a conflict makes the existing run the
// command's run (cli.md §6.13); anything else is returned, validation errors as usage
// errors.
func adopt(ctx context.Context, opts *RunOptions, p *cmdutil.Printer, st *localjobs.Store, err error) (localjobs.Run, error) {
	var conflict *apitype.ConflictError
	if !errors.As(err, &conflict) {
		return localjobs.Run{}, shared.UsageError(err)
	}
	if !opts.Attach || conflict.ExistingRunID == "" {
		return localjobs.Run{}, err
	}
	d, gerr := st.GetRun(ctx, conflict.ExistingRunID)
	if gerr != nil {
		if localjobs.IsNotFound(gerr) {
			return localjobs.Run{}, errors.New("the existing run " + conflict.ExistingRunID + " is gone")
		}
		return localjobs.Run{}, gerr
	}
	cmdutil.Notef(opts.IO, p.Format, "%s", shared.AttachedNote(d.Run, opts.NowFunc()))
	return d.Run, nil
}

func followRun(ctx context.Context, opts *RunOptions, p *cmdutil.Printer, st *localjobs.Store, id string) error {
	fr, err := opts.Follow(ctx, st, []string{id}, opts.Wait)
	if err != nil {
		return err
	}
	if err := p.Print(fr.Runs[0], shared.RunViews(shared.FinalDetails(ctx, st, fr)...)); err != nil {
		return err
	}
	return shared.WaitErr(fr)
}

type localResult struct {
	run localjobs.Run
	err error
}

// runLocal executes the run in this process and follows it (cli.md §10.4). The first
// signal has already cancelled ctx, which makes the engine request a cooperative stop;
// a second one, on opts.Signals, fails the run at once.
func runLocal(ctx context.Context, opts *RunOptions, p *cmdutil.Printer, st *localjobs.Store) error {
	interrupt := make(chan struct{})
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-opts.Signals:
			close(interrupt)
		case <-finished:
		}
	}()

	started := make(chan localjobs.Run, 1)
	result := make(chan localResult, 1)
	go func() {
		run, err := st.RunLocal(ctx, opts.Request, localjobs.LocalOptions{
			Interrupt: interrupt,
			Started:   func(r localjobs.Run) { started <- r },
		})
		result <- localResult{run, err}
	}()

	var run localjobs.Run
	select {
	case run = <-started:
	case res := <-result:
		// It ended before it started: a conflict, a missing secret key, the database.
		if res.err == nil {
			return errors.New("local run ended before it started")
		}
		existing, err := adopt(ctx, opts, p, st, res.err)
		if err != nil {
			return err
		}
		// The existing run belongs to another process: follow it like any run.
		return followRun(ctx, opts, p, st, existing.ID)
	}

	fr, err := opts.FollowLocal(ctx, st, run.ID, opts.Wait)
	if err != nil {
		return err
	}
	if res := <-result; res.err != nil {
		return res.err
	}
	if err := p.Print(fr.Runs[0], shared.RunViews(shared.FinalDetails(ctx, st, fr)...)); err != nil {
		return err
	}
	return shared.WaitErr(fr)
}

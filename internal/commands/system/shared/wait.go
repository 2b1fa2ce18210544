package shared

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/follow"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// DefaultPollInterval is how often DB waits read the run (cli.md §6.1).
const DefaultPollInterval = time.Second

// AddWaitFlags adds the wait flags with the DB commands' poll interval of 1s.
func AddWaitFlags(cmd *cobra.Command, w *cmdutil.WaitOptions) {
	w.BuildFlags(cmd.Flags(), cmdutil.WaitOptional)
	w.RegisterCompletions(cmd)
	fl := cmd.Flags().Lookup("poll-interval")
	_ = fl.Value.Set(DefaultPollInterval.String())
	fl.DefValue = DefaultPollInterval.String()
	fl.Usage = "time between reads of the run"
}

// FollowFunc follows runs of one store to their end.
type FollowFunc func(ctx context.Context, st *localjobs.Store, ids []string, w cmdutil.WaitOptions, opts ...follow.Option) (cmdutil.FollowResult, error)

// Follower returns the FollowFunc of a command: the database source, the progress
// display of cli.md §6.4, the timeout and interrupt rules of the wait flags, and in table
// format the outcome lines of §6.8 on stderr.
func Follower(f *cmdutil.Factory) FollowFunc {
	return func(ctx context.Context, st *localjobs.Store, ids []string, w cmdutil.WaitOptions, opts ...follow.Option) (cmdutil.FollowResult, error) {
		format, err := f.Format()
		if err != nil {
			return cmdutil.FollowResult{}, err
		}
		rep, err := cmdutil.NewReporter(ctx, f.IOStreams, format, w.Progress, f.NowFunc)
		if err != nil {
			return cmdutil.FollowResult{}, err
		}
		o := follow.Options{Timeout: w.Timeout, CancelOnInterrupt: w.CancelOnInterrupt, Signals: f.Signals, NowFunc: f.NowFunc}
		for _, opt := range opts {
			opt(&o)
		}
		res, err := follow.Follow(ctx, ids, st.RunSource(w.PollInterval), rep, o)
		if err != nil {
			return cmdutil.FollowResult{}, err
		}
		fr := cmdutil.FollowResult{Result: res, Format: format}
		if format == cmdutil.FormatTable {
			fr.PrintOutcomes(f.IOStreams)
		}
		return fr, nil
	}
}

// WaitErr is the error a wait on DB runs ends with: fr.Err(), with the re-attach hint
// naming `system jobs view --wait`, since system runs are invisible to `jobs wait`.
func WaitErr(fr cmdutil.FollowResult) error {
	err := fr.Err()
	var oe *cmdutil.OutcomeError
	if errors.As(err, &oe) && oe.Hint != "" {
		if open := fr.Unfinished(); len(open) > 0 {
			oe.Hint = "re-attach: owlmetry system jobs view " + open[0] + " --wait"
		}
	}
	return err
}

// FinalDetails turns the last snapshots of a wait into views for its final output: the
// snapshot itself, plus the lease and River state read once more.
func FinalDetails(ctx context.Context, st *localjobs.Store, fr cmdutil.FollowResult) []localjobs.Detail {
	out := make([]localjobs.Detail, 0, len(fr.Runs))
	for _, j := range fr.Runs {
		r, _ := localjobs.RunOf(j)
		d := localjobs.Detail{Run: r}
		if now, err := st.GetRun(context.WithoutCancel(ctx), j.ID); err == nil {
			d.RiverState = now.RiverState
			d.LeaseExpired = now.LeaseExpired && now.Status == r.Status
		}
		out = append(out, d)
	}
	return out
}

// guarded is a reporter for notes that arrive from another goroutine: a note before
// the display has started waits for it, and a note after it has stopped is dropped, so
// notes never land above "waiting for …" or under the final output.
type guarded struct {
	follow.Reporter
	mu      sync.Mutex
	started bool
	stopped bool
	pending []string
}

func (g *guarded) Start(runs []apitype.JobRun) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.Reporter.Start(runs)
	g.started = true
	for _, line := range g.pending {
		g.Reporter.Note(line)
	}
	g.pending = nil
}

func (g *guarded) Note(line string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.stopped:
	case !g.started:
		g.pending = append(g.pending, line)
	default:
		g.Reporter.Note(line)
	}
}

func (g *guarded) Stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.Reporter.Stop()
}

// FollowLocal follows a run this process executes (cli.md §10.4). The first signal
// cancels ctx, which asks the run to stop cooperatively; it does not end the wait: the
// display notes `stopping run <id>…` and goes on until the handler has returned and the
// run has ended. The result then counts as interrupted (exit 130) with the cancellation
// requested.
func FollowLocal(ctx context.Context, f *cmdutil.Factory, st *localjobs.Store, id string, w cmdutil.WaitOptions) (cmdutil.FollowResult, error) {
	format, err := f.Format()
	if err != nil {
		return cmdutil.FollowResult{}, err
	}
	inner, err := cmdutil.NewReporter(ctx, f.IOStreams, format, w.Progress, f.NowFunc)
	if err != nil {
		return cmdutil.FollowResult{}, err
	}
	rep := &guarded{Reporter: inner}
	done := make(chan struct{})
	noted := make(chan struct{})
	go func() {
		defer close(noted)
		select {
		case <-ctx.Done():
			rep.Note("stopping run " + ShortID(id) + "…")
		case <-done:
		}
	}()
	res, err := follow.Follow(context.WithoutCancel(ctx), []string{id}, st.RunSource(w.PollInterval), rep, follow.Options{NowFunc: f.NowFunc})
	close(done)
	<-noted
	if err != nil {
		return cmdutil.FollowResult{}, err
	}
	if ctx.Err() != nil {
		res.Interrupted, res.CancelRequested = true, true
	}
	fr := cmdutil.FollowResult{Result: res, Format: format}
	if format == cmdutil.FormatTable {
		fr.PrintOutcomes(f.IOStreams)
	}
	return fr, nil
}

// Package trigger implements `owlmetry jobs trigger`.
package trigger

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// TriggerOptions holds what `owlmetry jobs trigger` needs.
type TriggerOptions struct {
	IO        *iostreams.IOStreams
	APIClient func() (*client.Client, error)
	Settings  func() *cmdutil.Settings
	Printer   func() (*cmdutil.Printer, error)
	Follow    cmdutil.FollowFunc
	NowFunc   func() time.Time

	JobType string
	// Known is true when the type is in this binary's registry.
	Known  bool
	TeamID string
	// Project is --project-id as given ("" when not); the default applies only to
	// known project-scoped types.
	Project cmdutil.ProjectFlag
	Params  map[string]string
	Notify  bool
	Attach  bool
	Wait    cmdutil.WaitOptions

	rawParams []string
}

var paramKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// NewCmdTrigger builds `owlmetry jobs trigger`. Tests pass runFunc to inspect the
// parsed options without sending anything.
func NewCmdTrigger(f *cmdutil.Factory, runFunc func(context.Context, *TriggerOptions) error) *cobra.Command {
	opts := &TriggerOptions{IO: f.IOStreams, APIClient: f.APIClient, Settings: f.Settings, Printer: f.Printer, Follow: f.FollowAPI, NowFunc: f.NowFunc}
	cmd := &cobra.Command{
		Use:   "trigger <job-type>",
		Short: "Start a project job run through the API",
		Long: `Start a run of a project-scoped job type. The project is --project-id, else
OWLMETRY_PROJECT_ID, else the profile's default_project; the team is --team-id,
else OWLMETRY_TEAM_ID, else the profile's team, else the key's team. System jobs
are started by the server's schedule or by owlmetry system jobs run.

When a run with the same key is already pending or running the command exits 5
and names it; --attach adopts that run instead. With --wait the command follows
the run to its end and its exit code says how it ended.`,
		Example: `  # Start an Apple Ads sync for the default project
  owlmetry jobs trigger apple_ads_sync

  # Backfill RevenueCat users from a given subscriber on, and wait
  owlmetry jobs trigger revenuecat_user_backfill --project-id 1a2b3c4d-0000-4000-8000-000000000001 --param starting_after=user_812 --wait

  # In CI: start or join the running sync, wait, keep the final run
  owlmetry jobs trigger apple_ads_sync --attach --wait --timeout 30m --format json > run.json`,
		Args:              cmdutil.ExactArgs(1, "a job type"),
		ValidArgsFunction: runs.CompleteJobTypes(true),
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
			return triggerRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.TeamID, "team-id", "", "team UUID (default: OWLMETRY_TEAM_ID, the profile, or the key's team)")
	opts.Project.BuildFlags(fl)
	fl.StringArrayVar(&opts.rawParams, "param", nil, "a param as key=value (repeatable)")
	fl.BoolVar(&opts.Notify, "notify", false, "ask the server to notify you when the run ends")
	fl.BoolVar(&opts.Attach, "attach", false, "when the same job is already pending or running, adopt that run")
	opts.Wait.BuildFlags(fl, cmdutil.WaitOptional)
	opts.Wait.RegisterCompletions(cmd)
	return cmd
}

func (o *TriggerOptions) parse(cmd *cobra.Command, typeArg string) error {
	name, err := runs.ParseJobTypeName("job type", typeArg)
	if err != nil {
		return err
	}
	o.JobType = name
	t, known := jobtype.Lookup(name)
	o.Known = known
	if known && !t.APITriggerable() {
		return cmdutil.WithHint(cmdutil.FlagErrorf("%s is a system job and cannot be triggered through the API", name), startHint(t))
	}
	fl := cmd.Flags()
	if fl.Changed("team-id") {
		if o.TeamID, err = cmdutil.ParseUUID("--team-id", o.TeamID); err != nil {
			return err
		}
	}
	if err := o.Project.Validate(fl); err != nil {
		return err
	}
	o.Params = nil
	for _, raw := range o.rawParams {
		k, v, ok := strings.Cut(raw, "=")
		if !ok {
			return cmdutil.FlagErrorf("invalid --param %q: use key=value", raw)
		}
		if !paramKey.MatchString(k) {
			return cmdutil.FlagErrorf("invalid --param key %q: lower-case letters, digits and underscores", k)
		}
		if k == "project_id" {
			return cmdutil.FlagErrorf("--param project_id is not allowed: use --project-id")
		}
		if _, dup := o.Params[k]; dup {
			return cmdutil.FlagErrorf("--param %s given twice", k)
		}
		if o.Params == nil {
			o.Params = map[string]string{}
		}
		o.Params[k] = v
	}
	return o.Wait.Validate(fl)
}

// startHint names the command that starts a system job (cli.md Appendix A).
func startHint(t jobtype.Type) string {
	for _, c := range t.StartWith {
		if c != "system jobs run" {
			return "start it with: owlmetry " + c
		}
	}
	return "start it with: owlmetry system jobs run " + t.Name
}

func triggerRun(ctx context.Context, opts *TriggerOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	req := apitype.TriggerRequest{JobType: opts.JobType, Params: opts.Params, Notify: opts.Notify}
	switch {
	case opts.Known:
		if req.ProjectID, err = opts.Settings().ProjectID(opts.Project.Value); err != nil {
			return err
		}
	default:
		req.ProjectID = opts.Project.Value // unknown types: only what was typed
	}
	team, err := opts.Settings().TeamID(ctx, opts.TeamID)
	if err != nil {
		return err
	}
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	run, err := c.JobRunTrigger(ctx, client.JobRunTriggerParams{TeamID: team.Value, TriggerRequest: req})
	var conflict *apitype.ConflictError
	switch {
	case err == nil:
	case errors.As(err, &conflict) && opts.Attach && conflict.ExistingRunID != "":
		if run, err = runs.Attach(ctx, c, opts.IO, p.Format, opts.NowFunc(), conflict.ExistingRunID); err != nil {
			return err
		}
	case client.StatusOf(err) == 404 && req.ProjectID != "":
		return cmdutil.WithHint(err, "check the project id: "+req.ProjectID)
	default:
		return err
	}

	if !opts.Wait.Enabled {
		if err := p.Print(run, runs.Started(run)); err != nil {
			return err
		}
		cmdutil.Hintf(opts.IO, p.Format, "%s", runs.FollowHint(run.ID))
		return nil
	}
	fr, err := opts.Follow(ctx, []string{run.ID}, opts.Wait)
	if err != nil {
		return err
	}
	if err := p.Print(fr.Runs[0], runs.RunDetails(fr.Runs...)); err != nil {
		return err
	}
	return fr.Err()
}

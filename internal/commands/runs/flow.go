package runs

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/tui"
)

var jobTypePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ParseJobTypeName checks the shape of a job type; unknown types are allowed (the server
// decides), malformed ones are a usage error.
func ParseJobTypeName(flag, value string) (string, error) {
	if !jobTypePattern.MatchString(value) {
		return "", cmdutil.FlagErrorf("invalid %s %q: a job type is lower-case letters, digits and underscores", flag, value)
	}
	return value, nil
}

// Attach reads the run a conflict named and notes that the command adopted it
// (cli.md §6.13).
func Attach(ctx context.Context, c *client.Client, ios *iostreams.IOStreams, format cmdutil.Format, now time.Time, runID string) (apitype.JobRun, error) {
	run, err := c.JobRunGet(ctx, runID)
	if err != nil {
		if client.IsNotFound(err) {
			return apitype.JobRun{}, cmdutil.Reword(err, "the existing run "+runID+" is gone")
		}
		return apitype.JobRun{}, err
	}
	cmdutil.Notef(ios, format, "%s", AttachedNote(run, now))
	return run, nil
}

// CompleteJobTypes offers job types with their labels; apiOnly keeps those the API can
// trigger.
func CompleteJobTypes(apiOnly bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, t := range jobtype.All() {
			if apiOnly && !t.APITriggerable() {
				continue
			}
			out = append(out, cobra.CompletionWithDesc(t.Name, t.Label))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// CompleteStatuses offers the five statuses.
func CompleteStatuses(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return cmdutil.Statuses(), cobra.ShellCompDirectiveNoFileComp
}

// CompleteRunIDs offers the 50 newest runs of the resolved team, described as
// `<job_type> <status> <relative time>`; activeOnly keeps pending and running runs
// (cli.md §12.2). It never prompts, prints nothing and gives up after 2 s.
func CompleteRunIDs(f *cmdutil.Factory, activeOnly bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		// Warnings would land in the shell's completion output.
		f.IOStreams.ErrOut = discard{}
		team, err := f.Settings().TeamID(ctx, "")
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := f.APIClient()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		list, err := c.JobRunList(ctx, client.JobRunListParams{TeamID: team.Value, Limit: 50})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		now := f.NowFunc()
		var out []cobra.Completion
		for _, r := range list.JobRuns {
			if activeOnly && !r.Status.Active() {
				continue
			}
			if !strings.HasPrefix(r.ID, strings.ToLower(toComplete)) {
				continue
			}
			out = append(out, cobra.CompletionWithDesc(r.ID, r.JobType+" "+string(r.Status)+" "+tui.RelativeTime(r.CreatedAt.Time, now)))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

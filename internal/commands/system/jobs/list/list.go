// Package list implements `owlmetry system jobs list`.
package list

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
)

// ListOptions holds what `owlmetry system jobs list` needs.
type ListOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions
	NowFunc  func() time.Time

	Filter localjobs.ListFilter
	All    bool

	rawScope    string
	rawStatuses []string
	rawSince    string
	rawUntil    string
}

// NewCmdList builds `owlmetry system jobs list`. Tests pass runFunc to inspect the
// parsed options without connecting.
func NewCmdList(f *cmdutil.Factory, runFunc func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Printer: f.Printer, NowFunc: f.NowFunc}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List job runs straight from the database, system runs included",
		Long: `List job runs newest first. By default only system runs — the scheduler's runs and
those started by owlmetry system jobs run without a project — which the API never
shows; --scope team lists team runs, --scope all both. --team-id and --project-id
filter team runs and make the scope all unless --scope says otherwise. --stale
keeps the running runs whose lease has expired, the ones the reaper (or
owlmetry system jobs recover) will fail.

` + cmdutil.DatabaseHelp,
		Example: `  # The latest system runs
  owlmetry system jobs list

  # Failed runs of any scope in the last day
  owlmetry system jobs list --scope all --status failed --since 24h

  # Every stale run, for a script
  owlmetry system jobs list --stale --all --format json | jq -r '.job_runs[].id'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.parse(cmd); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.rawScope, "scope", string(localjobs.ScopeSystem), "system, team or all runs")
	fl.StringArrayVar(&opts.Filter.Types, "type", nil, "only this job type (repeatable)")
	fl.StringArrayVar(&opts.rawStatuses, "status", nil, "only this status (repeatable)")
	fl.StringVar(&opts.Filter.TeamID, "team-id", "", "only runs of this team")
	fl.StringVar(&opts.Filter.ProjectID, "project-id", "", "only runs of this project")
	fl.StringVar(&opts.rawSince, "since", "", "created at or after: 30m, 7d, an RFC 3339 time or YYYY-MM-DD")
	fl.StringVar(&opts.rawUntil, "until", "", "created before: 30m, 7d, an RFC 3339 time or YYYY-MM-DD")
	fl.BoolVar(&opts.Filter.Stale, "stale", false, "only running runs whose lease has expired")
	fl.IntVar(&opts.Filter.Limit, "limit", 20, "runs per page, 1-1000")
	fl.StringVar(&opts.Filter.Cursor, "cursor", "", "continue after a previous page")
	fl.BoolVar(&opts.All, "all", false, "follow the cursor to the last page; --limit is the page size")
	_ = cmd.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions([]string{"system", "team", "all"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("type", runs.CompleteJobTypes(false))
	_ = cmd.RegisterFlagCompletionFunc("status", runs.CompleteStatuses)
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

func (o *ListOptions) parse(cmd *cobra.Command) error {
	fl := cmd.Flags()
	scope, ok := localjobs.ParseScope(o.rawScope)
	if !ok {
		return cmdutil.FlagErrorf("invalid --scope %q: valid scopes are system, team, all", o.rawScope)
	}
	var err error
	for _, name := range []string{"team-id", "project-id"} {
		if !fl.Changed(name) {
			continue
		}
		dst := &o.Filter.TeamID
		if name == "project-id" {
			dst = &o.Filter.ProjectID
		}
		if *dst, err = cmdutil.ParseUUID("--"+name, *dst); err != nil {
			return err
		}
		switch {
		case !fl.Changed("scope"):
			scope = localjobs.ScopeAll
		case scope == localjobs.ScopeSystem:
			return cmdutil.FlagErrorf("--%s filters team runs and cannot be used with --scope system", name)
		}
	}
	o.Filter.Scope = scope
	for _, t := range o.Filter.Types {
		if _, err := runs.ParseJobTypeName("--type", t); err != nil {
			return err
		}
	}
	if o.Filter.Statuses, err = shared.ParseStatuses(o.rawStatuses); err != nil {
		return err
	}
	now := o.NowFunc()
	if fl.Changed("since") {
		t, err := shared.ParseTime("--since", o.rawSince, now)
		if err != nil {
			return err
		}
		o.Filter.Since = &t
	}
	if fl.Changed("until") {
		t, err := shared.ParseTime("--until", o.rawUntil, now)
		if err != nil {
			return err
		}
		o.Filter.Until = &t
	}
	if o.Filter.Limit < 1 || o.Filter.Limit > 1000 {
		return cmdutil.FlagErrorf("--limit must be between 1 and 1000")
	}
	if fl.Changed("cursor") {
		if o.All {
			return cmdutil.FlagErrorf("--all cannot be used with --cursor")
		}
		if o.Filter.Cursor == "" || localjobs.CheckCursor(o.Filter.Cursor) != nil {
			return cmdutil.FlagErrorf("invalid --cursor %q: pass the cursor a previous page printed", o.Filter.Cursor)
		}
	}
	return o.Database.Validate()
}

type listDoc struct {
	JobRuns []localjobs.Run `json:"job_runs"`
	Cursor  *string         `json:"cursor"`
	HasMore bool            `json:"has_more"`
}

func listRun(ctx context.Context, opts *ListOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	st, err := opts.Store(ctx, false)
	if err != nil {
		return err
	}
	defer st.Close()
	doc := listDoc{JobRuns: []localjobs.Run{}}
	filter := opts.Filter
	for {
		page, err := st.ListRuns(ctx, filter)
		if err != nil {
			return err
		}
		doc.JobRuns = append(doc.JobRuns, page.Runs...)
		doc.Cursor, doc.HasMore = page.Cursor, page.HasMore
		if !opts.All || !page.HasMore || page.Cursor == nil {
			break
		}
		filter.Cursor = *page.Cursor
	}
	if opts.All {
		doc.Cursor, doc.HasMore = nil, false
	}
	if len(doc.JobRuns) == 0 {
		cmdutil.Notef(opts.IO, p.Format, "No job runs found.")
	}
	if err := p.Print(doc, shared.RunList(doc.JobRuns)); err != nil {
		return err
	}
	if doc.HasMore && doc.Cursor != nil {
		cmdutil.Hintf(opts.IO, p.Format, "More results: %s", opts.nextPage(*doc.Cursor))
	}
	return nil
}

// nextPage repeats the command with its filters and the cursor, single-quoted for the
// shell (cli.md §4.7).
func (o *ListOptions) nextPage(cursor string) string {
	parts := []string{"owlmetry system jobs list"}
	add := func(flag, v string) { parts = append(parts, flag+" "+quote(v)) }
	if o.rawScope != string(localjobs.ScopeSystem) {
		add("--scope", o.rawScope)
	}
	for _, t := range o.Filter.Types {
		add("--type", t)
	}
	for _, s := range o.Filter.Statuses {
		add("--status", string(s))
	}
	if o.Filter.TeamID != "" {
		add("--team-id", o.Filter.TeamID)
	}
	if o.Filter.ProjectID != "" {
		add("--project-id", o.Filter.ProjectID)
	}
	if o.Filter.Since != nil {
		add("--since", o.Filter.Since.Format(time.RFC3339Nano))
	}
	if o.Filter.Until != nil {
		add("--until", o.Filter.Until.Format(time.RFC3339Nano))
	}
	if o.Filter.Stale {
		parts = append(parts, "--stale")
	}
	if o.Filter.Limit != 20 {
		add("--limit", strconv.Itoa(o.Filter.Limit))
	}
	parts = append(parts, "--cursor '"+strings.ReplaceAll(cursor, "'", `'\''`)+"'")
	return strings.Join(parts, " ")
}

func quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " '\"\\$`!*?[]{}()<>|&;#~") {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

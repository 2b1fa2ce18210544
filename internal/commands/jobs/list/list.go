// Package list implements `owlmetry jobs list`.
package list

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/commands/runs"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// ListOptions holds what `owlmetry jobs list` needs.
type ListOptions struct {
	IO        *iostreams.IOStreams
	APIClient func() (*client.Client, error)
	Settings  func() *cmdutil.Settings
	Printer   func() (*cmdutil.Printer, error)

	TeamID    string
	JobType   string
	Status    string
	ProjectID string
	Since     string
	Until     string
	Limit     int
	Cursor    string
	All       bool
}

// NewCmdList builds `owlmetry jobs list`. Tests pass runFunc to inspect the parsed
// options without sending anything.
func NewCmdList(f *cmdutil.Factory, runFunc func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, APIClient: f.APIClient, Settings: f.Settings, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the team's job runs, newest first",
		Long: `List the job runs of the team, newest first. Filters are sent only when given;
--project-id here filters and never falls back to a default project. The team is
--team-id, else OWLMETRY_TEAM_ID, else the profile's team, else the one the API
key belongs to.`,
		Example: `  # The latest runs of the team
  owlmetry jobs list

  # Failed Apple Ads syncs of the last week
  owlmetry jobs list --type apple_ads_sync --status failed --since 7d

  # Every run of one project, for a script
  owlmetry jobs list --project-id 1a2b3c4d-0000-4000-8000-000000000001 --all --format json | jq '.job_runs | length'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.validate(cmd); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.TeamID, "team-id", "", "team UUID (default: OWLMETRY_TEAM_ID, the profile, or the key's team)")
	fl.StringVar(&opts.JobType, "type", "", "only runs of this job type")
	fl.StringVar(&opts.Status, "status", "", "only runs with this status: pending, running, completed, failed, cancelled")
	fl.StringVar(&opts.ProjectID, "project-id", "", "only runs of this project")
	fl.StringVar(&opts.Since, "since", "", "only runs created at or after this time (30m, 7d, 2026-11-01, RFC 3339)")
	fl.StringVar(&opts.Until, "until", "", "only runs created at or before this time")
	fl.IntVar(&opts.Limit, "limit", 0, "runs per page, 1-200 (server default 50)")
	fl.StringVar(&opts.Cursor, "cursor", "", "continue after the page that returned this cursor")
	fl.BoolVar(&opts.All, "all", false, "follow the cursor until every matching run is listed")
	_ = cmd.RegisterFlagCompletionFunc("type", runs.CompleteJobTypes(false))
	_ = cmd.RegisterFlagCompletionFunc("status", runs.CompleteStatuses)
	return cmd
}

func (o *ListOptions) validate(cmd *cobra.Command) error {
	fl := cmd.Flags()
	var err error
	if fl.Changed("team-id") {
		if o.TeamID, err = cmdutil.ParseUUID("--team-id", o.TeamID); err != nil {
			return err
		}
	}
	if fl.Changed("type") {
		if o.JobType, err = runs.ParseJobTypeName("--type", o.JobType); err != nil {
			return err
		}
	}
	if fl.Changed("status") {
		if _, err = cmdutil.ParseStatus("--status", o.Status); err != nil {
			return err
		}
	}
	if fl.Changed("project-id") {
		if o.ProjectID, err = cmdutil.ParseUUID("--project-id", o.ProjectID); err != nil {
			return err
		}
	}
	if fl.Changed("since") {
		if o.Since, err = cmdutil.ParseTimeFilter("--since", o.Since); err != nil {
			return err
		}
	}
	if fl.Changed("until") {
		if o.Until, err = cmdutil.ParseTimeFilter("--until", o.Until); err != nil {
			return err
		}
	}
	if fl.Changed("limit") && (o.Limit < 1 || o.Limit > 200) {
		return cmdutil.FlagErrorf("--limit must be between 1 and 200")
	}
	if fl.Changed("cursor") && strings.TrimSpace(o.Cursor) == "" {
		return cmdutil.FlagErrorf("--cursor must not be empty")
	}
	if o.All && fl.Changed("cursor") {
		return cmdutil.FlagErrorf("--all cannot be used with --cursor")
	}
	return nil
}

func listRun(ctx context.Context, opts *ListOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	team, err := opts.Settings().TeamID(ctx, opts.TeamID)
	if err != nil {
		return err
	}
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	params := client.JobRunListParams{
		TeamID: team.Value, JobType: opts.JobType, Status: opts.Status, ProjectID: opts.ProjectID,
		Since: opts.Since, Until: opts.Until, Cursor: opts.Cursor, Limit: opts.Limit,
	}
	page, err := c.JobRunList(ctx, params)
	if err != nil {
		return err
	}
	var doc any = page
	found := page.JobRuns
	if opts.All {
		for page.HasMore && page.Cursor != nil && *page.Cursor != "" {
			params.Cursor = *page.Cursor
			if page, err = c.JobRunList(ctx, params); err != nil {
				return err
			}
			found = append(found, page.JobRuns...)
		}
		if found == nil {
			found = []apitype.JobRun{}
		}
		doc = map[string]any{"job_runs": found, "cursor": json.RawMessage("null"), "has_more": false}
	}
	if err := p.Print(doc, runs.RunList(found)); err != nil {
		return err
	}
	if len(found) == 0 {
		cmdutil.Notef(opts.IO, p.Format, "No job runs found.")
	}
	if !opts.All && page.HasMore && page.Cursor != nil && *page.Cursor != "" {
		cmdutil.Hintf(opts.IO, p.Format, "More results: %s", nextPage(opts, *page.Cursor))
	}
	return nil
}

// nextPage repeats the command's filters with the next cursor, quoted for the shell.
func nextPage(o *ListOptions, cursor string) string {
	parts := []string{"owlmetry jobs list"}
	add := func(flag, v string) {
		if v != "" {
			parts = append(parts, flag+" "+shellQuote(v))
		}
	}
	add("--team-id", o.TeamID)
	add("--type", o.JobType)
	add("--status", o.Status)
	add("--project-id", o.ProjectID)
	add("--since", o.Since)
	add("--until", o.Until)
	if o.Limit > 0 {
		parts = append(parts, "--limit "+strconv.Itoa(o.Limit))
	}
	parts = append(parts, "--cursor '"+strings.ReplaceAll(cursor, "'", `'\''`)+"'")
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:.+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

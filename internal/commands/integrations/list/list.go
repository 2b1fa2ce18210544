// Package list implements `owlmetry integrations list`.
package list

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// ListOptions holds what `owlmetry integrations list` needs.
type ListOptions struct {
	IO        *iostreams.IOStreams
	APIClient func() (*client.Client, error)
	Settings  func() *cmdutil.Settings
	Printer   func() (*cmdutil.Printer, error)

	Project cmdutil.ProjectFlag
}

// NewCmdList builds `owlmetry integrations list`.
func NewCmdList(f *cmdutil.Factory, runFunc func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, APIClient: f.APIClient, Settings: f.Settings, Printer: f.Printer}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the project's integrations and what each still needs",
		Long: `List the integrations configured for the project, enabled or not, with the
credential fields each still needs before it can be enabled. Credentials are never
shown. The project is --project-id, else OWLMETRY_PROJECT_ID, else the profile's
default_project.`,
		Example: `  # Which integrations does the default project have?
  owlmetry integrations list

  # The enabled providers, for a script
  owlmetry integrations list --format json | jq -r '.[] | select(.enabled) | .provider'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.Project.Validate(cmd.Flags()); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	opts.Project.BuildFlags(cmd.Flags())
	return cmd
}

func listRun(ctx context.Context, opts *ListOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	project, err := opts.Settings().ProjectID(opts.Project.Value)
	if err != nil {
		return err
	}
	c, err := opts.APIClient()
	if err != nil {
		return err
	}
	list, err := c.IntegrationList(ctx, project)
	if err != nil {
		return err
	}
	if err := p.Print(list, Render(list)); err != nil {
		return err
	}
	if len(list) == 0 {
		cmdutil.Notef(opts.IO, p.Format, "No integrations configured for project %s.", tui.ShortID(project))
	}
	return nil
}

// Render lays integrations out (cli.md §8.5).
func Render(list []apitype.Integration) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			t := tui.Table{Columns: make([]tui.Column, 6)}
			for _, i := range list {
				t.AddRow(i.Provider, strconv.FormatBool(i.Enabled), tui.RawTime(i.CreatedAt), tui.RawTime(i.UpdatedAt), i.ID, strings.Join(i.MissingFields, ","))
			}
			return t.Render(false, 0, rc.CS)
		}
		t := tui.Table{Columns: []tui.Column{{Header: "provider", NoTruncate: true}, {Header: "enabled", NoTruncate: true}, {Header: "missing"}, {Header: "created"}, {Header: "updated"}}}
		rel := func(ts *apitype.Time) string {
			if ts == nil {
				return "-"
			}
			return rc.CS.Dim(tui.RelativeTime(ts.Time, rc.Now))
		}
		for _, i := range list {
			enabled := rc.CS.Failure("no")
			if i.Enabled {
				enabled = rc.CS.Success("yes")
			}
			missing := strings.Join(i.MissingFields, ", ")
			if missing == "" {
				missing = "-"
			}
			t.AddRow(i.Provider, enabled, missing, rel(i.CreatedAt), rel(i.UpdatedAt))
		}
		return t.Render(true, rc.Width, rc.CS)
	}
}

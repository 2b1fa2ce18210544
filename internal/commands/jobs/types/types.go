// Package types implements `owlmetry jobs types`.
package types

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// TypesOptions holds what `owlmetry jobs types` needs: nothing but a printer. It sends
// no request and reads no credentials.
type TypesOptions struct {
	Printer func() (*cmdutil.Printer, error)
}

// JobTypeDoc is one entry of the JSON document.
type JobTypeDoc struct {
	JobType        string     `json:"job_type"`
	Label          string     `json:"label"`
	Scope          string     `json:"scope"`
	APITriggerable bool       `json:"api_triggerable"`
	StartWith      []string   `json:"start_with"`
	Params         []ParamDoc `json:"params"`
}

// ParamDoc is one declared param.
type ParamDoc struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
}

// NewCmdTypes builds `owlmetry jobs types`.
func NewCmdTypes(f *cmdutil.Factory, runFunc func(context.Context, *TypesOptions) error) *cobra.Command {
	opts := &TypesOptions{Printer: f.Printer}
	return &cobra.Command{
		Use:   "types",
		Short: "List the job types this owlmetry knows and what starts each",
		Long: `List the job types compiled into this binary: their scope, whether the API can
trigger them, and the commands that start them. It sends no request.`,
		Example: `  # What can I start?
  owlmetry jobs types

  # The types the API can trigger, for a script
  owlmetry jobs types --format json | jq -r '.job_types[] | select(.api_triggerable) | .job_type'`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return typesRun(cmd.Context(), opts)
		},
	}
}

// Docs builds the JSON entries from the registry.
func Docs() []JobTypeDoc {
	var out []JobTypeDoc
	for _, t := range jobtype.All() {
		d := JobTypeDoc{JobType: t.Name, Label: t.Label, Scope: string(t.Scope), APITriggerable: t.APITriggerable(), StartWith: t.StartWith, Params: []ParamDoc{}}
		for _, p := range t.Params {
			d.Params = append(d.Params, ParamDoc{Name: p.Name, Type: string(p.Type), Required: p.Required})
		}
		if d.StartWith == nil {
			d.StartWith = []string{}
		}
		out = append(out, d)
	}
	return out
}

func typesRun(_ context.Context, opts *TypesOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	docs := Docs()
	return p.Print(map[string]any{"job_types": docs}, Render(docs))
}

// Render lays the types out: TYPE, SCOPE, START WITH on a terminal; job_type, scope,
// api_triggerable, label piped.
func Render(docs []JobTypeDoc) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		if !rc.TTY {
			t := tui.Table{Columns: make([]tui.Column, 4)}
			for _, d := range docs {
				t.AddRow(d.JobType, d.Scope, strconv.FormatBool(d.APITriggerable), d.Label)
			}
			return t.Render(false, 0, rc.CS)
		}
		t := tui.Table{Columns: []tui.Column{{Header: "type", NoTruncate: true}, {Header: "scope"}, {Header: "start with"}}}
		for _, d := range docs {
			cmds := make([]string, len(d.StartWith))
			for i, c := range d.StartWith {
				cmds[i] = "owlmetry " + c
			}
			t.AddRow(d.JobType, d.Scope, strings.Join(cmds, " · "))
		}
		return t.Render(true, rc.Width, rc.CS)
	}
}

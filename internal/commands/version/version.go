// Package version implements `owlmetry version`.
package version

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/build"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
)

// VersionOptions holds what `owlmetry version` needs.
type VersionOptions struct {
	Factory *cmdutil.Factory
}

// NewCmdVersion builds `owlmetry version`. It reads no config and opens no connection.
func NewCmdVersion(f *cmdutil.Factory, runFunc func(context.Context, *VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{Factory: f}
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build of this binary",
		Long:  "Print the version of this owlmetry binary, the commit it was built from, when, and with which Go.",
		Example: `  # Human-readable
  owlmetry version

  # For a script
  owlmetry version --format json | jq -r .version`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return versionRun(cmd.Context(), opts)
		},
	}
}

func versionRun(_ context.Context, opts *VersionOptions) error {
	p, err := opts.Factory.Printer()
	if err != nil {
		return err
	}
	info := build.Current()
	return p.Print(info, func(cmdutil.RenderContext) string {
		return Line(info)
	})
}

// Line renders `owlmetry 0.4.0 (commit 1a2b3c4, built 2026-11-29T16:00:00Z, go1.26.8 linux/amd64)`.
func Line(info build.Info) string {
	commit, date := info.Commit, info.Date
	if commit == "" {
		commit = "unknown"
	}
	if date == "" {
		date = "unknown"
	}
	return fmt.Sprintf("owlmetry %s (commit %s, built %s, %s %s/%s)", info.Version, commit, date, info.Go, info.OS, info.Arch)
}

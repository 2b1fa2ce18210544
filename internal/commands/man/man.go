// Package man implements the hidden `owlmetry man`, which writes the section-1 manual
// pages of every command (cli.md §12.5). Release builds ship them.
package man

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/owlmetry/owlmetry/internal/build"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
)

// ManOptions holds what `owlmetry man` needs.
type ManOptions struct {
	Factory *cmdutil.Factory
	Dir     string
}

// NewCmdMan builds `owlmetry man`.
func NewCmdMan(f *cmdutil.Factory, runFunc func(context.Context, *ManOptions, *cobra.Command) error) *cobra.Command {
	opts := &ManOptions{Factory: f}
	cmd := &cobra.Command{
		Use:    "man",
		Short:  "Write the manual pages of every command",
		Long:   "Write one section-1 manual page per command (owlmetry.1, owlmetry-jobs-list.1, …) into --dir.",
		Hidden: true,
		Example: `  # Generate the pages a release ships
  owlmetry man --dir manpages

  # Read one
  owlmetry man --dir /tmp/man && man /tmp/man/owlmetry-jobs-trigger.1`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Dir == "" {
				return cmdutil.FlagErrorf("--dir is required")
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts, cmd)
			}
			return manRun(opts, cmd.Root())
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "directory to write the pages into")
	cmd.MarkFlagDirname("dir") //nolint:errcheck // the flag exists
	return cmd
}

func manRun(opts *ManOptions, root *cobra.Command) error {
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return err
	}
	header := &doc.GenManHeader{
		Title:   "OWLMETRY",
		Section: "1",
		Source:  "owlmetry " + build.Current().Version,
		Manual:  "owlmetry manual",
	}
	root.DisableAutoGenTag = true
	if err := doc.GenManTree(root, header, opts.Dir); err != nil {
		return fmt.Errorf("write manual pages: %w", err)
	}
	cmdutil.Notef(opts.Factory.IOStreams, cmdutil.FormatTable, "Manual pages written to %s", opts.Dir)
	return nil
}

// Package completion implements `owlmetry completion`.
package completion

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// Shells are the shells a script can be printed for.
var Shells = []string{"bash", "zsh", "fish", "powershell"}

// CompletionOptions holds what `owlmetry completion` needs.
type CompletionOptions struct {
	IO *iostreams.IOStreams

	Shell          string
	NoDescriptions bool
}

// NewCmdCompletion builds `owlmetry completion`. It reads no config and opens no
// connection.
func NewCmdCompletion(f *cmdutil.Factory, runFunc func(context.Context, *CompletionOptions, *cobra.Command) error) *cobra.Command {
	opts := &CompletionOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "completion <bash|zsh|fish|powershell>",
		Short: "Print the shell completion script",
		Long: `Print a completion script for your shell on stdout. Completion offers commands,
flags, job types, statuses, providers, profiles and the ids of recent runs.

Bash (needs bash-completion):
  owlmetry completion bash > /etc/bash_completion.d/owlmetry
Zsh:
  owlmetry completion zsh > "${fpath[1]}/_owlmetry"
Fish:
  owlmetry completion fish > ~/.config/fish/completions/owlmetry.fish
PowerShell:
  owlmetry completion powershell | Out-String | Invoke-Expression.`,
		Example: `  # Load completion in the current bash session
  source <(owlmetry completion bash)

  # Install it for zsh, without descriptions
  owlmetry completion zsh --no-descriptions > "${fpath[1]}/_owlmetry"`,
		ValidArgs: Shells,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cmdutil.FlagErrorf("expected one shell: %s", strings.Join(Shells, ", "))
			}
			for _, s := range Shells {
				if s == args[0] {
					return nil
				}
			}
			return cmdutil.FlagErrorf("unknown shell %q: valid shells are %s", args[0], strings.Join(Shells, ", "))
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Shell = args[0]
			if runFunc != nil {
				return runFunc(cmd.Context(), opts, cmd.Root())
			}
			return completionRun(opts, cmd.Root())
		},
	}
	cmd.Flags().BoolVar(&opts.NoDescriptions, "no-descriptions", false, "leave out the descriptions of candidates")
	return cmd
}

func completionRun(opts *CompletionOptions, root *cobra.Command) error {
	w := opts.IO.Out
	desc := !opts.NoDescriptions
	switch opts.Shell {
	case "bash":
		return root.GenBashCompletionV2(w, desc)
	case "zsh":
		if desc {
			return root.GenZshCompletion(w)
		}
		return root.GenZshCompletionNoDesc(w)
	case "fish":
		return root.GenFishCompletion(w, desc)
	default:
		if desc {
			return root.GenPowerShellCompletionWithDesc(w)
		}
		return root.GenPowerShellCompletion(w)
	}
}

package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/owlmetry/owlmetry/internal/build"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	adscmd "github.com/owlmetry/owlmetry/internal/commands/ads"
	authcmd "github.com/owlmetry/owlmetry/internal/commands/auth"
	logincmd "github.com/owlmetry/owlmetry/internal/commands/auth/login"
	logoutcmd "github.com/owlmetry/owlmetry/internal/commands/auth/logout"
	switchcmd "github.com/owlmetry/owlmetry/internal/commands/auth/switch"
	completioncmd "github.com/owlmetry/owlmetry/internal/commands/completion"
	"github.com/owlmetry/owlmetry/internal/commands/configcmd"
	devcmd "github.com/owlmetry/owlmetry/internal/commands/dev"
	integrationscmd "github.com/owlmetry/owlmetry/internal/commands/integrations"
	jobscmd "github.com/owlmetry/owlmetry/internal/commands/jobs"
	mancmd "github.com/owlmetry/owlmetry/internal/commands/man"
	migratecmd "github.com/owlmetry/owlmetry/internal/commands/migrate"
	ratingscmd "github.com/owlmetry/owlmetry/internal/commands/ratings"
	servercmd "github.com/owlmetry/owlmetry/internal/commands/server"
	systemcmd "github.com/owlmetry/owlmetry/internal/commands/system"
	versioncmd "github.com/owlmetry/owlmetry/internal/commands/version"
	whoamicmd "github.com/owlmetry/owlmetry/internal/commands/whoami"
)

// Help group ids (cli.md §1.2).
const (
	groupJobs    = "jobs"
	groupAccount = "account"
	groupOwner   = "owner"
	groupOther   = "other"
)

// NewCmdRoot builds the whole command tree.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command { return newCmdRoot(f, Options{}) }

// newCmdRoot builds the tree with what Run was given beyond the Factory.
func newCmdRoot(f *cmdutil.Factory, opts Options) *cobra.Command {
	var showVersion bool
	root := &cobra.Command{
		Use:   "owlmetry",
		Short: "Run and follow Owlmetry background jobs",
		Long: `owlmetry triggers, follows and administers the background jobs of an Owlmetry
server: ad, rating and review syncs for team admins, and the maintenance jobs,
schedules and database of the server owner.`,
		Example: `  # Sync App Store ratings and wait for the result
  owlmetry ratings sync --project-id 1a2b3c4d-0000-4000-8000-000000000001 --wait

  # Run the whole system on this machine
  owlmetry dev`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	cmdutil.MakeGroup(root)
	groupRun := root.RunE
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if showVersion {
			_, err := fmt.Fprintln(f.IOStreams.Out, build.Current().Version)
			return err
		}
		return groupRun(cmd, args)
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cmdutil.FlagErrorWrap(err) })
	root.SetHelpCommandGroupID(groupOther)
	// Our own completion command replaces cobra's; the hidden __complete stays.
	root.CompletionOptions.DisableDefaultCmd = true

	pf := root.PersistentFlags()
	g := f.Flags
	pf.StringVar(&g.Format, "format", "", "output format: table or json (default table)")
	pf.StringVar(&g.Endpoint, "endpoint", "", "API base URL")
	pf.StringVar(&g.APIKey, "api-key", "", "API key (prefer OWLMETRY_API_KEY or auth login)")
	pf.StringVar(&g.Team, "team", "", "team profile to use: id, slug or name")
	pf.StringVar(&g.Config, "config", "", "config file (default ~/.owlmetry/config.json)")
	pf.StringVar(&g.IngestEndpoint, "ingest-endpoint", "", "SDK ingest URL, stored by auth login")
	pf.BoolVar(&g.NoColor, "no-color", false, "disable colour")
	pf.DurationVar(&g.RequestTimeout, "request-timeout", 30*time.Second, "timeout of each API request")
	pf.BoolVar(&g.Debug, "debug", false, "log requests and statements on stderr")
	root.Flags().BoolVarP(&showVersion, "version", "V", false, "print the version")
	f.GlobalFlagSet = pf
	_ = root.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))

	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		f.IOStreams.SetNoColor(g.NoColor)
		if !cmd.Flags().Changed("request-timeout") {
			if v := f.Getenv("OWLMETRY_REQUEST_TIMEOUT"); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return cmdutil.FlagErrorf("invalid OWLMETRY_REQUEST_TIMEOUT %q: a positive duration such as 30s", v)
				}
				g.RequestTimeout = d
			}
		} else if g.RequestTimeout <= 0 {
			return cmdutil.FlagErrorf("--request-timeout must be positive")
		}
		if v := f.Getenv("OWLMETRY_DEBUG"); v == "1" {
			g.Debug = true
		}
		_, err := f.Format()
		return err
	}

	root.AddGroup(
		&cobra.Group{ID: groupJobs, Title: "Job commands:"},
		&cobra.Group{ID: groupAccount, Title: "Account commands:"},
		&cobra.Group{ID: groupOwner, Title: "Server-owner commands:"},
		&cobra.Group{ID: groupOther, Title: "Other commands:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add(groupJobs,
		jobscmd.NewCmdJobs(f),
		adscmd.NewCmdAds(f),
		ratingscmd.NewCmdRatings(f),
		integrationscmd.NewCmdIntegrations(f),
	)
	add(groupAccount,
		authcmd.NewCmdAuth(f),
		whoamicmd.NewCmdWhoAmI(f, nil),
		configcmd.NewCmdConfig(f),
	)
	// dev runs the server in process; the root hands it server's own Serve, since one
	// command package never imports another.
	serve := func(ctx context.Context, env func(string) (string, bool), ready func(string)) error {
		return servercmd.Serve(ctx, f, env, ready)
	}
	add(groupOwner,
		systemcmd.NewCmdSystem(f, systemcmd.Deps{Handlers: opts.JobHandlers}),
		migratecmd.NewCmdMigrate(f, nil),
		servercmd.NewCmdServer(f, nil),
		devcmd.NewCmdDev(f, serve, nil),
	)
	add(groupOther, completioncmd.NewCmdCompletion(f, nil), versioncmd.NewCmdVersion(f, nil), mancmd.NewCmdMan(f, nil))
	// Hidden compatibility aliases of the public CLI (cli.md §9.6).
	root.AddCommand(logincmd.NewCmdSetup(f), switchcmd.NewCmdSwitchAlias(f))
	_ = root.RegisterFlagCompletionFunc("team", logoutcmd.CompleteProfiles(f))
	noFileCompletion(root)
	for _, topic := range helpTopics(f) {
		root.AddCommand(topic)
	}
	return root
}

// fileFlags are the only flags whose values complete as file names (cli.md §12.2).
var fileFlags = map[string]bool{"config": true, "data-dir": true, "pg-bin-dir": true, "secret-file": true, "private-key-p8-file": true}

// noFileCompletion turns off file-name completion for every argument and flag value
// that has no completion of its own, so the shell never offers files for an id.
func noFileCompletion(cmd *cobra.Command) {
	if cmd.ValidArgsFunction == nil && len(cmd.ValidArgs) == 0 {
		cmd.ValidArgsFunction = cobra.NoFileCompletions
	}
	register := func(fl *pflag.Flag) {
		if fl.Value.Type() == "bool" || fileFlags[fl.Name] {
			return
		}
		if _, ok := cmd.GetFlagCompletionFunc(fl.Name); ok {
			return
		}
		_ = cmd.RegisterFlagCompletionFunc(fl.Name, cobra.NoFileCompletions)
	}
	cmd.LocalNonPersistentFlags().VisitAll(register)
	cmd.PersistentFlags().VisitAll(register)
	for _, c := range cmd.Commands() {
		noFileCompletion(c)
	}
}

// Package system builds the `owlmetry system` group: the server owner's commands, which
// talk straight to the Postgres database the servers use.
package system

import (
	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	jobscmd "github.com/owlmetry/owlmetry/internal/commands/system/jobs"
	keyscmd "github.com/owlmetry/owlmetry/internal/commands/system/keys"
	projectscmd "github.com/owlmetry/owlmetry/internal/commands/system/projects"
	"github.com/owlmetry/owlmetry/internal/commands/system/shared"
	teamscmd "github.com/owlmetry/owlmetry/internal/commands/system/teams"
	userscmd "github.com/owlmetry/owlmetry/internal/commands/system/users"
)

// Deps is what the group takes from the process besides the Factory.
type Deps = shared.Deps

// NewCmdSystem builds the group.
func NewCmdSystem(f *cmdutil.Factory, deps Deps) *cobra.Command {
	cmd := cmdutil.MakeGroup(&cobra.Command{
		Use:   "system <command>",
		Short: "Server-owner commands on the database: runs, schedules, identities",
		Long: `Commands for whoever runs owlmetry server and holds its database URL. They talk
straight to Postgres, need no API key, and see every run, including the system
runs the API never shows. On a fresh install they also create the first teams,
users, projects and API keys.

The database is --database-url, else OWLMETRY_DATABASE_URL, else DATABASE_URL,
else the libpq variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
PGSSLMODE) when PGHOST or PGDATABASE is set. Each session runs as
application_name owlmetry-cli with at most 4 connections, an idle-in-transaction
timeout of 11s and a statement timeout: --statement-timeout when given, else the
URL's statement_timeout, else 10s. A database without the owlmetry schema, or
behind this binary, is refused with a hint to run owlmetry migrate.`,
		Example: `  # Bootstrap a fresh install
  owlmetry system teams create --name "Acme Inc." --slug acme
  owlmetry system users create --email ada@example.com --team acme --role owner
  owlmetry system keys create --team acme --created-by ada@example.com

  # What did the scheduler run lately?
  owlmetry system jobs list --database-url postgres://owlmetry@db.internal/owlmetry`,
	})
	cmd.AddCommand(
		jobscmd.NewCmdJobs(f, deps),
		teamscmd.NewCmdTeams(f),
		userscmd.NewCmdUsers(f),
		projectscmd.NewCmdProjects(f),
		keyscmd.NewCmdKeys(f),
	)
	return cmd
}

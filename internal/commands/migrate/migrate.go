// Package migrate implements `owlmetry migrate`.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/db"
)

// MigrateOptions holds what `owlmetry migrate` needs.
type MigrateOptions struct {
	Factory  *cmdutil.Factory
	Database cmdutil.DatabaseOptions

	Status   bool
	Check    bool
	LockWait time.Duration
}

// NewCmdMigrate builds `owlmetry migrate`.
func NewCmdMigrate(f *cmdutil.Factory, runFunc func(context.Context, *MigrateOptions) error) *cobra.Command {
	opts := &MigrateOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date, or show its status",
		Long: `Apply every pending migration — River's queue tables, then owlmetry's own — and
make sure the event partitions of this and the next two UTC months exist. A
Postgres advisory lock serialises concurrent runs, so several replicas may migrate
at once; the later ones find nothing to do. There are no down migrations.

` + cmdutil.DatabaseHelp + ` migrate sets no statement timeout by default.`,
		Example: `  # Migrate the database the server uses
  owlmetry migrate --database-url postgres://owlmetry@db.internal/owlmetry

  # In a deploy script: fail when a migration is pending
  owlmetry migrate --status --check --format json | jq .current_version`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Check && !opts.Status {
				return cmdutil.FlagErrorf("--check requires --status")
			}
			if opts.LockWait <= 0 {
				return cmdutil.FlagErrorf("--lock-wait must be positive")
			}
			if err := opts.Database.Validate(); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return migrateRun(cmd.Context(), opts)
		},
	}
	opts.Database.BuildFlags(cmd.Flags(), true)
	cmd.Flags().BoolVar(&opts.Status, "status", false, "list applied and pending versions; change nothing")
	cmd.Flags().BoolVar(&opts.Check, "check", false, "with --status: exit 1 when a migration is pending")
	cmd.Flags().DurationVar(&opts.LockWait, "lock-wait", 60*time.Second, "how long to wait for another migration to finish")
	return cmd
}

func migrateRun(ctx context.Context, opts *MigrateOptions) error {
	p, err := opts.Factory.Printer()
	if err != nil {
		return err
	}
	pool, err := opts.Database.Open(ctx, opts.Factory.LookupEnvFunc)
	if err != nil {
		return err
	}
	defer pool.Close()
	ios := opts.Factory.IOStreams

	if opts.Status {
		versions, sv, err := db.Status(ctx, pool)
		if err != nil {
			return err
		}
		type row struct {
			Version   int     `json:"version"`
			Name      string  `json:"name"`
			Applied   bool    `json:"applied"`
			AppliedAt *string `json:"applied_at"`
		}
		doc := struct {
			CurrentVersion int   `json:"current_version"`
			LatestVersion  int   `json:"latest_version"`
			RiverVersion   int   `json:"river_version"`
			RiverLatest    int   `json:"river_latest_version"`
			Versions       []row `json:"versions"`
		}{CurrentVersion: sv.Current, LatestVersion: sv.Latest, RiverVersion: sv.RiverCurrent, RiverLatest: sv.RiverLatest, Versions: []row{}}
		pending := 0
		for _, v := range versions {
			r := row{Version: v.Version, Name: v.Name, Applied: v.Applied}
			if v.AppliedAt != nil {
				s := v.AppliedAt.Format(time.RFC3339)
				r.AppliedAt = &s
			} else {
				pending++
			}
			doc.Versions = append(doc.Versions, r)
		}
		if sv.RiverCurrent < sv.RiverLatest {
			pending++
		}
		err = p.Print(doc, func(rc cmdutil.RenderContext) string {
			var b strings.Builder
			for _, r := range doc.Versions {
				state, at := "pending", ""
				if r.Applied {
					state, at = "applied", *r.AppliedAt
				}
				if rc.TTY {
					fmt.Fprintf(&b, "%04d_%-30s %-8s %s\n", r.Version, r.Name, state, at)
				} else {
					fmt.Fprintf(&b, "%d\t%s\t%s\t%s\n", r.Version, r.Name, state, at)
				}
			}
			riverState := "applied"
			if sv.RiverCurrent < sv.RiverLatest {
				riverState = "pending"
			}
			if rc.TTY {
				fmt.Fprintf(&b, "river %-34s %-8s (version %d of %d)\n", "", riverState, sv.RiverCurrent, sv.RiverLatest)
			} else {
				fmt.Fprintf(&b, "river\t%d\t%s\t%d\n", sv.RiverCurrent, riverState, sv.RiverLatest)
			}
			return b.String()
		})
		if err != nil {
			return err
		}
		if opts.Check && pending > 0 {
			return &cmdutil.SilentError{Code: cmdutil.ExitFailure, Name: "database"}
		}
		return nil
	}

	report, err := db.Migrate(ctx, pool, db.MigrateOptions{LockWait: opts.LockWait})
	if errors.Is(err, db.ErrMigrationLocked) {
		return errors.New("another migration is running")
	}
	if err != nil {
		return err
	}
	type applied struct {
		Version    string `json:"version"`
		Name       string `json:"name"`
		DurationMS int64  `json:"duration_ms"`
	}
	doc := struct {
		Applied        []applied `json:"applied"`
		CurrentVersion int       `json:"current_version"`
		Partitions     []string  `json:"partitions_created"`
	}{Applied: []applied{}, CurrentVersion: report.Version, Partitions: report.Partitions.Created}
	if doc.Partitions == nil {
		doc.Partitions = []string{}
	}
	for _, a := range report.Applied {
		v := fmt.Sprintf("%04d", a.Version)
		if a.Set == "river" {
			v = fmt.Sprintf("river_%03d", a.Version)
		}
		doc.Applied = append(doc.Applied, applied{Version: v, Name: a.Name, DurationMS: a.Duration.Milliseconds()})
	}
	err = p.Print(doc, func(rc cmdutil.RenderContext) string {
		var b strings.Builder
		for _, a := range report.Applied {
			if rc.TTY {
				fmt.Fprintf(&b, "applied %s (%dms)\n", a.Label(), a.Duration.Milliseconds())
			} else {
				v := fmt.Sprintf("%d", a.Version)
				if a.Set == "river" {
					v = "river_" + v
				}
				fmt.Fprintf(&b, "%s\t%s\t%d\n", v, a.Name, a.Duration.Milliseconds())
			}
		}
		return b.String()
	})
	if err != nil {
		return err
	}
	if len(report.Partitions.Created) > 0 {
		cmdutil.Notef(ios, p.Format, "Created event partitions: %s", strings.Join(report.Partitions.Created, ", "))
	}
	cmdutil.Notef(ios, p.Format, "Database is up to date (version %d).", report.Version)
	return nil
}

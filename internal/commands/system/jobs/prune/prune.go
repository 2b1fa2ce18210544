// Package prune implements `owlmetry system jobs prune`.
package prune

import (
	"context"
	"errors"
	"sort"
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

// PruneOptions holds what `owlmetry system jobs prune` needs.
type PruneOptions struct {
	IO       *iostreams.IOStreams
	Printer  func() (*cmdutil.Printer, error)
	Store    shared.StoreFunc
	Database cmdutil.DatabaseOptions
	NowFunc  func() time.Time

	OlderThan time.Duration
	Types     []string
	KeepLast  int
	BatchSize int
	DryRun    bool
	Yes       bool

	rawOlderThan string
}

// NewCmdPrune builds `owlmetry system jobs prune`. Tests pass runFunc to inspect the
// parsed options without connecting.
func NewCmdPrune(f *cmdutil.Factory, runFunc func(context.Context, *PruneOptions) error) *cobra.Command {
	opts := &PruneOptions{IO: f.IOStreams, Printer: f.Printer, NowFunc: f.NowFunc}
	opts.Store = shared.Opener(f, &opts.Database, nil)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete finished job runs older than a cutoff",
		Long: `Delete terminal runs (completed, failed, cancelled) whose completed_at is older
than --older-than, through the engine's retention rule. Active runs are never
deleted, and the newest --keep-last terminal runs of each job type and project are
always kept, so "last run" lookups still answer. Deletion runs in batches, each
its own transaction.

The command counts first. On a terminal it then asks before deleting; without
one, or with --format json, it needs --yes. --dry-run only counts.

` + cmdutil.DatabaseHelp,
		Example: `  # How much would the default 90 days remove?
  owlmetry system jobs prune --dry-run

  # Keep 30 days of issue scans, without a prompt
  owlmetry system jobs prune --older-than 30d --type issue_scan --yes

  # From cron, counting what went
  owlmetry system jobs prune --older-than 180d --yes --format json | jq .deleted`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := shared.ParseAge("--older-than", opts.rawOlderThan)
			if err != nil {
				return err
			}
			if d < 24*time.Hour {
				return cmdutil.FlagErrorf("--older-than must be at least 1d")
			}
			opts.OlderThan = d
			for _, t := range opts.Types {
				if _, err := runs.ParseJobTypeName("--type", t); err != nil {
					return err
				}
			}
			if opts.KeepLast < 1 {
				return cmdutil.FlagErrorf("--keep-last must be at least 1")
			}
			if opts.BatchSize < 1 || opts.BatchSize > 10000 {
				return cmdutil.FlagErrorf("--batch-size must be between 1 and 10000")
			}
			if err := opts.Database.Validate(); err != nil {
				return err
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return pruneRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.rawOlderThan, "older-than", "90d", "delete runs that completed longer ago than this (at least 1d)")
	fl.StringArrayVar(&opts.Types, "type", nil, "only this job type (repeatable)")
	fl.IntVar(&opts.KeepLast, "keep-last", 1, "terminal runs always kept per job type and project")
	fl.IntVar(&opts.BatchSize, "batch-size", 1000, "rows per transaction, 1-10000")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "count only")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "delete without asking")
	_ = cmd.RegisterFlagCompletionFunc("type", runs.CompleteJobTypes(false))
	shared.AddDatabaseFlags(cmd, &opts.Database)
	return cmd
}

// ErrNotConfirmed is an answer other than y or yes to the confirmation.
var ErrNotConfirmed = errors.New("not confirmed")

type pruneDoc struct {
	DryRun    bool             `json:"dry_run"`
	OlderThan string           `json:"older_than"`
	Deleted   int64            `json:"deleted"`
	ByType    map[string]int64 `json:"by_type"`
}

func pruneRun(ctx context.Context, opts *PruneOptions) error {
	p, err := opts.Printer()
	if err != nil {
		return err
	}
	st, err := opts.Store(ctx, !opts.DryRun)
	if err != nil {
		return err
	}
	defer st.Close()
	po := localjobs.PruneOptions{OlderThan: opts.OlderThan, Types: opts.Types, KeepLast: opts.KeepLast, BatchSize: opts.BatchSize, DryRun: true}
	counts, err := st.Prune(ctx, po)
	if err != nil {
		return err
	}
	n := total(counts)
	if !opts.DryRun && n > 0 && !opts.Yes {
		if p.Format == cmdutil.FormatJSON || !opts.IO.CanPrompt() {
			return cmdutil.FlagErrorf("deleting %s needs --yes when there is no terminal to ask on", shared.Plural(n, "run"))
		}
		cutoff := opts.NowFunc().Add(-opts.OlderThan).UTC().Format("2006-01-02 15:04 UTC")
		answer, err := opts.IO.Prompt("Delete " + shared.Plural(n, "run") + " older than " + cutoff + "? [y/N] ")
		if err != nil {
			return ErrNotConfirmed
		}
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return ErrNotConfirmed
		}
	}
	if !opts.DryRun && n > 0 {
		po.DryRun = false
		if counts, err = st.Prune(ctx, po); err != nil {
			return err
		}
	}
	doc := pruneDoc{DryRun: opts.DryRun, OlderThan: opts.rawOlderThan, Deleted: total(counts), ByType: counts}
	if doc.ByType == nil {
		doc.ByType = map[string]int64{}
	}
	if err := p.Print(doc, render(doc)); err != nil {
		return err
	}
	switch {
	case doc.Deleted == 0:
		cmdutil.Notef(opts.IO, p.Format, "No runs to prune.")
	case opts.DryRun:
		cmdutil.Notef(opts.IO, p.Format, "Would delete %s (dry run: nothing changed).", shared.Plural(doc.Deleted, "run"))
	default:
		cmdutil.Notef(opts.IO, p.Format, "Deleted %s.", shared.Plural(doc.Deleted, "run"))
	}
	return nil
}

func total(counts map[string]int64) int64 {
	var n int64
	for _, c := range counts {
		n += c
	}
	return n
}

// render is the counts per job type: a table on a terminal, `job_type<TAB>count` piped.
func render(doc pruneDoc) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		types := make([]string, 0, len(doc.ByType))
		for t := range doc.ByType {
			types = append(types, t)
		}
		sort.Strings(types)
		rows := make([][]string, 0, len(types))
		for _, t := range types {
			rows = append(rows, []string{t, strconv.FormatInt(doc.ByType[t], 10)})
		}
		if len(rows) == 0 {
			return ""
		}
		header := "deleted"
		if doc.DryRun {
			header = "would delete"
		}
		return shared.Table([]string{"type", header}, rows, rc)
	}
}

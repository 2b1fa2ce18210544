package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// Classifier maps an error it recognises to an exit code, a JSON code name and extra
// JSON fields. Packages whose error types the commands package cannot import directly
// (the API client) register one with RegisterClassifier.
type Classifier func(err error) (code cmdutil.ExitCode, name string, fields map[string]any, ok bool)

var classifiers []Classifier

// RegisterClassifier adds a classifier consulted before the built-in rules.
func RegisterClassifier(c Classifier) { classifiers = append(classifiers, c) }

// classify maps an error returned by a command to its exit code, the name used as
// "code" in JSON errors, and extra JSON fields (cli.md §5.3).
func classify(err error) (cmdutil.ExitCode, string, map[string]any) {
	var (
		flagErr  *cmdutil.FlagError
		outcome  *cmdutil.OutcomeError
		silent   *cmdutil.SilentError
		conflict *apitype.ConflictError
		connErr  *db.ConnectError
		schema   *cmdutil.SchemaError
	)
	if err == nil {
		return cmdutil.ExitOK, "", nil
	}
	for _, c := range classifiers {
		if code, name, fields, ok := c(err); ok {
			return code, name, fields
		}
	}
	switch {
	case errors.As(err, &outcome):
		fields := map[string]any{}
		if len(outcome.RunIDs) > 0 {
			fields["run_ids"] = outcome.RunIDs
		}
		return outcome.Code, outcome.Name, fields
	case errors.As(err, &silent):
		return silent.Code, silent.Name, nil
	case errors.As(err, &flagErr):
		return cmdutil.ExitUsage, "usage", nil
	case errors.Is(err, cmdutil.ErrInterrupted):
		return cmdutil.ExitInterrupted, "interrupted", nil
	case errors.As(err, &conflict):
		fields := map[string]any{}
		if conflict.ExistingRunID != "" {
			fields["existing_run_id"] = conflict.ExistingRunID
		}
		if len(conflict.ExistingRunIDs) > 0 {
			fields["existing_run_ids"] = conflict.ExistingRunIDs
		}
		return cmdutil.ExitConflict, "conflict", fields
	case errors.Is(err, cmdutil.ErrNoCredentials):
		return cmdutil.ExitAuth, "auth_missing", nil
	case errors.As(err, &connErr):
		if connErr.IsAuthFailure() {
			return cmdutil.ExitAuth, "auth_rejected", nil
		}
		return cmdutil.ExitFailure, "database", nil
	case errors.As(err, &schema):
		return cmdutil.ExitFailure, "database", nil
	case db.SQLState(err) != "":
		return cmdutil.ExitFailure, "database", nil
	default:
		return cmdutil.ExitFailure, "internal", nil
	}
}

// report prints err on stderr in the resolved format and returns the exit code. It is
// the only place that renders errors (cli.md §5.1).
func report(f *cmdutil.Factory, cmd *cobra.Command, err error) cmdutil.ExitCode {
	if err == nil {
		return cmdutil.ExitOK
	}
	code, name, fields := classify(err)
	hints := cmdutil.Hints(err)
	var credErr *cmdutil.CredentialsError
	if errors.As(err, &credErr) && credErr.Hint != "" {
		hints = append(hints, credErr.Hint)
	}
	var conflict *apitype.ConflictError
	if errors.As(err, &conflict) && conflict.ExistingRunID != "" {
		hints = append(hints, "wait for it: owlmetry jobs wait "+conflict.ExistingRunID, "or run again with --attach")
	}
	var outcome *cmdutil.OutcomeError
	if errors.As(err, &outcome) && outcome.Hint != "" {
		hints = append(hints, outcome.Hint)
	}
	var silent *cmdutil.SilentError
	if errors.As(err, &silent) {
		return code
	}

	ios := f.IOStreams
	format, ferr := f.Format()
	if ferr != nil {
		format = cmdutil.FormatTable
	}
	msg := err.Error()
	if conflict != nil && conflict.ExistingRunID != "" && !strings.Contains(msg, conflict.ExistingRunID) {
		msg += " (existing run: " + conflict.ExistingRunID + ")"
	}
	if format == cmdutil.FormatJSON {
		doc := map[string]any{}
		for k, v := range fields {
			doc[k] = v
		}
		doc["error"] = msg
		doc["code"] = name
		doc["exit_code"] = int(code)
		if len(hints) > 0 {
			doc["hint"] = strings.Join(hints, "; ")
		}
		b, _ := json.Marshal(doc)
		fmt.Fprintln(ios.ErrOut, string(b))
		return code
	}
	cs := ios.ColorScheme(iostreams.Stderr)
	fmt.Fprintf(ios.ErrOut, "%s %s\n", cs.Failure("error:"), msg)
	for _, h := range hints {
		fmt.Fprintf(ios.ErrOut, "hint: %s\n", h)
	}
	if code == cmdutil.ExitUsage {
		path := "owlmetry"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(ios.ErrOut, "Run '%s --help' for usage.\n", path)
	}
	return code
}

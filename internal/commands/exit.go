package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/client"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/config"
	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/localjobs"
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
		apiErr   *client.APIError
		gone     *client.RunGoneError
		runNF    *localjobs.RunNotFoundError
		dup      *localjobs.DuplicateError
		ended    *localjobs.AlreadyEndedError
		coded    *cmdutil.CodedError
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
	case errors.As(err, &coded):
		return coded.Code, coded.Name, nil
	case errors.As(err, &flagErr):
		return cmdutil.ExitUsage, "usage", nil
	case errors.Is(err, cmdutil.ErrInterrupted):
		return cmdutil.ExitInterrupted, "interrupted", nil
	case errors.As(err, &conflict):
		fields := map[string]any{}
		if errors.As(err, &apiErr) {
			fields = apiErr.Fields()
			fields["status"] = apiErr.StatusCode
		}
		if conflict.ExistingRunID != "" {
			fields["existing_run_id"] = conflict.ExistingRunID
		}
		if len(conflict.ExistingRunIDs) > 0 {
			fields["existing_run_ids"] = conflict.ExistingRunIDs
		}
		return cmdutil.ExitConflict, "conflict", fields
	case errors.Is(err, cmdutil.ErrNoCredentials):
		return cmdutil.ExitAuth, "auth_missing", nil
	case errors.As(err, &apiErr):
		fields := apiErr.Fields()
		fields["status"] = apiErr.StatusCode
		code, name := classifyStatus(apiErr.StatusCode)
		return code, name, fields
	case errors.As(err, &gone), errors.As(err, &runNF):
		return cmdutil.ExitFailure, "not_found", nil
	case errors.As(err, &dup):
		return cmdutil.ExitConflict, "conflict", nil
	case errors.As(err, &ended):
		return cmdutil.ExitFailure, "bad_request", nil
	case client.IsNetworkError(err):
		return cmdutil.ExitFailure, "network", nil
	case errors.Is(err, config.ErrInvalid), errors.Is(err, config.ErrLocked):
		return cmdutil.ExitFailure, "config", nil
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

// classifyStatus maps an HTTP status to an exit code and error code (cli.md §5.3).
func classifyStatus(status int) (cmdutil.ExitCode, string) {
	switch {
	case status == 401:
		return cmdutil.ExitAuth, "auth_rejected"
	case status == 403:
		return cmdutil.ExitAuth, "forbidden"
	case status == 404:
		return cmdutil.ExitFailure, "not_found"
	case status == 409:
		return cmdutil.ExitConflict, "conflict"
	case status == 429:
		return cmdutil.ExitFailure, "rate_limited"
	case status >= 500:
		return cmdutil.ExitFailure, "server_error"
	default:
		return cmdutil.ExitFailure, "bad_request"
	}
}

// errorHints are the hints of cli.md §5.4 that follow from the error itself.
func errorHints(err error) []string {
	var (
		apiErr   *client.APIError
		netErr   *client.NetworkError
		conflict *apitype.ConflictError
	)
	var hints []string
	var dbConflict *localjobs.RunConflictError
	switch {
	case errors.As(err, &dbConflict) && dbConflict.ExistingRunID != "":
		// A system run is invisible to the API; the server owner follows it in the database.
		hints = append(hints, "wait for it: owlmetry system jobs view "+dbConflict.ExistingRunID+" --wait", "or run again with --attach")
	case errors.As(err, &conflict) && conflict.ExistingRunID != "":
		hints = append(hints, "wait for it: owlmetry jobs wait "+conflict.ExistingRunID, "or run again with --attach")
	}
	switch {
	case errors.As(err, &apiErr):
		switch apiErr.StatusCode {
		case 401:
			hints = append(hints, "the server rejected the API key; store a new one with owlmetry auth login")
		case 403:
			if p, ok := strings.CutPrefix(apiErr.Field("error"), "Missing permission: "); ok {
				hints = append(hints, "the API key lacks "+p)
			}
		case 503:
			if strings.Contains(apiErr.Field("error"), "OWLMETRY_SECRET_KEY") {
				hints = append(hints, "the server's OWLMETRY_SECRET_KEY changed; store the credentials again with owlmetry integrations update <provider>")
			}
		}
	case errors.As(err, &netErr):
		if netErr.Refused && netErr.Loopback() {
			hints = append(hints, "is owlmetry server (or owlmetry dev) running?")
		}
	}
	return hints
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
	hints = append(hints, errorHints(err)...)
	var conflict *apitype.ConflictError
	errors.As(err, &conflict)
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
	if format == cmdutil.FormatJSON {
		doc := map[string]any{}
		for k, v := range fields {
			doc[k] = v
		}
		// The status has its own key; the message does not repeat it.
		if st, ok := fields["status"].(int); ok {
			msg = strings.TrimSuffix(msg, fmt.Sprintf(" (HTTP %d)", st))
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
	if outcome != nil && outcome.Reported {
		// A wait outcome already printed its outcome lines; the hint and notes take the
		// place of the error line (cli.md §6.8).
		for _, h := range hints {
			fmt.Fprintf(ios.ErrOut, "hint: %s\n", h)
		}
		for _, n := range outcome.Notes {
			fmt.Fprintln(ios.ErrOut, n)
		}
		return code
	}
	fmt.Fprintf(ios.ErrOut, "%s %s\n", cs.Failure("error:"), msg)
	if conflict != nil && conflict.ExistingRunID != "" {
		fmt.Fprintf(ios.ErrOut, "existing run: %s\n", conflict.ExistingRunID)
	}
	for _, h := range hints {
		fmt.Fprintf(ios.ErrOut, "hint: %s\n", h)
	}
	if outcome != nil {
		for _, n := range outcome.Notes {
			fmt.Fprintln(ios.ErrOut, n)
		}
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

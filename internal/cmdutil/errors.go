package cmdutil

import (
	"errors"
	"fmt"
)

// FlagError is bad input: an unknown flag, a malformed value, a failed client-side
// validation. It exits 2 and prints the "Run '… --help'" line.
type FlagError struct{ err error }

func (e *FlagError) Error() string { return e.err.Error() }
func (e *FlagError) Unwrap() error { return e.err }

// FlagErrorf builds a FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{err: fmt.Errorf(format, args...)}
}

// FlagErrorWrap turns any error into a usage error.
func FlagErrorWrap(err error) error {
	if err == nil {
		return nil
	}
	return &FlagError{err: err}
}

// ErrNoCredentials means no API key or database URL was found (exit 4).
var ErrNoCredentials = errors.New("no credentials")

// ErrInterrupted is the cause of a context cancelled by a signal (exit 130).
var ErrInterrupted = errors.New("interrupted")

// CredentialsError is a missing credential with its message and hint.
type CredentialsError struct {
	Message string
	Hint    string
}

func (e *CredentialsError) Error() string { return e.Message }

// Is makes errors.Is(err, ErrNoCredentials) true.
func (e *CredentialsError) Is(target error) bool { return target == ErrNoCredentials }

// HintError carries hints that are printed after the error line.
type HintError struct {
	Err   error
	Hints []string
}

func (e *HintError) Error() string { return e.Err.Error() }
func (e *HintError) Unwrap() error { return e.Err }

// WithHint attaches a hint to err. Empty hints are dropped.
func WithHint(err error, hint ...string) error {
	if err == nil {
		return nil
	}
	var hs []string
	for _, h := range hint {
		if h != "" {
			hs = append(hs, h)
		}
	}
	if len(hs) == 0 {
		return err
	}
	return &HintError{Err: err, Hints: hs}
}

// Hints collects every hint attached anywhere in err's chain, outermost first.
func Hints(err error) []string {
	var out []string
	for err != nil {
		if h, ok := err.(*HintError); ok { //nolint:errorlint // walking the chain by hand on purpose
			out = append(out, h.Hints...)
		}
		err = errors.Unwrap(err)
	}
	return out
}

// OutcomeError is a wait that ended badly after its result was printed. It carries the
// exit code and JSON code name, so the exit is still decided in one place.
type OutcomeError struct {
	Code    ExitCode
	Name    string
	Message string
	RunIDs  []string
	Hint    string
	// Notes are printed after the hint in table format ("note: the run was not
	// cancelled").
	Notes []string
	// Reported is set by waits that already printed their outcome lines (cli.md §6.8):
	// in table format those lines take the place of the error line.
	Reported bool
}

func (e *OutcomeError) Error() string { return e.Message }

// SilentError ends a command with a code after the command already explained itself on
// stderr (e.g. a connection test that printed its own outcome).
type SilentError struct {
	Code ExitCode
	Name string
}

func (e *SilentError) Error() string { return e.Name }

// CodedError gives an error an exit code and JSON code name of its own, for outcomes
// the generic rules do not cover (`config get` of an unset key: not_found, exit 1).
type CodedError struct {
	Code ExitCode
	Name string
	Err  error
}

func (e *CodedError) Error() string { return e.Err.Error() }

// Unwrap returns the error.
func (e *CodedError) Unwrap() error { return e.Err }

// Package iostreams owns everything about the process's terminals: which streams are
// TTYs, their width, and whether colour is on (cli.md §4.2, §4.5). No other package calls
// isatty, reads COLUMNS or decides about colour.
package iostreams

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/term"
)

// Stream names one of the two output streams.
type Stream int

// The output streams.
const (
	Stdout Stream = iota
	Stderr
)

// IOStreams are the three standard streams and what is known about them.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool

	// width is the terminal width per stream; 0 = unknown.
	outWidth int
	errWidth int

	env      func(string) (string, bool)
	noColor  bool
	jsonOut  bool
	inFd     uintptr
	hasInFd  bool
	hasOutFd bool
	outFd    uintptr
	errFd    uintptr
	hasErrFd bool
}

// System returns the process's streams. lookupEnv is the injected environment.
func System(lookupEnv func(string) (string, bool)) *IOStreams {
	ios := &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, env: lookupEnv} //nolint:forbidigo // the one place that wraps the real streams
	ios.inFd, ios.hasInFd = os.Stdin.Fd(), true
	ios.outFd, ios.hasOutFd = os.Stdout.Fd(), true
	ios.errFd, ios.hasErrFd = os.Stderr.Fd(), true
	ios.stdinTTY = term.IsTerminal(ios.inFd)
	ios.stdoutTTY = term.IsTerminal(ios.outFd)
	ios.stderrTTY = term.IsTerminal(ios.errFd)
	if v, _ := lookupEnv("OWLMETRY_FORCE_TTY"); v == "1" {
		ios.stdoutTTY, ios.stderrTTY = true, true
	}
	return ios
}

// Test returns streams backed by buffers, with every TTY flag off and no environment.
func Test() (ios *IOStreams, in *bytes.Buffer, out *bytes.Buffer, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	ios = &IOStreams{In: in, Out: out, ErrOut: errOut, env: func(string) (string, bool) { return "", false }}
	return ios, in, out, errOut
}

// SetEnv replaces the environment the colour and width rules read.
func (s *IOStreams) SetEnv(lookupEnv func(string) (string, bool)) { s.env = lookupEnv }

// SetStdinTTY marks stdin as a terminal or not.
func (s *IOStreams) SetStdinTTY(v bool) { s.stdinTTY = v }

// SetStdoutTTY marks stdout as a terminal or not.
func (s *IOStreams) SetStdoutTTY(v bool) { s.stdoutTTY = v }

// SetStderrTTY marks stderr as a terminal or not.
func (s *IOStreams) SetStderrTTY(v bool) { s.stderrTTY = v }

// SetWidth fixes the terminal width of both output streams.
func (s *IOStreams) SetWidth(w int) { s.outWidth, s.errWidth = w, w }

// SetNoColor applies --no-color.
func (s *IOStreams) SetNoColor(v bool) { s.noColor = v }

// SetJSONOutput records that stdout carries a JSON document, which never has colour.
func (s *IOStreams) SetJSONOutput(v bool) { s.jsonOut = v }

// IsStdinTTY reports whether stdin is a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether stdout is a terminal (or OWLMETRY_FORCE_TTY=1).
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether stderr is a terminal (or OWLMETRY_FORCE_TTY=1).
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// IsTTY reports whether the given output stream is a terminal.
func (s *IOStreams) IsTTY(st Stream) bool {
	if st == Stdout {
		return s.stdoutTTY
	}
	return s.stderrTTY
}

// IsDumbTerminal reports TERM=dumb, which gets no colour and no progress bar.
func (s *IOStreams) IsDumbTerminal() bool {
	v, _ := s.env("TERM")
	return v == "dumb"
}

// CanPrompt reports whether a question can be asked: stdin and stderr are terminals.
// Commands in JSON mode never prompt either; they check that themselves.
func (s *IOStreams) CanPrompt() bool { return s.stdinTTY && s.stderrTTY }

// TerminalWidth is the width of the terminal a stream writes to, else COLUMNS, else 80.
func (s *IOStreams) TerminalWidth(st Stream) int {
	fixed, fd, has := s.outWidth, s.outFd, s.hasOutFd
	if st == Stderr {
		fixed, fd, has = s.errWidth, s.errFd, s.hasErrFd
	}
	if fixed > 0 {
		return fixed
	}
	if has && s.IsTTY(st) {
		if w, _, err := term.GetSize(fd); err == nil && w > 0 {
			return w
		}
	}
	if v, ok := s.env("COLUMNS"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			return n
		}
	}
	return 80
}

// ColorEnabled applies the rules of cli.md §4.5 to a stream, first match wins.
func (s *IOStreams) ColorEnabled(st Stream) bool {
	get := func(k string) string { v, _ := s.env(k); return v }
	switch {
	case s.noColor:
		return false
	case get("NO_COLOR") != "":
		return false
	case st == Stdout && s.jsonOut:
		return false
	case get("FORCE_COLOR") == "0":
		return false
	case get("CLICOLOR_FORCE") != "" && get("CLICOLOR_FORCE") != "0",
		get("FORCE_COLOR") == "1", get("FORCE_COLOR") == "2", get("FORCE_COLOR") == "3":
		return true
	case get("TERM") == "dumb", get("CLICOLOR") == "0":
		return false
	default:
		return s.IsTTY(st)
	}
}

// Fd returns the file descriptor behind an output stream, when there is one.
func (s *IOStreams) Fd(st Stream) (uintptr, bool) {
	if st == Stdout {
		return s.outFd, s.hasOutFd
	}
	return s.errFd, s.hasErrFd
}

// Env returns a variable of the injected environment, "" when unset. Terminal code
// that needs TERM and the like asks here rather than the process environment.
func (s *IOStreams) Env(key string) string {
	v, _ := s.env(key)
	return v
}

// Prompt writes label on stderr and reads one line from stdin, without its line ending.
func (s *IOStreams) Prompt(label string) (string, error) {
	_, _ = io.WriteString(s.ErrOut, label)
	return readLine(s.In)
}

// PromptHidden is Prompt without echo, for secrets. When stdin is not a terminal it
// reads the line as is.
func (s *IOStreams) PromptHidden(label string) (string, error) {
	_, _ = io.WriteString(s.ErrOut, label)
	if s.hasInFd && s.stdinTTY {
		b, err := term.ReadPassword(s.inFd)
		_, _ = io.WriteString(s.ErrOut, "\n")
		return string(b), err
	}
	return readLine(s.In)
}

// readLine reads up to a newline one byte at a time, so nothing after the line is
// consumed from a shared stdin.
func readLine(r io.Reader) (string, error) {
	var b []byte
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			b = append(b, buf[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(b) > 0 {
				break
			}
			return string(b), err
		}
	}
	return strings.TrimRight(string(b), "\r"), nil
}

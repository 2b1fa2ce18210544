package cmdutil

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// RenderContext is what a table renderer gets: pure inputs, so renderers need no I/O.
type RenderContext struct {
	CS    *iostreams.ColorScheme
	Width int
	Now   time.Time
	TTY   bool
}

// Renderer turns a command's result into table-format text for stdout.
type Renderer func(rc RenderContext) string

// Printer writes a command's one result: JSON in JSON mode, the renderer's text otherwise.
type Printer struct {
	IO     *iostreams.IOStreams
	Format Format
	Now    func() time.Time
}

// Print writes doc as one JSON document (two-space indent, trailing newline) in JSON
// mode, or the renderer's output in table mode. A nil renderer prints nothing in table
// mode.
func (p *Printer) Print(doc any, render Renderer) error {
	if p.Format == FormatJSON {
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return fmt.Errorf("encode JSON output: %w", err)
		}
		_, err = fmt.Fprintf(p.IO.Out, "%s\n", b)
		return err
	}
	if render == nil {
		return nil
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	out := render(RenderContext{
		CS:    p.IO.ColorScheme(iostreams.Stdout),
		Width: p.IO.TerminalWidth(iostreams.Stdout),
		Now:   now(),
		TTY:   p.IO.IsStdoutTTY(),
	})
	if out == "" {
		return nil
	}
	if out[len(out)-1] != '\n' {
		out += "\n"
	}
	_, err := fmt.Fprint(p.IO.Out, out)
	return err
}

// Notef writes a note on stderr in table mode (never in JSON mode): empty results,
// "Nothing to sync", "attached to existing run".
func Notef(ios *iostreams.IOStreams, format Format, msg string, args ...any) {
	if format == FormatJSON {
		return
	}
	fmt.Fprintf(ios.ErrOut, msg+"\n", args...)
}

// Hintf writes a hint on stderr, only in table mode and only when stderr is a terminal.
func Hintf(ios *iostreams.IOStreams, format Format, msg string, args ...any) {
	if format == FormatJSON || !ios.IsStderrTTY() {
		return
	}
	cs := ios.ColorScheme(iostreams.Stderr)
	fmt.Fprintln(ios.ErrOut, cs.Dim(fmt.Sprintf(msg, args...)))
}

// Warnf writes a warning on stderr in every format.
func Warnf(ios *iostreams.IOStreams, msg string, args ...any) {
	cs := ios.ColorScheme(iostreams.Stderr)
	fmt.Fprintf(ios.ErrOut, "%s %s\n", cs.Warning("warning:"), fmt.Sprintf(msg, args...))
}

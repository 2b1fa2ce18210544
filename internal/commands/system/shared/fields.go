package shared

import (
	"fmt"
	"strings"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// Field is one line of a detail view: Label on a terminal, Key when piped.
type Field struct {
	Label string
	Key   string
	Value string
}

// Fields renders a detail view (cli.md §4.3): an optional title and aligned
// `Label  value` lines on a terminal (`-` for an empty value), `key<TAB>value` lines with
// escaped values when piped.
func Fields(title string, build func(rc cmdutil.RenderContext) []Field) cmdutil.Renderer {
	return func(rc cmdutil.RenderContext) string {
		fields := build(rc)
		var b strings.Builder
		if !rc.TTY {
			for _, f := range fields {
				fmt.Fprintf(&b, "%s\t%s\n", f.Key, tui.Escape(f.Value))
			}
			return b.String()
		}
		if title != "" {
			fmt.Fprintln(&b, rc.CS.Bold(title))
		}
		w := 0
		for _, f := range fields {
			w = max(w, len(f.Label))
		}
		for _, f := range fields {
			v := f.Value
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(&b, "%s%s  %s\n", rc.CS.Bold(f.Label), strings.Repeat(" ", w-len(f.Label)), v)
		}
		return b.String()
	}
}

// Time renders an instant for a detail view: the local absolute time on a terminal
// (cli.md §4.6), the stored RFC 3339 UTC value when piped, "" for none.
func Time(t *apitype.Time, rc cmdutil.RenderContext) string {
	if t == nil {
		return ""
	}
	if !rc.TTY {
		return RawTime(t)
	}
	return tui.AbsoluteTime(t.Time, rc.Now.Location())
}

// RawTime is a timestamp as stored (RFC 3339, UTC), "" for none.
func RawTime(t *apitype.Time) string { return tui.RawTime(t) }

package shared

import (
	"github.com/owlmetry/owlmetry/internal/cmdutil"
	"github.com/owlmetry/owlmetry/internal/tui"
)

// Table renders a list of plain cells (cli.md §4.3) with tui.Table: on a terminal an
// upper-case header and aligned columns fitted to the width, empty cells as `-`; piped,
// one tab-separated record per line, escaped, no header.
func Table(headers []string, rows [][]string, rc cmdutil.RenderContext) string {
	t := tui.Table{Columns: make([]tui.Column, len(headers))}
	for i, h := range headers {
		t.Columns[i] = tui.Column{Header: h}
	}
	for _, row := range rows {
		cells := append([]string(nil), row...)
		if rc.TTY {
			for i, c := range cells {
				if c == "" {
					cells[i] = "-"
				}
			}
		}
		t.AddRow(cells...)
	}
	return t.Render(rc.TTY, rc.Width, rc.CS)
}

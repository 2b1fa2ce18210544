package shared

import (
	"strings"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
)

// Table renders a list (cli.md §4.3): on a terminal an upper-case header and aligned
// columns, empty cells as `-`; piped, one tab-separated record per line, escaped, no
// header.
func Table(headers []string, rows [][]string, rc cmdutil.RenderContext) string {
	var b strings.Builder
	if !rc.TTY {
		for _, row := range rows {
			for i, c := range row {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(escape(c))
			}
			b.WriteByte('\n')
		}
		return b.String()
	}
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = len(h)
	}
	for _, row := range rows {
		for i, c := range row {
			if c == "" {
				row[i] = "-"
			}
			widths[i] = max(widths[i], len([]rune(row[i])))
		}
	}
	line := func(cells []string, header bool) {
		var l strings.Builder
		for i, c := range cells {
			pad := widths[i] - len([]rune(c))
			if header {
				c = rc.CS.Bold(strings.ToUpper(c))
			}
			l.WriteString(c)
			if i < len(cells)-1 {
				l.WriteString(strings.Repeat(" ", pad+2))
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " "))
		b.WriteByte('\n')
	}
	line(headers, true)
	for _, row := range rows {
		line(row, false)
	}
	return b.String()
}

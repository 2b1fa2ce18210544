package tui

import (
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// Column describes one column of a Table.
type Column struct {
	// Header is the column's name; it is upper-cased on a terminal.
	Header string
	// NoTruncate keeps every cell whole on a terminal: ids are never cut.
	NoTruncate bool
}

// Table is a list with a terminal layout and a piped layout made from the same cells
// (cli.md §4.3). Cells may carry colour for the terminal layout; the piped layout
// should be given plain cells.
type Table struct {
	Columns []Column
	Rows    [][]string
}

// AddRow appends a row.
func (t *Table) AddRow(cells ...string) { t.Rows = append(t.Rows, cells) }

// minCell is the narrowest a truncatable column gets while others can still give way;
// lastResort is the narrowest it gets at all (one character and "…").
const (
	minCell    = 5
	lastResort = 2
)

// Render lays the table out. On a terminal: an upper-case header, aligned columns fitted
// to width, long cells cut with "…", ids whole. Piped: one record per line, fields
// separated by a tab, escaped, nothing cut, no header.
func (t Table) Render(tty bool, width int, cs *iostreams.ColorScheme) string {
	var b strings.Builder
	if !tty {
		for _, row := range t.Rows {
			for i, c := range row {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(Escape(c))
			}
			b.WriteByte('\n')
		}
		return b.String()
	}
	n := len(t.Columns)
	widths := make([]int, n)
	for i, c := range t.Columns {
		widths[i] = ansi.StringWidth(c.Header)
	}
	for _, row := range t.Rows {
		for i := 0; i < n && i < len(row); i++ {
			widths[i] = max(widths[i], ansi.StringWidth(oneLine(row[i])))
		}
	}
	fit(widths, t.Columns, width)
	line := func(cells []string, header bool) {
		var l strings.Builder
		for i := 0; i < n; i++ {
			c := ""
			if i < len(cells) {
				c = oneLine(cells[i])
			}
			if ansi.StringWidth(c) > widths[i] {
				c = ansi.Truncate(c, widths[i], "…")
			}
			if header && cs != nil {
				c = cs.Bold(c)
			}
			l.WriteString(c)
			if i < n-1 {
				l.WriteString(strings.Repeat(" ", widths[i]-ansi.StringWidth(c)+2))
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " "))
		b.WriteByte('\n')
	}
	headers := make([]string, n)
	for i, c := range t.Columns {
		headers[i] = strings.ToUpper(c.Header)
	}
	line(headers, true)
	for _, row := range t.Rows {
		line(row, false)
	}
	return b.String()
}

// fit shrinks the widest truncatable columns until the row fits width.
func fit(widths []int, cols []Column, width int) {
	total := func() int {
		s := 2 * (len(widths) - 1)
		for _, w := range widths {
			s += w
		}
		return s
	}
	for _, floor := range []int{minCell, lastResort} {
		for total() > width {
			widest := -1
			for i, w := range widths {
				if cols[i].NoTruncate || w <= floor {
					continue
				}
				if widest < 0 || w > widths[widest] {
					widest = i
				}
			}
			if widest < 0 {
				break // nothing left to shrink at this floor
			}
			widths[widest]--
		}
	}
}

// oneLine keeps a terminal cell on one line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n\t") {
		return s
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
}

package cmdutil

import "strings"

// Format is the output format of a command (cli.md §4).
type Format string

// The formats.
const (
	FormatTable Format = "table"
	FormatJSON  Format = "json"
)

// ParseFormat accepts table and json, and log as a hidden alias of json.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "table":
		return FormatTable, nil
	case "json", "log":
		return FormatJSON, nil
	}
	return "", FlagErrorf("invalid --format %q: valid formats are table, json", s)
}

package iostreams

// ColorScheme styles text for one stream. With colour off every method returns its input
// unchanged, so tests compare plain strings.
type ColorScheme struct {
	enabled bool
}

// ColorScheme returns the scheme for a stream.
func (s *IOStreams) ColorScheme(st Stream) *ColorScheme {
	return &ColorScheme{enabled: s.ColorEnabled(st)}
}

// Enabled reports whether the scheme colours anything.
func (c *ColorScheme) Enabled() bool { return c.enabled }

func (c *ColorScheme) wrap(code, s string) string {
	if !c.enabled || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// Success is green.
func (c *ColorScheme) Success(s string) string { return c.wrap("32", s) }

// Failure is red.
func (c *ColorScheme) Failure(s string) string { return c.wrap("31", s) }

// Warning is yellow.
func (c *ColorScheme) Warning(s string) string { return c.wrap("33", s) }

// Info is blue.
func (c *ColorScheme) Info(s string) string { return c.wrap("34", s) }

// Dim is faint.
func (c *ColorScheme) Dim(s string) string { return c.wrap("2", s) }

// Bold is bold.
func (c *ColorScheme) Bold(s string) string { return c.wrap("1", s) }

// Status colours a run status word (cli.md §4.5); "aborted" counts as cancelled.
func (c *ColorScheme) Status(status string) string {
	switch status {
	case "completed":
		return c.Success(status)
	case "running":
		return c.Info(status)
	case "pending":
		return c.Dim(status)
	case "failed":
		return c.Failure(status)
	case "cancelled", "aborted":
		return c.Warning(status)
	}
	return status
}

// Package tui draws owlmetry on terminals: tables with a terminal layout and a stable
// piped layout, value formatting (relative times, durations, progress), the sentences
// that end a wait, and the three progress reporters of a wait — Bar (a live Bubble Tea
// display on stderr), Lines (plain throttled lines for logs) and Quiet.
//
// Everything that draws is a pure function of its inputs (data, a colour scheme, a
// width, the time), so tests check text without a terminal. The Bubble Tea program of
// Bar only turns messages into state and state into that text; it reads no keyboard and
// installs no signal handler, so Ctrl-C stays the command's own business.
package tui

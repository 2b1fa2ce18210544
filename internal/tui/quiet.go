package tui

import "github.com/owlmetry/owlmetry/internal/apitype"

// QuietReporter shows nothing: JSON output and --progress none.
type QuietReporter struct{}

// Quiet returns the reporter that shows nothing.
func Quiet() QuietReporter { return QuietReporter{} }

// Start does nothing.
func (QuietReporter) Start([]apitype.JobRun) {}

// Update does nothing.
func (QuietReporter) Update(apitype.JobRun) {}

// Outage does nothing.
func (QuietReporter) Outage(string, error) {}

// Note does nothing.
func (QuietReporter) Note(string) {}

// Tick does nothing.
func (QuietReporter) Tick() {}

// Stop does nothing.
func (QuietReporter) Stop() {}

package tui

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

// Throttling of plain lines (cli.md §6.6).
const (
	// lineEvery is the least time between two progress records of one run.
	lineEvery = 10 * time.Second
	// repeatEvery repeats a record when nothing changed, so a CI log shows life.
	repeatEvery = 60 * time.Second
)

// Lines reports a wait as plain, throttled lines on stderr: no ANSI sequences, no
// carriage returns, one record per change of status and at most one per run every 10 s
// for progress, so CI logs stay readable.
type Lines struct {
	mu    sync.Mutex
	w     io.Writer
	now   func() time.Time
	start time.Time
	order []string
	runs  map[string]*lineState
}

type lineState struct {
	printed   *apitype.JobRun
	printedAt time.Time
	pending   *apitype.JobRun
	outage    bool
}

// NewLines returns a Lines reporter writing to w.
func NewLines(w io.Writer, now func() time.Time) *Lines {
	if now == nil {
		now = time.Now
	}
	return &Lines{w: w, now: now, runs: map[string]*lineState{}}
}

// Start prints `waiting for <job_type> run <id>` and the first record of every run.
func (l *Lines) Start(runs []apitype.JobRun) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start = l.now()
	for _, r := range runs {
		fmt.Fprintf(l.w, "waiting for %s run %s\n", r.JobType, r.ID)
	}
	for _, r := range runs {
		st := &lineState{}
		l.runs[r.ID] = st
		l.order = append(l.order, r.ID)
		l.print(st, r, l.now())
	}
}

// Update prints a record when the status changed, or when the progress changed and this
// run's last record is at least 10 s old. Otherwise the newest state waits for Tick.
func (l *Lines) Update(run apitype.JobRun) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.runs[run.ID]
	if !ok {
		st = &lineState{}
		l.runs[run.ID] = st
		l.order = append(l.order, run.ID)
	}
	st.outage = false
	now := l.now()
	switch {
	case st.printed == nil || st.printed.Status != run.Status:
		l.print(st, run, now)
	case sameProgress(*st.printed, run):
		st.pending = nil // nothing new; Tick repeats the record after a minute
	case now.Sub(st.printedAt) >= lineEvery:
		l.print(st, run, now)
	default:
		st.pending = &run
	}
}

// Tick prints a pending state once its run's 10 s are up, and repeats an unchanged
// record every 60 s.
func (l *Lines) Tick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, id := range l.order {
		st := l.runs[id]
		if st.printed == nil || st.printed.Status.Terminal() {
			continue
		}
		switch {
		case st.pending != nil && now.Sub(st.printedAt) >= lineEvery:
			l.print(st, *st.pending, now)
		case st.pending == nil && now.Sub(st.printedAt) >= repeatEvery:
			l.print(st, *st.printed, now)
		}
	}
}

// Outage prints `+<elapsed> <short-id> <job_type> reconnecting: <cause>` once per outage.
func (l *Lines) Outage(runID string, cause error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.runs[runID]
	if !ok || st.outage {
		return
	}
	st.outage = true
	jobType := ""
	if st.printed != nil {
		jobType = st.printed.JobType
	}
	fmt.Fprintf(l.w, "+%s %s %s reconnecting: %s\n", Elapsed(l.now().Sub(l.start)), ShortID(runID), jobType, oneLine(cause.Error()))
}

// Note prints a line as it is.
func (l *Lines) Note(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, line)
}

// Stop does nothing: every line is already written.
func (l *Lines) Stop() {}

func (l *Lines) print(st *lineState, run apitype.JobRun, now time.Time) {
	fmt.Fprintln(l.w, LineRecord(run, now.Sub(l.start)))
	r := run
	st.printed, st.printedAt, st.pending = &r, now, nil
}

// LineRecord renders one record (cli.md §6.6):
// `+<elapsed> <short-id> <job_type> <status>[ <progress>][ <message>]`, with a fan-out's
// inner progress in parentheses and `stopping` once cancellation was requested.
func LineRecord(run apitype.JobRun, elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "+%s %s %s %s", Elapsed(elapsed), ShortID(run.ID), run.JobType, run.Status)
	if p := run.Progress; p != nil {
		b.WriteString(" " + ProgressText(p))
		if p.Message != "" {
			b.WriteString(" " + oneLine(p.Message))
		}
		if in := p.Inner; in != nil {
			fmt.Fprintf(&b, " (%d/%d", in.Processed, in.Total)
			if in.Message != "" {
				b.WriteString(" " + oneLine(in.Message))
			}
			b.WriteString(")")
		}
	}
	if run.CancelRequestedAt != nil && run.Status.Active() {
		b.WriteString(" stopping")
	}
	return b.String()
}

func sameProgress(a, b apitype.JobRun) bool {
	if (a.CancelRequestedAt == nil) != (b.CancelRequestedAt == nil) {
		return false
	}
	pa, pb := a.Progress, b.Progress
	if pa == nil || pb == nil {
		return pa == nil && pb == nil
	}
	if pa.Processed != pb.Processed || pa.Total != pb.Total || pa.Message != pb.Message {
		return false
	}
	ia, ib := pa.Inner, pb.Inner
	if ia == nil || ib == nil {
		return ia == nil && ib == nil
	}
	return *ia == *ib
}

package tui

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/iostreams"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// Layout rules of the bar (cli.md §6.5).
const (
	minBarWidth    = 10
	maxBarWidth    = 40
	noBarBelow     = 60 // terminals narrower than this get no bar
	messageReserve = 40 // columns a message keeps before the bar grows
	barFPS         = 10
)

// Messages of the bar model. Fetching happens elsewhere; news arrives as messages.
type (
	startMsg    []apitype.JobRun
	snapshotMsg apitype.JobRun
	outageMsg   struct{ runID string }
	elapsedMsg  time.Time
	stopMsg     struct{}
)

type barRow struct {
	run     apitype.JobRun
	outage  bool
	endedAt time.Time
}

// barModel is the live display: one row per run, refreshed on every snapshot and every
// second for the elapsed time.
type barModel struct {
	cs    *iostreams.ColorScheme
	now   func() time.Time
	start time.Time
	width int
	order []string
	rows  map[string]*barRow
	spin  spinner.Model
	prog  progress.Model
	frame int
	final bool
}

func newBarModel(cs *iostreams.ColorScheme, now func() time.Time, width int) barModel {
	prog := progress.New(progress.WithoutPercentage(), progress.WithFillCharacters('█', '░'))
	if cs.Enabled() {
		prog.FullColor = lipgloss.Blue
		prog.EmptyColor = lipgloss.BrightBlack
	} else {
		prog.FullColor = lipgloss.NoColor{}
		prog.EmptyColor = lipgloss.NoColor{}
	}
	return barModel{
		cs:    cs,
		now:   now,
		start: now(),
		width: width,
		rows:  map[string]*barRow{},
		spin:  spinner.New(spinner.WithSpinner(spinner.MiniDot)),
		prog:  prog,
	}
}

func tickElapsed() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return elapsedMsg(t) })
}

// Init starts the spinner and the elapsed-time refresh.
func (m barModel) Init() tea.Cmd { return tea.Batch(m.spin.Tick, tickElapsed()) }

// Update only changes state.
func (m barModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case startMsg:
		m.start = m.now()
		for _, r := range msg {
			m.add(r)
		}
		return m, nil
	case snapshotMsg:
		m.add(apitype.JobRun(msg))
		return m, nil
	case outageMsg:
		if row, ok := m.rows[msg.runID]; ok {
			row.outage = true
		}
		return m, nil
	case elapsedMsg:
		return m, tickElapsed()
	case stopMsg:
		m.final = true
		return m, tea.Quit
	case tea.WindowSizeMsg:
		if msg.Width > 0 {
			m.width = msg.Width
		}
		return m, nil
	case spinner.TickMsg:
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		m.frame++
		return m, cmd
	}
	return m, nil
}

func (m *barModel) add(r apitype.JobRun) {
	row, ok := m.rows[r.ID]
	if !ok {
		row = &barRow{}
		m.rows[r.ID] = row
		m.order = append(m.order, r.ID)
	}
	row.run, row.outage = r, false
	if r.Status.Terminal() && row.endedAt.IsZero() {
		row.endedAt = m.now()
	}
}

// View wraps render. The final frame ends with an empty line: when the program exits,
// the renderer clears from the start of the view's last line down, and that line is
// the only one that must not hold a row.
func (m barModel) View() tea.View {
	content := m.render()
	if m.final {
		content += "\n"
	}
	v := tea.NewView(content)
	v.DisableBracketedPasteMode = true // no input is read, so nothing is pasted
	return v
}

// render draws every row; each is exactly one terminal line and never wraps.
func (m barModel) render() string {
	if len(m.order) == 0 {
		return ""
	}
	width := m.width
	if width <= 0 {
		width = 80
	}
	now := m.now()
	labelW, countsW, msgW := 0, 0, 0
	for _, id := range m.order {
		r := m.rows[id]
		labelW = max(labelW, ansi.StringWidth(jobtype.LabelOf(r.run.JobType)))
		countsW = max(countsW, len(counts(r.run)))
		msgW = max(msgW, ansi.StringWidth(m.message(r)))
	}
	elapsedW := len(Elapsed(now.Sub(m.start)))
	// glyph, label, id, the bar cell, counts, message and elapsed, two spaces apart.
	fixed := 1 + 1 + labelW + 2 + 8 + 2 + 2 + countsW + 2 + 2 + elapsedW
	barW := 0
	if width >= noBarBelow {
		barW = max(minBarWidth, min(maxBarWidth, width-fixed-5-min(msgW, messageReserve)))
	}
	cellW := barW + 5 // bar, a space and "100%"
	if barW == 0 {
		cellW = 4
	}
	for _, id := range m.order {
		cellW = max(cellW, ansi.StringWidth(m.textCell(m.rows[id])))
	}
	lines := make([]string, 0, len(m.order))
	for _, id := range m.order {
		lines = append(lines, m.row(m.rows[id], now, width, labelW, barW, cellW, countsW, elapsedW))
	}
	return strings.Join(lines, "\n")
}

// textCell is what a row without a drawn bar shows in the bar's place.
func (m barModel) textCell(r *barRow) string {
	p := r.run.Progress
	switch {
	case r.run.Status == apitype.StatusPending:
		return "queued"
	case p == nil || p.Total <= 0:
		n := int64(0)
		if p != nil {
			n = p.Processed
		}
		return fmt.Sprintf("%d processed", n)
	}
	return ""
}

func (m barModel) row(r *barRow, now time.Time, width, labelW, barW, cellW, countsW, elapsedW int) string {
	var b strings.Builder
	b.WriteString(m.glyph(r))
	b.WriteString(" ")
	label := jobtype.LabelOf(r.run.JobType)
	b.WriteString(m.cs.Bold(label) + strings.Repeat(" ", labelW-ansi.StringWidth(label)))
	b.WriteString("  " + ShortID(r.run.ID) + "  ")

	var cell string
	if text := m.textCell(r); text != "" {
		cell = m.cs.Dim(text)
	} else {
		pct, _ := Percent(r.run.Progress)
		if barW > 0 {
			bar := m.prog
			bar.SetWidth(barW)
			cell = bar.ViewAs(float64(pct)/100) + " "
		}
		cell += fmt.Sprintf("%3d%%", pct)
	}
	b.WriteString(cell + strings.Repeat(" ", max(0, cellW-ansi.StringWidth(cell))))
	c := counts(r.run)
	b.WriteString("  " + c + strings.Repeat(" ", countsW-len(c)))

	end := now
	if !r.endedAt.IsZero() {
		end = r.endedAt
	}
	elapsed := Elapsed(end.Sub(m.start))
	head := b.String()
	room := width - ansi.StringWidth(head) - 2 - 2 - elapsedW
	msg := m.message(r)
	if room < 1 {
		msg = ""
	} else if ansi.StringWidth(msg) > room {
		msg = ansi.Truncate(msg, room, "…")
	}
	if r.outage || (r.run.CancelRequestedAt != nil && r.run.Status.Active()) {
		msg = m.cs.Warning(msg)
	}
	pad := max(0, room-ansi.StringWidth(msg))
	line := head + "  " + msg + strings.Repeat(" ", pad) + "  " + strings.Repeat(" ", elapsedW-len(elapsed)) + m.cs.Dim(elapsed)
	line = strings.TrimRight(line, " ")
	if ansi.StringWidth(line) > width {
		line = ansi.Truncate(line, width, "…")
	}
	return line
}

func (m barModel) glyph(r *barRow) string {
	if r.run.Status.Active() {
		if m.final {
			return m.cs.Dim("…")
		}
		frames := m.spin.Spinner.Frames
		return m.cs.Info(frames[m.frame%len(frames)])
	}
	switch {
	case r.run.Aborted():
		return m.cs.Warning("!")
	case r.run.Status == apitype.StatusCompleted:
		return m.cs.Success("✓")
	case r.run.Status == apitype.StatusFailed:
		return m.cs.Failure("✗")
	default:
		return m.cs.Warning("⊘")
	}
}

// message is the message cell: reconnecting…, stopping…, or the progress message
// followed by a fan-out's inner progress.
func (m barModel) message(r *barRow) string {
	switch {
	case r.outage:
		return "reconnecting…"
	case r.run.CancelRequestedAt != nil && r.run.Status.Active():
		return "stopping…"
	}
	p := r.run.Progress
	if p == nil {
		return ""
	}
	msg := oneLine(p.Message)
	if in := p.Inner; in != nil {
		inner := fmt.Sprintf("%d/%d", in.Processed, in.Total)
		if in.Message != "" {
			inner += " " + oneLine(in.Message)
		}
		msg = strings.TrimSpace(msg + " " + inner)
	}
	return msg
}

func counts(run apitype.JobRun) string {
	if p := run.Progress; p != nil && p.Total > 0 {
		return fmt.Sprintf("%d/%d", p.Processed, p.Total)
	}
	return ""
}

// Bar shows a wait as a live Bubble Tea display on stderr. It takes no keyboard input
// and installs no signal handler: Ctrl-C stays a signal, which Run owns.
type Bar struct {
	ctx context.Context
	ios *iostreams.IOStreams
	now func() time.Time

	mu      sync.Mutex
	program *tea.Program
	done    chan struct{}
	err     error
}

// NewBar prepares the live display; it starts drawing when waiting begins. ctx ends it
// early (the last frame is then not guaranteed).
func NewBar(ctx context.Context, ios *iostreams.IOStreams, now func() time.Time) *Bar {
	if now == nil {
		now = time.Now
	}
	return &Bar{ctx: ctx, ios: ios, now: now}
}

// Start begins drawing.
func (b *Bar) Start(runs []apitype.JobRun) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.program != nil {
		return
	}
	cs := b.ios.ColorScheme(iostreams.Stderr)
	width := b.ios.TerminalWidth(iostreams.Stderr)
	started, _ := newBarModel(cs, b.now, width).Update(startMsg(runs))
	profile := colorprofile.Ascii
	if cs.Enabled() {
		profile = colorprofile.ANSI
	}
	b.program = tea.NewProgram(started,
		tea.WithContext(b.ctx),
		tea.WithOutput(b.ios.ErrOut),
		tea.WithInput(nil),
		tea.WithoutSignalHandler(),
		tea.WithFPS(barFPS),
		tea.WithColorProfile(profile),
		tea.WithWindowSize(width, 24),
		tea.WithEnvironment([]string{"TERM=" + b.ios.Env("TERM")}),
	)
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		_, err := b.program.Run()
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}()
}

func (b *Bar) send(msg tea.Msg) {
	b.mu.Lock()
	p := b.program
	b.mu.Unlock()
	if p != nil {
		p.Send(msg)
	}
}

// Update redraws with a new snapshot.
func (b *Bar) Update(run apitype.JobRun) { b.send(snapshotMsg(run)) }

// Outage shows reconnecting… for the run until its next snapshot.
func (b *Bar) Outage(runID string, _ error) { b.send(outageMsg{runID: runID}) }

// Note prints a line above the display.
func (b *Bar) Note(line string) {
	b.mu.Lock()
	p := b.program
	b.mu.Unlock()
	if p == nil {
		_, _ = io.WriteString(b.ios.ErrOut, line+"\n")
		return
	}
	p.Println(line)
}

// Tick does nothing: the display refreshes itself.
func (b *Bar) Tick() {}

// Stop draws the final frame, leaves it in the scrollback, restores the cursor and
// returns once the program has exited.
func (b *Bar) Stop() {
	b.mu.Lock()
	p, done := b.program, b.done
	b.mu.Unlock()
	if p == nil {
		return
	}
	p.Send(stopMsg{})
	<-done
}

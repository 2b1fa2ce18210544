package engine

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

// maxProgressMessage is the longest message stored (engine.md §7.1).
const maxProgressMessage = 500

// progressReporter keeps a run's latest progress in memory and persists it throttled:
// the first report at once, then at most one write per interval, the latest value of a
// window always written at its end (engine.md §7.2). Report never blocks on the database.
type progressReporter struct {
	write    func(ctx context.Context, p *apitype.Progress) error
	interval time.Duration

	mu        sync.Mutex
	outer     *apitype.Progress
	inner     map[string]*apitype.InnerProgress
	lastInner string
	persisted *apitype.Progress
	version   int
	written   int
	closed    bool

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

func newProgressReporter(interval time.Duration, write func(context.Context, *apitype.Progress) error) *progressReporter {
	p := &progressReporter{
		write: write, interval: interval, inner: map[string]*apitype.InnerProgress{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go p.loop()
	return p
}

func sanitizeCounts(processed, total int64) (int64, int64) {
	if processed < 0 {
		processed = 0
	}
	if total < 0 {
		total = 0
	}
	if total > 0 && processed > total {
		processed = total
	}
	return processed, total
}

func sanitizeMessage(m string) string {
	m = strings.TrimSpace(strings.ToValidUTF8(m, "\uFFFD"))
	if utf8.RuneCountInString(m) > maxProgressMessage {
		r := []rune(m)
		m = string(r[:maxProgressMessage])
	}
	return m
}

// Report replaces the outer progress value.
func (p *progressReporter) Report(processed, total int64, message string) {
	processed, total = sanitizeCounts(processed, total)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return // reports after the handler returned are ignored
	}
	p.outer = &apitype.Progress{Processed: processed, Total: total, Message: sanitizeMessage(message)}
	p.version++
	p.mu.Unlock()
	p.signal()
}

// Inner returns a reporter for one project of a fan-out.
func (p *progressReporter) Inner(projectID string) InnerReporter {
	return &innerReporter{p: p, projectID: projectID}
}

type innerReporter struct {
	p         *progressReporter
	projectID string
}

func (r *innerReporter) Report(processed, total int64, message string) {
	processed, total = sanitizeCounts(processed, total)
	p := r.p
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.inner[r.projectID] = &apitype.InnerProgress{Processed: processed, Total: total, Message: sanitizeMessage(message), ProjectID: r.projectID}
	p.lastInner = r.projectID
	p.version++
	p.mu.Unlock()
	p.signal()
}

func (r *innerReporter) Done() {
	p := r.p
	p.mu.Lock()
	delete(p.inner, r.projectID)
	if p.lastInner == r.projectID {
		p.lastInner = ""
		for id := range p.inner { // any project still in flight
			p.lastInner = id
			break
		}
	}
	p.version++
	p.mu.Unlock()
	p.signal()
}

func (p *progressReporter) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// currentLocked returns the value to persist; nil until the first report.
func (p *progressReporter) currentLocked() *apitype.Progress {
	if p.outer == nil && len(p.inner) == 0 {
		return nil
	}
	out := apitype.Progress{}
	if p.outer != nil {
		out = *p.outer
	}
	if in, ok := p.inner[p.lastInner]; ok {
		c := *in
		out.Inner = &c
	}
	return &out
}

func (p *progressReporter) loop() {
	defer close(p.done)
	var last time.Time
	for {
		select {
		case <-p.stop:
			return
		case <-p.wake:
		}
		// The first write happens at once; later ones wait for the window to end, and
		// then write whatever is newest (the trailing edge).
		if !last.IsZero() {
			if wait := p.interval - time.Since(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-p.stop:
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
		p.mu.Lock()
		cur := p.currentLocked()
		same := reflect.DeepEqual(cur, p.persisted)
		p.mu.Unlock()
		if cur == nil || same {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := p.write(ctx, cur)
		cancel()
		last = time.Now()
		if err == nil {
			p.mu.Lock()
			p.persisted = cur
			p.written++
			p.mu.Unlock()
		}
	}
}

// close stops persisting and returns the last reported value, which the finalisation
// stores (engine.md §7.3).
func (p *progressReporter) close() *apitype.Progress {
	p.mu.Lock()
	p.closed = true
	cur := p.currentLocked()
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	return cur
}

// finalProgress applies the end-of-run rule: a completed run with total > 0 ends at
// processed = total without inner; everything else keeps the last value as it is.
func finalProgress(last *apitype.Progress, status apitype.Status) *apitype.Progress {
	if last == nil {
		return nil
	}
	out := *last
	if status == apitype.StatusCompleted && out.Total > 0 {
		out.Processed = out.Total
		out.Inner = nil
	}
	return &out
}

func (p *progressReporter) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

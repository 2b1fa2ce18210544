package emukit

import (
	"net/http"
	"sync"
	"time"
)

// DefaultJournalSize is how many requests the journal keeps before dropping the oldest
// (upstreams.md §7.4).
const DefaultJournalSize = 100_000

// journalBodyLimit is how much of each request and response body an entry keeps.
const journalBodyLimit = 64 << 10

// Entry is one vendor-route request as the emulator saw and answered it. Tests assert on
// entries: the headers a client sent, the page sizes it asked for, the rate it kept.
type Entry struct {
	// Seq numbers entries in the order they completed, from 1. It never repeats within
	// one Kit, even across ClearRequests and resets.
	Seq int64 `json:"seq"`
	// Time is the emulator clock when the request arrived.
	Time time.Time `json:"time"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// Path is the escaped path as sent.
	Path string `json:"path"`
	// Query is the raw query string.
	Query string `json:"query"`
	// Headers are all request headers.
	Headers http.Header `json:"headers"`
	// Body is the first 64 KiB of the request body.
	Body string `json:"body,omitempty"`
	// RemoteAddr is the client's address, as the vendor would key per-IP limits.
	RemoteAddr string `json:"remote_addr"`
	// Status is the status answered, 0 when the connection was dropped or the client left
	// before an answer.
	Status int `json:"status"`
	// ResponseHeaders are the headers answered.
	ResponseHeaders http.Header `json:"response_headers,omitempty"`
	// ResponseBody is the first 64 KiB of the body the emulator meant to send (before a
	// truncation fault cut it).
	ResponseBody string `json:"response_body,omitempty"`
	// FaultID names the fault rule applied, if any.
	FaultID string `json:"fault_id,omitempty"`
	// Duration is the wall-clock time spent answering, delays included.
	Duration Duration `json:"duration"`
	// Error says why no complete answer went out (dropped connection, truncated body,
	// client gone); empty for a normal answer.
	Error string `json:"error,omitempty"`
}

// Filter selects journal entries. Zero fields match everything.
type Filter struct {
	// Since keeps entries with Seq greater than it.
	Since int64
	// Method keeps entries with exactly this method.
	Method string
	// Path keeps entries whose escaped path matches this pattern: segments compare
	// exactly, "*" matches one segment and "**" any number of them.
	Path string
}

func (f Filter) match(e *Entry) bool {
	if e.Seq <= f.Since {
		return false
	}
	if f.Method != "" && e.Method != f.Method {
		return false
	}
	return f.Path == "" || MatchPath(f.Path, e.Path)
}

// journal is a ring buffer of entries.
type journal struct {
	mu      sync.Mutex
	entries []Entry // ring storage, len ≤ size
	start   int     // index of the oldest entry once the ring is full
	size    int
	seq     int64
}

func newJournal(size int) *journal {
	if size <= 0 {
		size = DefaultJournalSize
	}
	return &journal{size: size}
}

func (j *journal) add(e Entry) int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	e.Seq = j.seq
	if len(j.entries) < j.size {
		j.entries = append(j.entries, e)
		return e.Seq
	}
	j.entries[j.start] = e
	j.start = (j.start + 1) % j.size
	return e.Seq
}

func (j *journal) list(f Filter) []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := []Entry{}
	n := len(j.entries)
	for i := range n {
		e := &j.entries[(j.start+i)%n]
		if f.match(e) {
			out = append(out, cloneEntry(e))
		}
	}
	return out
}

func (j *journal) clear() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = nil
	j.start = 0
}

func (j *journal) lastSeq() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.seq
}

func cloneEntry(e *Entry) Entry {
	c := *e
	c.Headers = e.Headers.Clone()
	c.ResponseHeaders = e.ResponseHeaders.Clone()
	return c
}

func clip(b []byte) string {
	if len(b) > journalBodyLimit {
		b = b[:journalBodyLimit]
	}
	return string(b)
}

package emukit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ControlPrefix is the reserved path prefix of the control API; no vendor route starts
// with it (upstreams.md §7.7).
const ControlPrefix = "/_emulator/"

// maxRequestBody bounds how much of a request body the Kit reads; the vendors' request
// bodies are small JSON documents.
const maxRequestBody = 8 << 20

// Backend is what an emulator hands the Kit so the generic control routes can reach its
// state and limits as JSON.
type Backend interface {
	// StateJSON returns the whole state as the API's JSON document.
	StateJSON() ([]byte, error)
	// SeedJSON replaces the whole state and makes it the new seed.
	SeedJSON(data []byte) error
	// UpsertJSON adds or replaces entities of one collection in the current state. It
	// returns ErrUnknownCollection for a name the API does not have.
	UpsertJSON(collection string, data []byte) error
	// ResetState returns the state to the last seed and forgets transient vendor state
	// (rate windows, pending storms, tokens).
	ResetState()
	// LimitsJSON returns the rate limits and strictness switches.
	LimitsJSON() ([]byte, error)
	// UpdateLimitsJSON changes limits and switches; fields absent from data keep their
	// values.
	UpdateLimitsJSON(data []byte) error
}

// ErrUnknownCollection is returned by Backend.UpsertJSON for a collection the API does
// not have; the control API answers it with 404.
var ErrUnknownCollection = errors.New("unknown collection")

// Options configure a Kit.
type Options struct {
	// API is the emulator's name, reported by GET /_emulator/health.
	API string
	// Clock is the emulator clock. Defaults to RealClock.
	Clock Clock
	// Vendor serves the vendor's routes, behind the fault rules and the journal.
	Vendor http.Handler
	// Backend exposes state and limits to the control API.
	Backend Backend
	// ErrorBody gives the vendor's usual error body for a status, used by fault rules
	// that set a status without a body. Defaults to a plain-text status line.
	ErrorBody func(status int) (contentType string, body []byte)
	// JournalSize is the journal's ring size. Defaults to DefaultJournalSize.
	JournalSize int
	// RandSeed seeds the generator behind fault probabilities. Defaults to 1, so runs
	// are reproducible.
	RandSeed uint64
	// PublicBaseURL is the base URL clients reach the emulator at, for absolute links in
	// vendor responses. Empty means derived from each request's Host.
	PublicBaseURL string
}

// Kit is the shared machinery of one emulator: fault rules, the request journal, the
// clock, the public base URL and the control API. It is the emulator's http.Handler and
// is safe for concurrent use.
type Kit struct {
	api       string
	clock     Clock
	vendor    http.Handler
	backend   Backend
	errorBody func(int) (string, []byte)
	control   *http.ServeMux
	journal   *journal

	mu         sync.Mutex
	faults     []*FaultRule
	faultSeq   int
	rng        *rand.Rand
	publicBase string

	arrivalsMu sync.Mutex
	arrivals   int64
	changed    chan struct{} // closed and replaced on every arrival and journal entry
}

// New builds a Kit. Vendor and Backend are required.
func New(opts Options) *Kit {
	if opts.Vendor == nil || opts.Backend == nil {
		panic("emukit: Options.Vendor and Options.Backend are required")
	}
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.ErrorBody == nil {
		opts.ErrorBody = PlainErrorBody
	}
	if opts.RandSeed == 0 {
		opts.RandSeed = 1
	}
	k := &Kit{
		api:        opts.API,
		clock:      opts.Clock,
		vendor:     opts.Vendor,
		backend:    opts.Backend,
		errorBody:  opts.ErrorBody,
		control:    http.NewServeMux(),
		journal:    newJournal(opts.JournalSize),
		rng:        rand.New(rand.NewPCG(opts.RandSeed, opts.RandSeed^0x9e3779b97f4a7c15)),
		publicBase: strings.TrimRight(opts.PublicBaseURL, "/"),
		changed:    make(chan struct{}),
	}
	k.routeControl()
	return k
}

// PlainErrorBody is the default vendor error body: the status line as plain text.
func PlainErrorBody(status int) (string, []byte) {
	return "text/plain; charset=utf-8", []byte(strconv.Itoa(status) + " " + http.StatusText(status) + "\n")
}

// Clock returns the emulator clock.
func (k *Kit) Clock() Clock { return k.clock }

// SetPublicBaseURL sets the base URL clients reach the emulator at (owlmetry dev sets it
// once its listener is up).
func (k *Kit) SetPublicBaseURL(u string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.publicBase = strings.TrimRight(u, "/")
}

// PublicBaseURL returns the configured public base URL, or one derived from the
// request's Host when none is configured.
func (k *Kit) PublicBaseURL(r *http.Request) string {
	k.mu.Lock()
	base := k.publicBase
	k.mu.Unlock()
	if base != "" || r == nil {
		return base
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Requests returns the journal entries matching f, oldest first.
func (k *Kit) Requests(f Filter) []Entry { return k.journal.list(f) }

// LastSeq returns the sequence number of the latest journal entry (0 when none yet), a
// handy Filter.Since for "requests from now on".
func (k *Kit) LastSeq() int64 { return k.journal.lastSeq() }

// ClearRequests empties the journal. Sequence numbers keep counting.
func (k *Kit) ClearRequests() { k.journal.clear() }

// Reset returns the emulator to its last seed and clears the journal and the fault
// rules, as POST /_emulator/reset does.
func (k *Kit) Reset() {
	k.backend.ResetState()
	k.ClearFaults()
	k.ClearRequests()
}

// Arrivals returns how many vendor-route requests have arrived so far, answered or not.
func (k *Kit) Arrivals() int64 {
	k.arrivalsMu.Lock()
	defer k.arrivalsMu.Unlock()
	return k.arrivals
}

// WaitArrivals blocks until at least n vendor-route requests have arrived (counted from
// the Kit's creation) or ctx ends. Tests use it to act while a request is in flight —
// held by a delay fault, say — instead of sleeping.
func (k *Kit) WaitArrivals(ctx context.Context, n int64) error {
	return k.waitFor(ctx, func() bool { return k.arrivals >= n })
}

// WaitRecorded blocks until the journal's latest sequence number is at least seq or ctx
// ends: a request that finished in an unusual way (a dropped connection, a client that
// left) is journaled after the client has already seen the outcome.
func (k *Kit) WaitRecorded(ctx context.Context, seq int64) error {
	return k.waitFor(ctx, func() bool { return k.journal.lastSeq() >= seq })
}

func (k *Kit) waitFor(ctx context.Context, cond func() bool) error {
	for {
		k.arrivalsMu.Lock()
		ok, ch := cond(), k.changed
		k.arrivalsMu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notifyLocked wakes every waiter; it runs under arrivalsMu.
func (k *Kit) notifyLocked() {
	close(k.changed)
	k.changed = make(chan struct{})
}

func (k *Kit) noteArrival() {
	k.arrivalsMu.Lock()
	defer k.arrivalsMu.Unlock()
	k.arrivals++
	k.notifyLocked()
}

// ServeHTTP serves the control API under ControlPrefix and every other path through the
// fault rules, the vendor handler and the journal.
func (k *Kit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, ControlPrefix) || r.URL.Path == strings.TrimSuffix(ControlPrefix, "/") {
		k.control.ServeHTTP(w, r)
		return
	}
	k.serveVendor(w, r)
}

func (k *Kit) serveVendor(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	entry := Entry{
		Time:       k.clock.Now(),
		Method:     r.Method,
		Path:       r.URL.EscapedPath(),
		Query:      r.URL.RawQuery,
		Headers:    r.Header.Clone(),
		RemoteAddr: r.RemoteAddr,
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		entry.Error = "read request body: " + err.Error()
		k.finish(&entry, started)
		panic(http.ErrAbortHandler)
	}
	entry.Body = clip(body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	k.noteArrival()

	id, action, faulted := k.applyFault(r, body)
	entry.FaultID = id
	if faulted && action.Delay > 0 {
		t := time.NewTimer(time.Duration(action.Delay))
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			entry.Error = "client went away during the delay"
			k.finish(&entry, started)
			return
		}
	}
	if faulted && action.CloseConnection {
		entry.Error = "connection closed by fault"
		k.finish(&entry, started)
		panic(http.ErrAbortHandler)
	}

	rec := &recorder{header: http.Header{}}
	if faulted && action.Status != 0 {
		k.writeFaultStatus(rec, action)
	} else {
		k.vendor.ServeHTTP(rec, r)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if faulted {
		for name, v := range action.Headers {
			if v == nil {
				rec.header.Del(name)
			} else {
				rec.header.Set(name, *v)
			}
		}
		if action.MalformedJSON {
			orig := bytes.Clone(rec.body.Bytes())
			rec.body.Reset()
			rec.body.Write(malformed(orig))
		}
	}
	full := rec.body.Bytes()
	entry.Status = rec.status
	entry.ResponseHeaders = rec.header.Clone()
	entry.ResponseBody = clip(full)

	for name, vs := range rec.header {
		w.Header()[name] = vs
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(full)))
	if faulted && action.TruncateBodyAt != nil && *action.TruncateBodyAt < len(full) {
		w.WriteHeader(rec.status)
		_, _ = w.Write(full[:*action.TruncateBodyAt])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		entry.Error = "body truncated by fault at " + strconv.Itoa(*action.TruncateBodyAt) + " bytes"
		k.finish(&entry, started)
		panic(http.ErrAbortHandler)
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(full)
	k.finish(&entry, started)
}

func (k *Kit) finish(e *Entry, started time.Time) {
	e.Duration = Duration(time.Since(started))
	k.journal.add(*e)
	k.arrivalsMu.Lock()
	k.notifyLocked()
	k.arrivalsMu.Unlock()
}

func (k *Kit) writeFaultStatus(rec *recorder, a FaultAction) {
	rec.status = a.Status
	switch {
	case len(a.Body) > 0:
		rec.header.Set("Content-Type", "application/json")
		rec.body.Write(a.Body)
	case a.BodyText != "":
		rec.header.Set("Content-Type", "text/plain; charset=utf-8")
		rec.body.WriteString(a.BodyText)
	default:
		ct, body := k.errorBody(a.Status)
		if ct != "" {
			rec.header.Set("Content-Type", ct)
		}
		rec.body.Write(body)
	}
}

// malformed turns a body into one that is not JSON, keeping it recognisable: the first
// half of the original followed by a stray token.
func malformed(orig []byte) []byte {
	out := append([]byte{}, orig[:len(orig)/2]...)
	return append(out, "<<not json"...)
}

// recorder buffers the vendor handler's answer so faults can rewrite it and the journal
// can keep it.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// ClientIP returns the host part of the request's remote address: the key vendors that
// throttle per IP use.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

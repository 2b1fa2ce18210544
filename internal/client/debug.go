package client

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// DebugTransport wraps a transport and writes one line per attempt for --debug
// (cli.md §2.8): `debug: GET https://h/v1/jobs/… → 200 in 45ms`. Headers and bodies are
// never printed, so neither the API key nor a credential in a body can leak.
func DebugTransport(next http.RoundTripper, w io.Writer, now func() time.Time) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if now == nil {
		now = time.Now
	}
	return &debugTransport{next: next, w: &debugWriter{w: w}, now: now}
}

type debugTransport struct {
	next http.RoundTripper
	w    *debugWriter
	now  func() time.Time
}

func (t *debugTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := t.now()
	resp, err := t.next.RoundTrip(req)
	elapsed := t.now().Sub(start).Round(time.Millisecond)
	u := *req.URL
	u.User = nil
	if err != nil {
		t.w.line(fmt.Sprintf("debug: %s %s → error after %s", req.Method, u.String(), elapsed))
		return resp, err
	}
	t.w.line(fmt.Sprintf("debug: %s %s → %d in %s", req.Method, u.String(), resp.StatusCode, elapsed))
	return resp, nil
}

// debugWriter serialises lines from concurrent requests.
type debugWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (d *debugWriter) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.w.Write(p)
}

func (d *debugWriter) line(s string) { _, _ = d.Write([]byte(s + "\n")) }

package server

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/google/uuid"
)

// reqState is what the outer middleware knows about a request and the handlers fill in:
// its id, the matched route pattern (the metrics label) and a logger that names the
// caller once it is known. Only the request's own goroutine touches it.
type reqState struct {
	requestID string
	log       *slog.Logger
	route     string
}

type stateKey struct{}

// stateOf returns the request's state. Requests that did not pass the outer middleware
// (direct handler calls) get a fresh one, so nothing downstream has to check for nil.
func stateOf(r *http.Request) *reqState {
	if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
		return st
	}
	return &reqState{requestID: uuid.NewString(), log: slog.New(slog.DiscardHandler), route: "unmatched"}
}

// setPrincipal adds the caller to every later log line of the request.
func (st *reqState) setPrincipal(p *principal) {
	st.log = st.log.With("actor", p.actor())
}

// requestID echoes the client's X-Request-Id when it is 1–128 printable ASCII
// characters, and makes one up otherwise (api.md §1).
func requestID(given string) string {
	if n := len(given); n >= 1 && n <= 128 {
		ok := true
		for i := 0; i < n; i++ {
			if c := given[i]; c < 0x20 || c > 0x7e {
				ok = false
				break
			}
		}
		if ok {
			return given
		}
	}
	return uuid.NewString()
}

// statusWriter remembers whether and with which status a response was started.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines, Flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush sends buffered data; event streams need it.
func (w *statusWriter) Flush() {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) code() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.status
}

func itoa(n int) string { return strconv.Itoa(n) }

package client

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/owlmetry/owlmetry/internal/apitype"
)

// APIError is a non-2xx answer. It carries the status and the whole decoded error
// envelope, so the error object printed with --format json can copy the server's fields
// unchanged (cli.md §5.1). A 409 that names the active run also unwraps to
// *apitype.ConflictError.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Status is the status line text, "502 Bad Gateway".
	Status string
	// Method and URL name the request.
	Method string
	URL    string
	// Envelope is the decoded body when it is a JSON object, else nil.
	Envelope map[string]json.RawMessage
	// RetryAfter is the Retry-After delay the server asked for, 0 when none.
	RetryAfter time.Duration

	retryAfterSet bool
	err           error
}

// Error renders the message of cli.md §5.1: `E (HTTP s)`, `E: M (HTTP s)` when the
// envelope adds a different message, `M (HTTP s)` for a {statusCode, error, message}
// envelope, and a generic sentence for a body that is not a JSON error.
func (e *APIError) Error() string {
	msg := e.Message()
	if msg == "" {
		status := e.Status
		if status == "" {
			status = fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))
		}
		return fmt.Sprintf("unexpected response from server (HTTP %s)", status)
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, e.StatusCode)
}

// Message is the server's message without the status suffix, "" when the body held none.
func (e *APIError) Message() string {
	errText, message := e.Field("error"), e.Field("message")
	if e.frameworkEnvelope() && message != "" {
		return message
	}
	switch {
	case errText != "" && message != "" && message != errText:
		return errText + ": " + message
	case errText != "":
		return errText
	}
	return message
}

// frameworkEnvelope tells the public server's framework errors ({statusCode, error,
// message} with the HTTP status and its reason phrase) from owlmetry's upstream
// failures, whose statusCode is the upstream's status and whose error is a sentence.
func (e *APIError) frameworkEnvelope() bool {
	raw, ok := e.Envelope["statusCode"]
	if !ok {
		return false
	}
	var code int
	if json.Unmarshal(raw, &code) != nil {
		return false
	}
	return code == e.StatusCode && e.Field("error") == http.StatusText(e.StatusCode)
}

// Unwrap returns the *apitype.ConflictError of a 409, else nil.
func (e *APIError) Unwrap() error { return e.err }

// Field returns a string field of the envelope, "" when absent or not a string.
func (e *APIError) Field(name string) string {
	raw, ok := e.Envelope[name]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// Fields returns the envelope's fields decoded, for the JSON error object.
func (e *APIError) Fields() map[string]any {
	out := make(map[string]any, len(e.Envelope))
	for k, raw := range e.Envelope {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			out[k] = v
		}
	}
	return out
}

func newAPIError(method, rawURL string, status int, statusText string, header http.Header, body []byte) *APIError {
	e := &APIError{StatusCode: status, Status: statusText, Method: method, URL: rawURL}
	var env map[string]json.RawMessage
	if json.Unmarshal(body, &env) == nil && env != nil {
		e.Envelope = env
	}
	e.RetryAfter, e.retryAfterSet = parseRetryAfter(header.Get("Retry-After"), time.Now())
	if status == http.StatusConflict {
		e.err = conflictFrom(e)
	}
	return e
}

// conflictFrom builds the ConflictError of a 409 (api.md §2.3). existing_run_ids maps job
// types to active runs or null (ads sync); nulls are dropped.
func conflictFrom(e *APIError) *apitype.ConflictError {
	c := &apitype.ConflictError{Message: e.Field("error"), ExistingRunID: e.Field("existing_run_id")}
	if raw, ok := e.Envelope["existing_run_ids"]; ok {
		var ids map[string]*string
		if json.Unmarshal(raw, &ids) == nil {
			for k, v := range ids {
				if v != nil && *v != "" {
					if c.ExistingRunIDs == nil {
						c.ExistingRunIDs = map[string]string{}
					}
					c.ExistingRunIDs[k] = *v
				}
			}
		}
	}
	if c.Message == "" {
		c.Message = e.Error()
	}
	return c
}

// StatusOf returns the HTTP status of an *APIError in err's chain, 0 when there is none.
func StatusOf(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// IsNotFound reports an API answer of 404.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsUnauthorized reports an API answer of 401.
func IsUnauthorized(err error) bool { return StatusOf(err) == http.StatusUnauthorized }

// NetworkError is a request that got no HTTP answer (cli.md §5.1): the message is
// `cannot reach <endpoint>: <cause>`.
type NetworkError struct {
	// Endpoint is the base URL the client talks to.
	Endpoint string
	// Cause is the short cause: connection refused, no such host, TLS: …, timed out
	// after 30s, connection reset, or the transport's own text.
	Cause string
	// Refused is true for a refused connection, which on a loopback endpoint earns a hint.
	Refused bool
	// BeforeSend is true when the connection failed before the request was written,
	// which makes even a POST safe to retry.
	BeforeSend bool

	err error
}

func (e *NetworkError) Error() string { return "cannot reach " + e.Endpoint + ": " + e.Cause }

// Unwrap returns the transport error.
func (e *NetworkError) Unwrap() error { return e.err }

// Loopback reports whether the endpoint is on this machine.
func (e *NetworkError) Loopback() bool {
	u, err := url.Parse(e.Endpoint)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// IsNetworkError reports a transport failure.
func IsNetworkError(err error) bool {
	var n *NetworkError
	return errors.As(err, &n)
}

// newNetworkError classifies a transport error. attemptTimedOut is true when the
// per-attempt deadline, not the caller, ended the request.
func newNetworkError(endpoint string, err error, attemptTimedOut bool, timeout time.Duration) *NetworkError {
	n := &NetworkError{Endpoint: endpoint, err: err}
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		certErr *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		recErr  tls.RecordHeaderError
		alert   tls.AlertError
	)
	switch {
	case attemptTimedOut:
		n.Cause = "timed out after " + timeout.String()
	case errors.Is(err, syscall.ECONNREFUSED):
		n.Cause, n.Refused, n.BeforeSend = "connection refused", true, true
	case errors.As(err, &dnsErr):
		n.Cause, n.BeforeSend = "no such host", true
	case errors.As(err, &certErr):
		n.Cause, n.BeforeSend = "TLS: "+certErr.Err.Error(), true
	case errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid):
		n.Cause, n.BeforeSend = "TLS: "+tlsDetail(err), true
	case errors.As(err, &recErr), errors.As(err, &alert):
		n.Cause, n.BeforeSend = "TLS: "+tlsDetail(err), true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		n.Cause = "connection reset"
	default:
		n.Cause = tlsDetail(err)
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			n.BeforeSend = true
		}
	}
	return n
}

// tlsDetail strips the url.Error prefix ("Get \"…\": ") from a transport error.
func tlsDetail(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return strings.TrimPrefix(err.Error(), "tls: ")
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var secs int64
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && fmt.Sprint(secs) == v {
		if secs < 0 {
			secs = 0
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

package itunes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-resty/resty/v2"

	"github.com/owlmetry/owlmetry/internal/build"
	"github.com/owlmetry/owlmetry/internal/metrics"
)

const (
	upstreamName   = "itunes"
	lookupEndpoint = "/lookup"
	// DefaultTimeout bounds one request, body included (upstreams.md §2.1).
	DefaultTimeout = 10 * time.Second
	// MaxBodyBytes is the largest body read; a larger one is error(status) with the
	// message "response too large".
	MaxBodyBytes = 16 << 20
	// MaxRetryAfter is the longest Retry-After wait that is waited (upstreams.md §2.4).
	MaxRetryAfter = 300 * time.Second
)

// Outcome is a call's result class, the vocabulary of jobs.md §3.6 shared by every
// upstream client. The iTunes client produces found, not_found, rate_limited and error;
// auth_error and unavailable belong to APIs with credentials and plans.
type Outcome string

// The outcomes.
const (
	OutcomeFound       Outcome = "found"
	OutcomeNotFound    Outcome = "not_found"
	OutcomeAuthError   Outcome = "auth_error"
	OutcomeRateLimited Outcome = "rate_limited"
	OutcomeUnavailable Outcome = "unavailable"
	OutcomeError       Outcome = "error"
)

// LookupParams say what to look up. Exactly one of BundleID and TrackID is set.
type LookupParams struct {
	// BundleID looks the app up by bundle id (what the jobs use).
	BundleID string
	// TrackID looks the app up by Apple numeric id.
	TrackID int64
	// Country is the storefront's alpha-2 code, sent lowercased; empty leaves the
	// storefront to the API (the US one).
	Country string
	// Attempt is the caller's attempt number, for the debug log only. Zero reads as 1.
	Attempt int
}

// Waits are the pacer waits one call made before its request went out, for the
// callers' result counters (upstreams.md §2.3).
type Waits struct {
	// Count is 1 when the call had to wait for its slot, else 0.
	Count int
	// Total is how long it waited.
	Total time.Duration
}

// LookupResult is the outcome of one lookup attempt.
type LookupResult struct {
	// Outcome classifies the answer (upstreams.md §6.3).
	Outcome Outcome
	// Status is the HTTP status; 0 for a network error or timeout.
	Status int
	// Transient marks error outcomes worth retrying: 5xx, network errors, timeouts and
	// unparsable 2xx bodies. The caller owns the retry policy (jobs.md §11.3, §12.3).
	Transient bool
	// Message explains a rate_limited or error outcome: the API's errorMessage or the
	// raw body, cleaned and cut to 500 characters, or what went wrong on the wire.
	Message string
	// App is the first result of a found outcome, else nil.
	App *App
	// RetryAfter is the wait a throttled or 5xx answer asked for in its Retry-After
	// header (whole seconds or an HTTP date, upstreams.md §2.4), 0 when it had none.
	// Apple's throttle sends none today. A throttled answer's wait of at most
	// MaxRetryAfter also holds the shared pacer, so no caller of the process sends
	// before it has passed; a longer one is the caller's cue to give up.
	RetryAfter time.Duration
	// Waits are the pacer waits before the request.
	Waits Waits
}

// Options configure a Client.
type Options struct {
	// BaseURL is the API base (Config.BaseURL); validated with ParseBaseURL.
	BaseURL string
	// Pacer is the process's shared pacer. Nil gives the client a private one with the
	// default settings, which suits tests and one-off tools only.
	Pacer *Pacer
	// Transport carries the requests. Nil means the package's shared transport; callers
	// that own one transport for every upstream pass it here.
	Transport http.RoundTripper
	// Timeout bounds each request, body included. Defaults to DefaultTimeout.
	Timeout time.Duration
	// Version goes into User-Agent: owlmetry/<version>. Defaults to the build version.
	Version string
	// Metrics receives the upstream metrics of upstreams.md §2.7; nil records nothing.
	Metrics *metrics.Set
	// Logger receives one debug line per attempt. Nil discards.
	Logger *slog.Logger
}

// Client calls the iTunes Lookup API (upstreams.md §6). It makes exactly one attempt per
// call, paced and capped by the shared Pacer, and reports the outcome; retries belong to
// the calling job. It is safe for concurrent use.
type Client struct {
	base    string
	http    *resty.Client
	pacer   *Pacer
	timeout time.Duration
	metrics *metrics.Set
	log     *slog.Logger
}

var (
	sharedTransportOnce sync.Once
	sharedTransport     *http.Transport
)

// SharedTransport returns the process-wide transport the client uses by default:
// keep-alive, verified TLS, enough idle connections per host for the concurrency cap.
func SharedTransport() *http.Transport {
	sharedTransportOnce.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 32
		sharedTransport = t
	})
	return sharedTransport
}

// New builds a client.
func New(opts Options) (*Client, error) {
	base, err := ParseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("itunes base URL %q: %w", redactURL(opts.BaseURL), err)
	}
	if opts.Pacer == nil {
		opts.Pacer = NewPacer(PacerOptions{Metrics: opts.Metrics})
	}
	if opts.Transport == nil {
		opts.Transport = SharedTransport()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Version == "" {
		opts.Version = build.Current().Version
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	hc := &http.Client{
		Transport: opts.Transport,
		// A 3xx is an answer like any other (error(status)); following it could leave
		// the configured host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	rc := resty.NewWithClient(hc).
		SetLogger(restyLogger{opts.Logger}).
		SetResponseBodyLimit(MaxBodyBytes).
		SetHeader("User-Agent", "owlmetry/"+opts.Version).
		SetHeader("Accept", "application/json")
	return &Client{base: base, http: rc, pacer: opts.Pacer, timeout: opts.Timeout, metrics: opts.Metrics, log: opts.Logger}, nil
}

// Pacer returns the pacer the client uses.
func (c *Client) Pacer() *Pacer { return c.pacer }

// Lookup makes one paced lookup attempt and classifies the answer. Every upstream
// answer, failures included, comes back as a LookupResult with a nil error; the error
// is non-nil only when ctx ended (before or during the request or the wait — it then
// wraps ctx.Err()) or the params are unusable.
func (c *Client) Lookup(ctx context.Context, p LookupParams) (LookupResult, error) {
	query := url.Values{}
	switch {
	case p.BundleID != "" && p.TrackID != 0:
		return LookupResult{}, errors.New("itunes lookup: give a bundle id or a track id, not both")
	case p.BundleID != "":
		query.Set("bundleId", p.BundleID)
	case p.TrackID > 0:
		query.Set("id", strconv.FormatInt(p.TrackID, 10))
	default:
		return LookupResult{}, errors.New("itunes lookup: a bundle id or a positive track id is required")
	}
	if p.Country != "" {
		query.Set("country", strings.ToLower(p.Country))
	}

	permit, err := c.pacer.Acquire(ctx)
	if err != nil {
		return LookupResult{}, fmt.Errorf("itunes lookup: %w", err)
	}
	res, err := c.do(ctx, query, p.Attempt)
	if err != nil {
		permit.Release(FeedbackNone)
		return LookupResult{}, err
	}
	switch {
	case res.Outcome == OutcomeRateLimited:
		if res.RetryAfter > 0 && res.RetryAfter <= MaxRetryAfter {
			c.pacer.Hold(c.pacer.clock.Now().Add(res.RetryAfter))
		}
		permit.Release(FeedbackThrottled)
	case res.Transient:
		permit.Release(FeedbackTransient)
	default:
		permit.Release(FeedbackOK)
	}
	if permit.Waited > 0 {
		res.Waits = Waits{Count: 1, Total: permit.Waited}
	}
	return res, nil
}

func (c *Client) do(ctx context.Context, query url.Values, attempt int) (LookupResult, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	started := time.Now()
	resp, err := c.http.R().SetContext(rctx).SetQueryParamsFromValues(query).Get(c.base + lookupEndpoint)
	elapsed := time.Since(started)
	if ctx.Err() != nil {
		// The caller gave up; whatever the wire did is not an upstream outcome.
		c.record("cancelled", elapsed)
		return LookupResult{}, fmt.Errorf("itunes lookup: %w", ctx.Err())
	}

	var res LookupResult
	switch {
	case errors.Is(err, resty.ErrResponseBodyTooLarge):
		res = LookupResult{Outcome: OutcomeError, Status: resp.StatusCode(), Message: "response too large"}
	case err != nil && errors.Is(rctx.Err(), context.DeadlineExceeded):
		res = LookupResult{Outcome: OutcomeError, Transient: true, Message: "timeout after " + c.timeout.String()}
	case err != nil:
		res = LookupResult{Outcome: OutcomeError, Transient: true, Message: "network error: " + networkMessage(err)}
	default:
		res = classify(resp.StatusCode(), resp.Body())
		if res.Outcome == OutcomeRateLimited || res.Transient {
			res.RetryAfter = parseRetryAfter(resp.Header().Get("Retry-After"), c.pacer.clock.Now())
		}
	}

	code := strconv.Itoa(res.Status)
	if res.Status == 0 {
		code = "network"
	}
	c.record(code, elapsed)
	if res.Outcome == OutcomeRateLimited && c.metrics != nil {
		c.metrics.UpstreamThrottle.WithLabelValues(upstreamName).Inc()
	}
	if attempt <= 0 {
		attempt = 1
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "upstream request",
		slog.String("upstream", upstreamName),
		slog.String("method", http.MethodGet),
		slog.String("path", lookupEndpoint+"?"+query.Encode()),
		slog.Int("status", res.Status),
		slog.Duration("duration", elapsed),
		slog.Int("attempt", attempt),
		slog.Any("headers", redactHeaders(c.http.Header)),
	)
	return res, nil
}

// classify maps a complete answer to its outcome (upstreams.md §6.3).
func classify(status int, body []byte) LookupResult {
	res := LookupResult{Status: status}
	switch {
	case status >= 200 && status < 300:
		app, err := parseLookup(body)
		switch {
		case err != nil:
			res.Outcome, res.Transient, res.Message = OutcomeError, true, cleanMessage(err.Error())
		case app == nil:
			res.Outcome = OutcomeNotFound
		default:
			res.Outcome, res.App = OutcomeFound, app
		}
	case status == http.StatusNotFound:
		res.Outcome = OutcomeNotFound
	case status == http.StatusForbidden || status == http.StatusTooManyRequests:
		res.Outcome, res.Message = OutcomeRateLimited, errorMessage(body)
	case status >= 500:
		res.Outcome, res.Transient, res.Message = OutcomeError, true, errorMessage(body)
	default:
		res.Outcome, res.Message = OutcomeError, errorMessage(body)
	}
	return res
}

// parseRetryAfter reads a Retry-After value: a non-negative integer of seconds, or an
// HTTP date (the wait is the date minus now, at least 0). Anything else counts as
// absent, 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > int64(math.MaxInt64/time.Second) {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// networkMessage describes a transport failure without the request URL: the error is
// about the connection, and the URL is the caller's business.
func networkMessage(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return cleanMessage("timeout: " + err.Error())
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "connection closed before the answer was complete"
	}
	return cleanMessage(err.Error())
}

func (c *Client) record(code string, elapsed time.Duration) {
	if c.metrics == nil {
		return
	}
	c.metrics.UpstreamRequests.WithLabelValues(upstreamName, lookupEndpoint, code).Inc()
	c.metrics.UpstreamDuration.WithLabelValues(upstreamName, lookupEndpoint).Observe(elapsed.Seconds())
}

// sensitiveHeaders are never logged with their values (upstreams.md §2.7). iTunes sends
// no credentials; the list keeps this client's logs in the same shape as the others'.
var sensitiveHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key"}

// redactHeaders returns a copy of h with credentials replaced by "[redacted]".
func redactHeaders(h http.Header) http.Header {
	out := h.Clone()
	for _, name := range sensitiveHeaders {
		if out.Get(name) != "" {
			out.Set(name, "[redacted]")
		}
	}
	return out
}

// restyLogger sends resty's own messages to the client's logger at debug level, so the
// library never writes to stderr by itself.
type restyLogger struct{ log *slog.Logger }

func (l restyLogger) Errorf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l restyLogger) Warnf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l restyLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }

package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/go-resty/resty/v2"
)

// Options configure a Client.
type Options struct {
	// Endpoint is the API base URL, already checked: scheme, host and an optional path
	// prefix, no trailing slash. Requests go to Endpoint + "/v1/…" (cli.md §2.8).
	Endpoint string
	// APIKey is sent as `Authorization: Bearer <key>` on every request.
	APIKey string
	// HTTPClient carries the transport (proxy, --debug wrapper). It must have no
	// Timeout: the event stream has none; requests get RequestTimeout per attempt.
	// Defaults to a client with http.DefaultTransport.
	HTTPClient *http.Client
	// RequestTimeout bounds each attempt of a request. Defaults to 30s.
	RequestTimeout time.Duration
	// UserAgent is `owlmetry/<version> (<os>/<arch>)`.
	UserAgent string
	// SleepFunc waits between retries; tests replace it. Defaults to a timer that stops
	// early when ctx ends.
	SleepFunc func(ctx context.Context, d time.Duration) error
}

// Client is the Owlmetry HTTP API as a Go SDK. It never prints, never prompts and knows
// nothing of the command line; every failure is an *APIError, an *apitype.ConflictError
// inside one, or a *NetworkError.
type Client struct {
	endpoint string
	key      string
	timeout  time.Duration
	hc       *http.Client
	r        *resty.Client
	sleep    func(ctx context.Context, d time.Duration) error
}

// New builds a client.
func New(o Options) *Client {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: http.DefaultTransport}
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	if o.SleepFunc == nil {
		o.SleepFunc = sleepCtx
	}
	r := resty.NewWithClient(o.HTTPClient).
		SetBaseURL(o.Endpoint).
		SetHeader("Accept", "application/json").
		SetHeader("Authorization", "Bearer "+o.APIKey).
		SetDisableWarn(true).
		SetLogger(discardLogger{}).
		SetJSONEscapeHTML(false)
	if o.UserAgent != "" {
		r.SetHeader("User-Agent", o.UserAgent)
	}
	return &Client{endpoint: o.Endpoint, key: o.APIKey, timeout: o.RequestTimeout, hc: o.HTTPClient, r: r, sleep: o.SleepFunc}
}

// Endpoint returns the base URL the client talks to.
func (c *Client) Endpoint() string { return c.endpoint }

// request is one API call.
type request struct {
	method string
	path   string // starts with /v1
	query  url.Values
	body   any // nil: no body and no Content-Type
	// noRetry disables the automatic retries; waits have their own policy.
	noRetry bool
}

// retry delays of cli.md §2.8.
var (
	getDelays   = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}
	writeDelays = []time.Duration{500 * time.Millisecond, time.Second}
)

const maxRetryAfter = 60 * time.Second

// do sends a request with the retry policy of cli.md §2.8 and returns the body of a 2xx
// answer.
func (c *Client) do(ctx context.Context, rq request) ([]byte, error) {
	isGet := rq.method == http.MethodGet
	delays := writeDelays
	if isGet {
		delays = getDelays
	}
	for attempt := 0; ; attempt++ {
		body, err := c.once(ctx, rq)
		if err == nil {
			return body, nil
		}
		if rq.noRetry || attempt >= len(delays) || ctx.Err() != nil {
			return nil, err
		}
		delay, ok := retryDelay(err, isGet, delays[attempt])
		if !ok {
			return nil, err
		}
		if serr := c.sleep(ctx, delay); serr != nil {
			return nil, err
		}
	}
}

// retryDelay decides whether a failed attempt is retried and after how long.
func retryDelay(err error, isGet bool, base time.Duration) (time.Duration, bool) {
	var apiErr *APIError
	var netErr *NetworkError
	switch {
	case errors.As(err, &netErr):
		if !isGet && !netErr.BeforeSend {
			return 0, false
		}
		return jitter(base, isGet), true
	case errors.As(err, &apiErr):
		switch apiErr.StatusCode {
		case http.StatusTooManyRequests:
			if hasRetryAfter(apiErr) {
				if apiErr.RetryAfter > maxRetryAfter {
					if !isGet {
						return 0, false
					}
					return maxRetryAfter, true
				}
				return apiErr.RetryAfter, true
			}
			if !isGet {
				return 0, false
			}
			return jitter(base, true), true
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			if !isGet {
				return 0, false
			}
			if apiErr.RetryAfter > 0 {
				return min(apiErr.RetryAfter, maxRetryAfter), true
			}
			return jitter(base, true), true
		}
	}
	return 0, false
}

func hasRetryAfter(e *APIError) bool { return e.retryAfterSet }

// jitter spreads GET retries by ±20 %.
func jitter(d time.Duration, on bool) time.Duration {
	if !on {
		return d
	}
	f := 0.8 + 0.4*rand.Float64() //nolint:gosec // jitter needs no cryptographic randomness
	return time.Duration(float64(d) * f)
}

// once sends one attempt.
func (c *Client) once(ctx context.Context, rq request) ([]byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req := c.r.R().SetContext(actx)
	if rq.query != nil {
		req.SetQueryParamsFromValues(rq.query)
	}
	if rq.body != nil {
		b, err := json.Marshal(rq.body)
		if err != nil {
			return nil, fmt.Errorf("encode request body: %w", err)
		}
		req.SetHeader("Content-Type", "application/json").SetBody(b)
	}
	resp, err := req.Execute(rq.method, rq.path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
		return nil, newNetworkError(c.endpoint, err, timedOut, c.timeout)
	}
	status := resp.StatusCode()
	if status < 200 || status > 299 {
		return nil, newAPIError(rq.method, resp.Request.URL, status, resp.Status(), resp.Header(), resp.Body())
	}
	return resp.Body(), nil
}

// decode unmarshals a 2xx body; a body that is not the expected JSON is reported as the
// server's fault, not a crash.
func decode(method, path string, body []byte, out any) error {
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("unexpected response from server to %s %s: %w", method, path, err)
	}
	return nil
}

func (c *Client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	body, err := c.do(ctx, request{method: http.MethodGet, path: path, query: query})
	if err != nil {
		return err
	}
	return decode(http.MethodGet, path, body, out)
}

func (c *Client) sendJSON(ctx context.Context, method, path string, in, out any) error {
	body, err := c.do(ctx, request{method: method, path: path, body: in})
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return decode(method, path, body, out)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type discardLogger struct{}

func (discardLogger) Errorf(string, ...any) {}
func (discardLogger) Warnf(string, ...any)  {}
func (discardLogger) Debugf(string, ...any) {}

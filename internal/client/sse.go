package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// ErrStreamUnsupported means the server has no event stream for runs: the route answered
// 404, 405, 406 or 501, or 200 with another content type (cli.md §6.3 step 3). The caller
// polls instead.
var ErrStreamUnsupported = errors.New("the server has no event stream")

// Event is one element of a text/event-stream.
type Event struct {
	// Name is the event field ("run", "progress", "done", "error"); "message" when absent.
	Name string
	// Data is the data lines joined by newlines.
	Data string
	// ID is the last id field seen.
	ID string
	// Comment is true for a comment line (": ping"), which carries nothing but proves
	// the connection is alive.
	Comment bool
}

// EventStream reads events from an open stream.
type EventStream struct {
	body   io.ReadCloser
	r      *bufio.Reader
	lastID string
}

// NewEventStream reads events from r. JobRunEvents uses it; tests may too.
func NewEventStream(r io.ReadCloser) *EventStream {
	return &EventStream{body: r, r: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next event or comment. At the end of the stream it returns io.EOF;
// an event cut off by the end is dropped, as the format requires.
func (s *EventStream) Next() (Event, error) {
	var (
		ev      Event
		data    strings.Builder
		hasData bool
		hasAny  bool
	)
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return Event{}, io.EOF
			}
			return Event{}, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if !hasAny {
				continue
			}
			if !hasData && ev.Name == "" {
				// Only id or retry fields: nothing to dispatch.
				hasAny = false
				continue
			}
			if ev.Name == "" {
				ev.Name = "message"
			}
			ev.Data = data.String()
			ev.ID = s.lastID
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			return Event{Comment: true, Data: strings.TrimPrefix(strings.TrimPrefix(line, ":"), " ")}, nil
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		hasAny = true
		switch field {
		case "event":
			ev.Name = value
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		case "id":
			if !strings.ContainsRune(value, 0) {
				s.lastID = value
			}
		default:
			// retry and unknown fields are ignored: reconnect timing is the CLI's own.
		}
	}
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// JobRunEvents opens the event stream of one run (api.md §7.5). The stream has no
// overall timeout; ctx ends it. A server without the route yields ErrStreamUnsupported
// (wrapping the *APIError when there was one); other failures are an *APIError or a
// *NetworkError, as for any request.
func (c *Client) JobRunEvents(ctx context.Context, runID string) (*EventStream, error) {
	resp, err := c.r.R().
		SetContext(ctx).
		SetHeader("Accept", "text/event-stream").
		SetHeader("Cache-Control", "no-cache").
		SetDoNotParseResponse(true).
		Get("/v1/jobs/" + url.PathEscape(runID) + "/events")
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, newNetworkError(c.endpoint, err, false, 0)
	}
	raw := resp.RawBody()
	status := resp.StatusCode()
	if status != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(raw, 64<<10))
		_ = raw.Close()
		apiErr := newAPIError(http.MethodGet, resp.Request.URL, status, resp.Status(), resp.Header(), body)
		switch status {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusNotImplemented:
			return nil, &unsupportedError{apiErr: apiErr}
		}
		return nil, apiErr
	}
	mt, _, _ := mime.ParseMediaType(resp.Header().Get("Content-Type"))
	if mt != "text/event-stream" {
		_ = raw.Close()
		return nil, &unsupportedError{}
	}
	return NewEventStream(raw), nil
}

type unsupportedError struct{ apiErr *APIError }

func (e *unsupportedError) Error() string {
	if e.apiErr != nil {
		return ErrStreamUnsupported.Error() + ": " + e.apiErr.Error()
	}
	return ErrStreamUnsupported.Error() + ": unexpected content type"
}

func (e *unsupportedError) Is(target error) bool { return target == ErrStreamUnsupported }

func (e *unsupportedError) Unwrap() error {
	if e.apiErr == nil {
		return nil
	}
	return e.apiErr
}

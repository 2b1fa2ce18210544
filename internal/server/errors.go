package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/engine"
	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// The fixed messages of api.md §2.4 that several handlers share.
const (
	msgNotFound          = "Not found"
	msgMethodNotAllowed  = "Method not allowed"
	msgRunNotFound       = "Job run not found"
	msgProjectNotFound   = "Project not found"
	msgNotMember         = "Not a member of this team"
	msgRequiresAdmin     = "Requires admin role or higher"
	msgInternal          = "Internal server error"
	msgInvalidJSON       = "Invalid JSON body"
	msgBodyNotObject     = "Request body must be a JSON object"
	msgBodyTooLarge      = "Request body too large"
	msgUnsupportedMedia  = "Content-Type must be application/json"
	msgTooManyStreams    = "Too many event streams"
	msgRequestTimedOut   = "Request timed out"
	msgMissingAuth       = "Missing authorization"
	msgInvalidAuthFormat = "Invalid authorization format"
)

// apiError is an answer other than success: a status, the `error` message and any
// extra envelope fields (api.md §2). Handlers return it; writeError is the one place
// that turns errors into responses.
type apiError struct {
	Status  int
	Message string
	// Fields are extra envelope fields such as existing_run_id.
	Fields map[string]any
	// Header is set on the response (Allow, Retry-After).
	Header http.Header
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{Status: status, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, format, args...)
}

// invalidUUID is the 400 for a malformed id (api.md §5.1).
func invalidUUID(name string) *apiError {
	return badRequest("Invalid %s: must be a UUID", name)
}

// conflictError is the 409 of api.md §2.3.
func conflictError(c *apitype.ConflictError) *apiError {
	var existing any
	if c.ExistingRunID != "" {
		existing = c.ExistingRunID
	}
	msg := c.Message
	if msg == "" {
		msg = apitype.ConflictMessage(c.JobType, c.ProjectID != "")
	}
	e := &apiError{Status: http.StatusConflict, Message: msg, Fields: map[string]any{"existing_run_id": existing}}
	if c.ExistingRunIDs != nil {
		ids := map[string]any{}
		for k, v := range c.ExistingRunIDs {
			if v == "" {
				ids[k] = nil
			} else {
				ids[k] = v
			}
		}
		e.Fields["existing_run_ids"] = ids
	}
	return e
}

// classify maps an error to its answer. Engine and registry errors carry client
// mistakes (400), conflicts (409) and builds without a handler (501); anything
// unrecognised is a server fault (500). ok is false for the latter.
func classify(ctx context.Context, err error) (*apiError, bool) {
	var (
		api        *apiError
		conflict   *apitype.ConflictError
		unknown    *engine.UnknownTypeError
		notAllowed *engine.EntryNotAllowedError
		noHandler  *engine.NoHandlerError
		unknownPar *jobtype.UnknownParamError
		invalidPar *jobtype.InvalidParamError
		notCancel  *engine.NotCancellableError
	)
	switch {
	case errors.As(err, &api):
		return api, true
	case errors.As(err, &conflict):
		return conflictError(conflict), true
	case errors.As(err, &unknown):
		return badRequest("%s", unknown.Error()), true
	case errors.As(err, &notAllowed):
		return badRequest("%s", notAllowed.Error()), true
	case errors.As(err, &noHandler):
		// This build cannot execute the type: refusing is honest, accepting a run that
		// no replica will ever pick up is not. 501 says "not implemented by this server".
		return errorf(http.StatusNotImplemented, "%s", noHandler.Error()), true
	case errors.As(err, &unknownPar):
		return badRequest("%s", unknownPar.Error()), true
	case errors.As(err, &invalidPar):
		return badRequest("%s", invalidPar.Error()), true
	case errors.Is(err, engine.ErrProjectMismatch):
		return badRequest("params.project_id must match project_id"), true
	case errors.As(err, &notCancel):
		return badRequest("%s", notCancel.Error()), true
	case errors.Is(err, engine.ErrRunNotFound):
		return errorf(http.StatusNotFound, msgRunNotFound), true
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return errorf(http.StatusServiceUnavailable, msgRequestTimedOut), true
	}
	return nil, false
}

// writeError answers with the error envelope. A server fault is logged at ERROR with its
// cause and the request id, and answers 500 with the request id only (api.md §2.5).
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r)
	apiErr, ok := classify(r.Context(), err)
	if !ok {
		if r.Context().Err() != nil {
			// The client went away or the request ran out of time: not a fault of ours
			// worth an ERROR line, and nobody reads the answer.
			st.log.Debug("request ended early", "error", err)
			apiErr = errorf(http.StatusServiceUnavailable, msgRequestTimedOut)
		} else {
			st.log.Error("request failed", "error", err)
			apiErr = &apiError{Status: http.StatusInternalServerError, Message: msgInternal,
				Fields: map[string]any{"request_id": st.requestID}}
		}
	}
	for k, vs := range apiErr.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	body := map[string]any{}
	for k, v := range apiErr.Fields {
		body[k] = v
	}
	body["error"] = apiErr.Message
	writeJSON(w, apiErr.Status, body)
}

// writeJSON writes v with the API's content type. Timestamps format themselves
// (apitype.Time); HTML characters are left alone, as a JSON API has no HTML to protect.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a programming error (an unencodable value) lands here.
		buf.Reset()
		buf.WriteString(`{"error":"` + msgInternal + `"}` + "\n")
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes()) //nolint:errcheck // the client may be gone; nothing to do about it
}

// recoverPanic turns a handler panic into the 500 of api.md §2.5 when nothing was
// written yet; the value and the stack go to the log, never to the client.
func recoverPanic(w *statusWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value, compared as net/http does
		panic(v)
	}
	st := stateOf(r)
	st.log.Error("panic in handler", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if w.wrote {
		// Headers are gone (an event stream): all we can do is drop the connection.
		panic(http.ErrAbortHandler)
	}
	writeJSON(w, http.StatusInternalServerError, map[string]any{"error": msgInternal, "request_id": st.requestID})
}

package server

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
)

// readBody reads a request body under the rules of api.md §1: at most 64 KiB (413) and,
// when not empty, declared as application/json (415). Routes without a body never call
// it, so they ignore whatever a client sends.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, msgBodyTooLarge)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		// The client stopped sending, or sent a broken chunked encoding.
		return nil, badRequest(msgInvalidJSON)
	}
	if len(b) > MaxBodyBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, msgBodyTooLarge)
	}
	if len(b) > 0 {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return nil, errorf(http.StatusUnsupportedMediaType, msgUnsupportedMedia)
		}
	}
	return b, nil
}

// decodeObject parses a body that must be one JSON object and returns its members
// undecoded, so each field gets its own message.
func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, badRequest(msgBodyNotObject)
	}
	if !json.Valid(trimmed) {
		return nil, badRequest(msgInvalidJSON)
	}
	if trimmed[0] != '{' {
		return nil, badRequest(msgBodyNotObject)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return nil, badRequest(msgInvalidJSON)
	}
	return m, nil
}

// isNull reports an absent member or a JSON null; both mean "not given".
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// decodeParams reads a params object keeping numbers as json.Number, so integers beyond
// 2⁵³ are judged by the registry's rule instead of being rounded first.
func decodeParams(raw json.RawMessage) (map[string]any, bool) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, false
	}
	return m, true
}

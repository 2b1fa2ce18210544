package emukit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// FaultRule makes the emulator misbehave on purpose (upstreams.md §7.5). Rules are
// evaluated before normal handling in insertion order; the first rule that applies to a
// request decides what happens to it.
type FaultRule struct {
	// ID names the rule; assigned ("f1", "f2", …) when empty.
	ID string `json:"id,omitempty"`
	// Match selects the requests the rule is about.
	Match FaultMatch `json:"match"`
	// Action is what happens to a request the rule applies to.
	Action FaultAction `json:"action"`
	// After lets this many matching requests pass before the rule starts applying.
	After int `json:"after,omitempty"`
	// Times retires the rule after it applied this many times. Zero means unlimited.
	Times int `json:"times,omitempty"`
	// Probability applies the rule to a matching request with this probability, drawn
	// from the Kit's seeded generator. Zero (or absent) means 1.
	Probability float64 `json:"probability,omitempty"`
	// Applied counts the requests the rule was applied to so far (read-only).
	Applied int `json:"applied"`

	seen int
}

// FaultMatch selects requests. Empty fields match everything.
type FaultMatch struct {
	// Method is compared exactly.
	Method string `json:"method,omitempty"`
	// Path is a pattern on the escaped path: "*" is one segment, "**" any number.
	Path string `json:"path,omitempty"`
	// Query maps query keys to exact values, all of which must be present.
	Query map[string]string `json:"query,omitempty"`
	// Header maps header names to exact values, all of which must be present.
	Header map[string]string `json:"header,omitempty"`
	// BodyContains must be a substring of the request body.
	BodyContains string `json:"body_contains,omitempty"`
}

// FaultAction says how to misbehave. Fields combine: a delay followed by a status, a
// delay followed by normal handling, normal handling with a malformed body, and so on.
type FaultAction struct {
	// Status answers with this status instead of handling the request. The body is Body
	// (JSON), else BodyText, else the vendor's usual error body for the status.
	Status int `json:"status,omitempty"`
	// Body is a JSON body for Status.
	Body json.RawMessage `json:"body,omitempty"`
	// BodyText is a plain-text body for Status.
	BodyText string `json:"body_text,omitempty"`
	// Headers are added to the answer; a nil value removes the header.
	Headers map[string]*string `json:"headers,omitempty"`
	// Delay waits this long (wall clock) before answering; without Status the request
	// then continues normally — a slow upstream.
	Delay Duration `json:"delay,omitempty"`
	// CloseConnection drops the connection without answering.
	CloseConnection bool `json:"close_connection,omitempty"`
	// TruncateBodyAt sends the answer's headers and only this many bytes of its body,
	// then drops the connection.
	TruncateBodyAt *int `json:"truncate_body_at,omitempty"`
	// MalformedJSON answers with the normal status but a body that is not JSON.
	MalformedJSON bool `json:"malformed_json,omitempty"`
}

func (r *FaultRule) validate() error {
	a := r.Action
	switch {
	case a.Status != 0 && (a.Status < 100 || a.Status > 599):
		return fmt.Errorf("action.status %d is not an HTTP status", a.Status)
	case a.Delay < 0:
		return errors.New("action.delay must not be negative")
	case a.TruncateBodyAt != nil && *a.TruncateBodyAt < 0:
		return errors.New("action.truncate_body_at must not be negative")
	case len(a.Body) > 0 && !json.Valid(a.Body):
		return errors.New("action.body must be JSON")
	case len(a.Body) > 0 && a.BodyText != "":
		return errors.New("action.body and action.body_text exclude each other")
	case r.After < 0 || r.Times < 0:
		return errors.New("after and times must not be negative")
	case r.Probability < 0 || r.Probability > 1:
		return errors.New("probability must be between 0 and 1")
	case a.Status == 0 && a.Delay == 0 && !a.CloseConnection && a.TruncateBodyAt == nil && !a.MalformedJSON && len(a.Headers) == 0:
		return errors.New("action does nothing")
	}
	return nil
}

func (m *FaultMatch) matches(r *http.Request, body []byte) bool {
	if m.Method != "" && r.Method != m.Method {
		return false
	}
	if m.Path != "" && !MatchPath(m.Path, r.URL.EscapedPath()) {
		return false
	}
	if len(m.Query) > 0 {
		q := r.URL.Query()
		for k, v := range m.Query {
			vs, ok := q[k]
			if !ok || !contains(vs, v) {
				return false
			}
		}
	}
	for k, v := range m.Header {
		if !contains(r.Header.Values(k), v) {
			return false
		}
	}
	return m.BodyContains == "" || strings.Contains(string(body), m.BodyContains)
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// MatchPath reports whether the escaped path p matches pattern: both are split on "/",
// segments compare exactly, "*" matches one segment and "**" any number of them
// (including none).
func MatchPath(pattern, p string) bool {
	return matchSegments(strings.Split(pattern, "/"), strings.Split(p, "/"))
}

func matchSegments(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(segs); i++ {
				if matchSegments(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 || (pat[0] != "*" && pat[0] != segs[0]) {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// AddFault adds a rule after the existing ones and returns it with its id.
func (k *Kit) AddFault(rule FaultRule) (FaultRule, error) {
	if err := rule.validate(); err != nil {
		return FaultRule{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if rule.ID == "" {
		k.faultSeq++
		rule.ID = fmt.Sprintf("f%d", k.faultSeq)
	}
	for _, r := range k.faults {
		if r.ID == rule.ID {
			return FaultRule{}, fmt.Errorf("fault %s exists", rule.ID)
		}
	}
	rule.Applied, rule.seen = 0, 0
	k.faults = append(k.faults, &rule)
	return rule, nil
}

// MustAddFault is AddFault for tests and fixtures: an invalid rule is a programmer
// mistake, so it panics.
func (k *Kit) MustAddFault(rule FaultRule) FaultRule {
	r, err := k.AddFault(rule)
	if err != nil {
		panic(fmt.Sprintf("emukit: bad fault rule: %v", err))
	}
	return r
}

// Faults lists the active rules in evaluation order.
func (k *Kit) Faults() []FaultRule {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]FaultRule, 0, len(k.faults))
	for _, r := range k.faults {
		out = append(out, *r)
	}
	return out
}

// RemoveFault removes one rule and reports whether it existed.
func (k *Kit) RemoveFault(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, r := range k.faults {
		if r.ID == id {
			k.faults = append(k.faults[:i], k.faults[i+1:]...)
			return true
		}
	}
	return false
}

// ClearFaults removes every rule.
func (k *Kit) ClearFaults() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.faults = nil
}

// applyFault finds the first rule that applies to the request and counts it. A rule
// that matches but is still letting requests pass (After), or loses its draw
// (Probability), does not apply, and evaluation goes on with the next rule.
func (k *Kit) applyFault(r *http.Request, body []byte) (string, FaultAction, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, rule := range k.faults {
		if !rule.Match.matches(r, body) {
			continue
		}
		rule.seen++
		if rule.seen <= rule.After {
			continue
		}
		if rule.Probability > 0 && rule.Probability < 1 && k.rng.Float64() >= rule.Probability {
			continue
		}
		rule.Applied++
		if rule.Times > 0 && rule.Applied >= rule.Times {
			k.faults = append(k.faults[:i], k.faults[i+1:]...)
		}
		return rule.ID, rule.Action, true
	}
	return "", FaultAction{}, false
}

package jobtype

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MaxSafeInteger is 2⁵³−1, the largest integer a JSON number carries exactly.
const MaxSafeInteger = 1<<53 - 1

// UnknownParamError is a params key that the type does not declare, or does not allow at
// the entry point.
type UnknownParamError struct {
	Key     string
	JobType string
	Allowed []string
}

func (e *UnknownParamError) Error() string {
	allowed := "none"
	if len(e.Allowed) > 0 {
		allowed = strings.Join(e.Allowed, ", ")
	}
	return fmt.Sprintf("Unknown param %q for job type %q (allowed: %s)", e.Key, e.JobType, allowed)
}

// InvalidParamError is a declared param whose value breaks its rule.
type InvalidParamError struct {
	Key    string
	Reason string
}

func (e *InvalidParamError) Error() string {
	return fmt.Sprintf("Invalid param %q: %s", e.Key, e.Reason)
}

// ValidateParams applies the static rules of engine.md §2.3 for entry point e: every key
// must be declared and allowed there, values must have the declared type (strings holding
// a value of that type are coerced, because the public CLI sends every --param as a
// string), and required params must be present. It returns the params as they are stored:
// UUIDs lower-cased, integers as int64. Existence checks (a live project or app) need the
// database and belong to the engine.
func ValidateParams(t Type, e EntryPoint, raw map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(raw))
	allowed := t.ParamsAt(e)
	names := make([]string, len(allowed))
	for i, p := range allowed {
		names[i] = p.Name
	}
	for _, key := range sortedKeys(raw) {
		p, ok := t.Param(key)
		if !ok || !p.AllowedAt(e) {
			return nil, &UnknownParamError{Key: key, JobType: t.Name, Allowed: names}
		}
		v, err := coerce(p, raw[key])
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
	for _, p := range allowed {
		if _, ok := out[p.Name]; p.Required && !ok {
			return nil, &InvalidParamError{Key: p.Name, Reason: "is required"}
		}
	}
	return out, nil
}

func coerce(p Param, v any) (any, error) {
	switch p.Type {
	case ParamUUID:
		s, ok := v.(string)
		if !ok {
			return nil, &InvalidParamError{Key: p.Name, Reason: "must be a UUID string"}
		}
		id, ok := ParseUUID(s)
		if !ok {
			return nil, &InvalidParamError{Key: p.Name, Reason: "must be a UUID"}
		}
		return id, nil
	case ParamInteger:
		n, ok := toInteger(v)
		if !ok {
			return nil, &InvalidParamError{Key: p.Name, Reason: "must be an integer"}
		}
		if n < 1 || n > MaxSafeInteger {
			return nil, &InvalidParamError{Key: p.Name, Reason: fmt.Sprintf("must be between 1 and %d", int64(MaxSafeInteger))}
		}
		return n, nil
	case ParamString:
		s, ok := v.(string)
		if !ok {
			return nil, &InvalidParamError{Key: p.Name, Reason: "must be a string"}
		}
		if n := utf8.RuneCountInString(s); n < 1 || n > 255 {
			return nil, &InvalidParamError{Key: p.Name, Reason: "must be 1-255 characters"}
		}
		return s, nil
	}
	return nil, &InvalidParamError{Key: p.Name, Reason: "has an unsupported type"}
}

func toInteger(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		return toInteger(string(x))
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) || math.Abs(x) > MaxSafeInteger+1 {
			return 0, false
		}
		return int64(x), true
	case int:
		return int64(x), true
	case int64:
		return x, true
	case string:
		if x == "" || len(x) > 19 {
			return 0, false
		}
		for _, r := range x {
			if r < '0' || r > '9' {
				return 0, false
			}
		}
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// ParseUUID accepts the canonical 8-4-4-4-12 form in any letter case and returns it
// lower-cased. Braced, URN and hyphen-less forms are refused, as the API refuses them.
func ParseUUID(s string) (string, bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return "", false
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return id.String(), true
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Insertion sort: params objects have a handful of keys.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// CoerceStoredParams re-checks a stored params object when a handler starts (engine.md
// §2.3, last paragraph): every key must be declared for the type, whatever entry point
// wrote it, and every value must still have its declared type. Another tool may have
// written the row, so nothing is assumed.
func CoerceStoredParams(t Type, raw map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(raw))
	for _, key := range sortedKeys(raw) {
		p, ok := t.Param(key)
		if !ok {
			return nil, &UnknownParamError{Key: key, JobType: t.Name, Allowed: paramNames(t.Params)}
		}
		v, err := coerce(p, raw[key])
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
	return out, nil
}

func paramNames(ps []Param) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// Package apikey is the format of Owlmetry API keys (api.md §3.2): a type prefix and 48
// lowercase hex characters. Keys are never stored: the database keeps the SHA-256 of the
// whole token for lookups and a short display hint, so the plaintext exists only in the
// output of the command that created it.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// The key prefixes by api_key_type.
const (
	PrefixAgent  = "owl_agent_"
	PrefixClient = "owl_client_"
	PrefixImport = "owl_import_"
)

// AgentPermissions are every permission an agent key can hold (api.md §4.1), in the order
// `system keys create` grants them by default.
var AgentPermissions = []string{"jobs:read", "jobs:write", "integrations:read", "integrations:write"}

// NewAgent returns a fresh agent key: owl_agent_ + 24 random bytes as hex.
func NewAgent() string {
	b := make([]byte, 24)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails on supported platforms
	return PrefixAgent + hex.EncodeToString(b)
}

// Hash is the lowercase hex SHA-256 of the whole token, prefix included (secret_hash).
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Hint is the display hint stored in api_keys.secret: the prefix, the first 4 hex
// characters and an ellipsis.
func Hint(token string) string {
	p := Prefix(token)
	rest := strings.TrimPrefix(token, p)
	if len(rest) > 4 {
		rest = rest[:4]
	}
	return p + rest + "…"
}

// Prefix returns the key prefix of a token, or "" when it has none.
func Prefix(token string) string {
	for _, p := range []string{PrefixAgent, PrefixClient, PrefixImport} {
		if strings.HasPrefix(token, p) {
			return p
		}
	}
	return ""
}

// LooksLikeKey reports whether a bearer token is meant as an API key (it has a key
// prefix), as opposed to a JWT.
func LooksLikeKey(token string) bool { return Prefix(token) != "" }

// WellFormed reports whether token is a prefix followed by exactly 48 lowercase hex
// characters; anything else is refused without a database lookup.
func WellFormed(token string) bool {
	p := Prefix(token)
	if p == "" {
		return false
	}
	rest := token[len(p):]
	if len(rest) != 48 {
		return false
	}
	for _, c := range rest {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

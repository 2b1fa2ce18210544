package devstack

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Secrets are generated once per data dir and reused by every start (cli.md §11.2 step 6,
// upstreams.md §9.2). They are the dev stack's own and seal nothing else.
type Secrets struct {
	JWTSecret string `json:"jwt_secret"`
	SecretKey string `json:"secret_key"`
}

func loadOrCreateSecrets(dir string) (Secrets, error) {
	path := filepath.Join(dir, "secrets.json")
	var s Secrets
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &s); err != nil {
			return s, err
		}
		if s.JWTSecret != "" && s.SecretKey != "" {
			return s, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return s, err
	}
	s = Secrets{JWTSecret: randomHex(32), SecretKey: randomHex(32)}
	return s, writeJSON(path, s)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}

// writeJSON writes v to path atomically with mode 0600.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

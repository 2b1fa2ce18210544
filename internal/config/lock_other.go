//go:build !unix

package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// lock creates path exclusively, polling until timeout. Systems without flock get this
// simpler lock; a crashed process leaves the file behind, which the error names.
func lock(path string, timeout time.Duration) (func(), error) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		if err == nil {
			_ = f.Close()
			return func() { _ = os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock config file: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, ErrLocked
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func syncDir(string) {}

// exposed is false where POSIX modes do not apply.
func exposed(os.FileMode) bool { return false }

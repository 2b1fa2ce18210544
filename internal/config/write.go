package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ErrLocked means another owlmetry process held the config lock for longer than
// LockTimeout (cli.md §2.4 step 1).
var ErrLocked = errors.New("config file is locked by another owlmetry process")

// LockTimeout is how long Update waits for the lock. Defaults to 5s.
var LockTimeout = 5 * time.Second

// Update applies change to the config file at path under an exclusive lock on
// <path>.lock: it re-reads the file under the lock, so two concurrent writers never lose
// each other's change, then writes the whole document atomically with mode 0600
// (cli.md §2.4). A failed write leaves the previous file intact. change may return an
// error to abandon the write; that error is returned as is.
func Update(path string, change func(*File) error) (*File, error) {
	return update(path, LockTimeout, change)
}

func update(path string, timeout time.Duration, change func(*File) error) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create config directory: %w", err)
	}
	unlock, err := lock(path+".lock", timeout)
	if err != nil {
		return nil, err
	}
	defer unlock()

	l, err := Load(path)
	if err != nil {
		return nil, err
	}
	if err := change(l.File); err != nil {
		return nil, err
	}
	doc, err := l.File.Document()
	if err != nil {
		return nil, fmt.Errorf("encode config file: %w", err)
	}
	target, err := resolveTarget(path)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(target, doc); err != nil {
		return nil, err
	}
	return l.File, nil
}

// resolveTarget follows symlinks so the file a link points to is replaced, not the link
// itself (cli.md §2.4 step 5). A dangling link resolves to where it points.
func resolveTarget(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return path, nil
		}
		if err != nil {
			return "", fmt.Errorf("inspect config file: %w", err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		dest, err := os.Readlink(path)
		if err != nil {
			return "", fmt.Errorf("read config symlink: %w", err)
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(path), dest)
		}
		path = dest
	}
	return "", fmt.Errorf("config file %s: too many levels of symbolic links", path)
}

// writeAtomic writes doc to a 0600 temporary file beside target, syncs it, renames it
// over target and syncs the directory.
func writeAtomic(target string, doc []byte) (err error) {
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	// The umask may have taken bits away (or CreateTemp may change); set the mode
	// explicitly so the result is 0600 whatever the umask.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	if _, err := tmp.Write(doc); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	syncDir(dir)
	return nil
}

package devstack

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// DefaultDataDir is where `owlmetry dev` keeps its cluster, secrets and state
// (cli.md §11.2): $XDG_DATA_HOME/owlmetry/dev, else ~/.local/share/owlmetry/dev; on macOS
// ~/Library/Application Support/owlmetry/dev. For root it is /var/lib/owlmetry/dev:
// Postgres then runs as the unprivileged postgres user, which cannot enter root's home.
func DefaultDataDir(lookupEnv func(string) (string, bool), home string) string {
	if v, ok := lookupEnv("XDG_DATA_HOME"); ok && v != "" {
		return filepath.Join(v, "owlmetry", "dev")
	}
	if os.Geteuid() == 0 {
		return "/var/lib/owlmetry/dev"
	}
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "Application Support", "owlmetry", "dev")
	}
	return filepath.Join(home, ".local", "share", "owlmetry", "dev")
}

// AlreadyRunningError is a data dir locked by another owlmetry dev.
type AlreadyRunningError struct{ PID int }

func (e *AlreadyRunningError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("owlmetry dev is already running (pid %d)", e.PID)
	}
	return "owlmetry dev is already running"
}

// dirLock is an exclusive flock on <data-dir>/dev.lock holding the owner's pid.
type dirLock struct{ f *os.File }

func lockDataDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "dev.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(f.Name())
		f.Close()
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return nil, &AlreadyRunningError{PID: pid}
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0) //nolint:errcheck // informational
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing releases it anyway
	l.f.Close()
	l.f = nil
}

// checkReachable makes sure the postgres system user can walk down to dir: every parent
// must be searchable by others. Root's home usually is not.
func checkReachable(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		return errors.New("PostgreSQL cannot run as root and no 'postgres' system user exists; run owlmetry dev as a normal user")
	}
	uid, _ := strconv.Atoi(pg.Uid)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		sys, _ := st.Sys().(*syscall.Stat_t)
		searchable := st.Mode().Perm()&0o001 != 0 || (sys != nil && int(sys.Uid) == uid && st.Mode().Perm()&0o100 != 0)
		if !searchable {
			return fmt.Errorf("PostgreSQL runs as the postgres user, which cannot enter %s; choose a --data-dir outside it (e.g. /var/lib/owlmetry/dev)", p)
		}
		if p == "/" || p == filepath.Dir(p) {
			return nil
		}
	}
}

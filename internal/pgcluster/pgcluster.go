// Package pgcluster runs a private PostgreSQL cluster from the server binaries installed
// on the machine. The test harness and `owlmetry dev` both use it.
//
// Postgres refuses to run as root. When this process is root, every Postgres program is
// started as the unprivileged `postgres` system user, which then owns the cluster's
// directories.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoBinaries means no initdb/pg_ctl/postgres triple was found.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries found")

// NoBinariesError says where it looked and how to install the binaries.
type NoBinariesError struct{ Looked []string }

func (e *NoBinariesError) Error() string {
	return fmt.Sprintf("no PostgreSQL server binaries found (looked in %s); install them, e.g. apt-get install postgresql",
		strings.Join(e.Looked, ", "))
}

// Unwrap lets callers test for ErrNoBinaries.
func (e *NoBinariesError) Unwrap() error { return ErrNoBinaries }

// FindOptions says where to look first.
type FindOptions struct {
	// Dirs are tried first, in order (e.g. --pg-bin-dir, OWLMETRY_PG_BIN). Empty entries are skipped.
	Dirs []string
	// PathEnv is the PATH to search. Defaults to the process's PATH.
	PathEnv string
	// SystemPatterns are the glob patterns of well-known install locations, searched
	// last. Nil means the defaults; tests pass an empty slice.
	SystemPatterns []string
}

// defaultSystemPatterns are the well-known install locations, highest version first.
var defaultSystemPatterns = []string{"/usr/lib/postgresql/*/bin", "/usr/local/opt/postgresql*/bin", "/opt/homebrew/opt/postgresql*/bin"}

// FindBinaries returns the directory that holds initdb, pg_ctl and postgres, searching
// (cli.md §11.2): the given dirs, PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin
// (highest version first), /usr/local/opt/postgresql*/bin and /opt/homebrew/opt/postgresql*/bin.
func FindBinaries(o FindOptions) (string, error) {
	var candidates []string
	for _, d := range o.Dirs {
		if d != "" {
			candidates = append(candidates, d)
		}
	}
	pathEnv := o.PathEnv
	if pathEnv == "" {
		pathEnv = os.Getenv("PATH") //nolint:forbidigo // the machine's PATH is the search path itself
	}
	for _, d := range filepath.SplitList(pathEnv) {
		p := filepath.Join(d, "initdb")
		if real, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, filepath.Dir(real))
		}
	}
	for _, d := range filepath.SplitList(pathEnv) {
		pgConfig := filepath.Join(d, "pg_config")
		if _, err := os.Stat(pgConfig); err != nil {
			continue
		}
		if out, err := exec.Command(pgConfig, "--bindir").Output(); err == nil {
			candidates = append(candidates, strings.TrimSpace(string(out)))
		}
		break
	}
	patterns := o.SystemPatterns
	if patterns == nil {
		patterns = defaultSystemPatterns
	}
	for _, pattern := range patterns {
		matches, _ := filepath.Glob(pattern)
		sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
		candidates = append(candidates, matches...)
	}
	var looked []string
	seen := map[string]bool{}
	for _, d := range candidates {
		if seen[d] {
			continue
		}
		seen[d] = true
		looked = append(looked, d)
		if hasBinaries(d) {
			return d, nil
		}
	}
	if len(looked) == 0 {
		looked = []string{"PATH", "/usr/lib/postgresql/*/bin"}
	}
	return "", &NoBinariesError{Looked: looked}
}

func hasBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionOf extracts the major version from paths like /usr/lib/postgresql/15/bin.
func versionOf(p string) int {
	for _, part := range strings.Split(p, string(filepath.Separator)) {
		digits := strings.TrimLeft(part, "postgresql@")
		if n, err := strconv.Atoi(digits); err == nil {
			return n
		}
	}
	return 0
}

// Options describe a cluster.
type Options struct {
	// BinDir holds initdb, pg_ctl and postgres.
	BinDir string
	// DataDir is the cluster directory (PGDATA).
	DataDir string
	// SocketDir holds the unix socket. Keep it short: socket paths are limited to ~107 bytes.
	SocketDir string
	// Port is the TCP port, and the number in the socket's file name. Defaults to 5432.
	Port int
	// ListenAddresses is "" for unix socket only, or e.g. "127.0.0.1".
	ListenAddresses string
	// Superuser is the bootstrap superuser name. Defaults to "postgres".
	Superuser string
	// Durable keeps fsync on. Tests and the dev stack run with fsync off.
	Durable bool
	// MaxConnections defaults to 500.
	MaxConnections int
	// LogFile receives the server log. Defaults to DataDir/postgres.log.
	LogFile string
}

// Cluster is one private cluster.
type Cluster struct {
	opts Options
	cred *syscall.Credential
	uid  int
	gid  int

	watchdog     *exec.Cmd
	watchdogPipe io.WriteCloser
}

// New prepares a cluster handle. It does not touch the disk.
func New(o Options) (*Cluster, error) {
	if o.Port == 0 {
		o.Port = 5432
	}
	if o.Superuser == "" {
		o.Superuser = "postgres"
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 500
	}
	if o.LogFile == "" {
		o.LogFile = filepath.Join(o.DataDir, "postgres.log")
	}
	c := &Cluster{opts: o, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("PostgreSQL cannot run as root and no 'postgres' system user exists; run as a normal user or install the postgresql package")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.uid, c.gid = uid, gid
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	return c, nil
}

// Options returns the cluster's settings.
func (c *Cluster) Options() Options { return c.opts }

// Initialized reports whether DataDir already holds a cluster.
func (c *Cluster) Initialized() bool {
	_, err := os.Stat(filepath.Join(c.opts.DataDir, "PG_VERSION"))
	return err == nil
}

// Own makes dir (created with mode 0700 when missing) belong to the user Postgres runs as.
func (c *Cluster) Own(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if c.cred != nil {
		return os.Chown(dir, c.uid, c.gid)
	}
	return nil
}

// Init creates the cluster: UTF-8, C locale, trust authentication.
func (c *Cluster) Init(ctx context.Context) error {
	if err := c.Own(c.opts.DataDir); err != nil {
		return err
	}
	if err := c.Own(c.opts.SocketDir); err != nil {
		return err
	}
	out, err := c.command(ctx, "initdb", "-D", c.opts.DataDir, "-U", c.opts.Superuser,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w: %s", err, lastLines(string(out), 5))
	}
	return nil
}

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start(ctx context.Context) error {
	if err := c.Own(c.opts.SocketDir); err != nil {
		return err
	}
	settings := []string{
		"-p", strconv.Itoa(c.opts.Port),
		"-c", "listen_addresses=" + c.opts.ListenAddresses,
		"-c", "unix_socket_directories=" + c.opts.SocketDir,
		"-c", "max_connections=" + strconv.Itoa(c.opts.MaxConnections),
		"-c", "timezone=UTC",
		"-c", "log_timezone=UTC",
	}
	if !c.opts.Durable {
		settings = append(settings, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	quoted := make([]string, len(settings))
	for i, s := range settings {
		quoted[i] = shellQuote(s)
	}
	out, err := c.command(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", c.opts.DataDir,
		"-l", c.opts.LogFile, "-o", strings.Join(quoted, " ")).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(c.opts.LogFile)
		return fmt.Errorf("start postgres: %w: %s%s", err, lastLines(string(out), 3), lastLines(string(log), 5))
	}
	return nil
}

// Stop shuts the server down (fast mode: open sessions are disconnected).
func (c *Cluster) Stop(ctx context.Context) error {
	out, err := c.command(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", c.opts.DataDir).CombinedOutput()
	if err != nil && c.Running() {
		return fmt.Errorf("stop postgres: %w: %s", err, lastLines(string(out), 3))
	}
	return nil
}

// Running reports whether the postmaster of DataDir is alive.
func (c *Cluster) Running() bool {
	b, err := os.ReadFile(filepath.Join(c.opts.DataDir, "postmaster.pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
}

// StopOnExit starts a watchdog process that stops the server — and removes removeDir
// when it is not empty — as soon as this process ends, however it ends: a panic, a
// SIGKILL or a normal exit all close the watchdog's stdin. Call Shutdown for a normal,
// synchronous stop.
func (c *Cluster) StopOnExit(removeDir string) error {
	script := fmt.Sprintf(`cat >/dev/null; %s stop -w -m fast -D %s >/dev/null 2>&1; `,
		shellQuote(filepath.Join(c.opts.BinDir, "pg_ctl")), shellQuote(c.opts.DataDir))
	if removeDir != "" {
		script += "rm -rf " + shellQuote(removeDir)
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	// Its own process group, so a Ctrl-C aimed at the tests does not kill the watchdog
	// before it has cleaned up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	pipe, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.watchdog, c.watchdogPipe = cmd, pipe
	return nil
}

// Shutdown stops the server now. With a watchdog, it lets the watchdog do the stop and
// cleanup and waits for it; otherwise it calls Stop.
func (c *Cluster) Shutdown(ctx context.Context) error {
	if c.watchdog == nil {
		return c.Stop(ctx)
	}
	c.watchdogPipe.Close()
	err := c.watchdog.Wait()
	c.watchdog = nil
	return err
}

// URL returns a connection URL for database db over the unix socket.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", c.opts.Superuser, db, c.opts.SocketDir, c.opts.Port)
}

// TCPURL returns a connection URL for database db over TCP on host.
func (c *Cluster) TCPURL(host, db string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", c.opts.Superuser, net.JoinHostPort(host, strconv.Itoa(c.opts.Port)), db)
}

// Run executes a Postgres program of BinDir as the cluster's user, e.g. "createdb".
func (c *Cluster) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return c.command(ctx, name, args...).CombinedOutput()
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.opts.BinDir, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true}
	// A working directory the postgres user can read; root's cwd may be private.
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC") //nolint:forbidigo // child processes inherit the environment
	return cmd
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PortFree reports whether port can be bound on 127.0.0.1 now.
func PortFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// WaitReady polls until a TCP or socket connection to the server succeeds.
func (c *Cluster) WaitReady(ctx context.Context) error {
	sock := filepath.Join(c.opts.SocketDir, fmt.Sprintf(".s.PGSQL.%d", c.opts.Port))
	for {
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Package pgtest gives every test its own migrated Postgres database.
//
// The server is TEST_DATABASE_URL when it is set (`make test` starts one private cluster
// for the whole `go test ./...` run and exports it). Otherwise the first test that asks
// starts a private cluster for its test process from the installed server binaries — a
// unix socket in a temp dir, fsync off — which a watchdog stops and removes when the
// process ends, even after a panic.
//
// Each test database is a copy of a template migrated once per server and migration set,
// so a fresh database costs milliseconds.
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		tdb := pgtest.New(t)
//		_, err := tdb.Pool.Exec(ctx, "…")
//	}
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/pgcluster"
)

// EnvURL names the variable that points the harness at an existing server. Its database
// is used for administration only (CREATE DATABASE needs a connection somewhere).
const EnvURL = "TEST_DATABASE_URL"

// DB is one test's database.
type DB struct {
	// Name is the database name.
	Name string
	// URL connects to it.
	URL string
	// Pool is a pool on it, closed at the end of the test.
	Pool *pgxpool.Pool
}

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
	cluster    *pgcluster.Cluster

	templateOnce sync.Once
	templateName string
	templateErr  error
)

// Main runs the package's tests and stops a private cluster afterwards. Packages that use
// pgtest call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown stops the private cluster this process started, if any.
func Shutdown() {
	if cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cluster.Shutdown(ctx) //nolint:errcheck // best effort at process end
		cluster = nil
	}
}

// AdminURL returns a URL on the test server's maintenance database, starting a private
// cluster when needed. Tests that need a server but not a migrated database (migration
// tests) use it with CreateEmpty.
func AdminURL(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() { serverURL, serverErr = startServer() })
	if serverErr != nil {
		t.Fatal(serverErr.Error())
	}
	return serverURL
}

func startServer() (string, error) {
	if u := os.Getenv(EnvURL); u != "" { //nolint:forbidigo // the harness is the top of the test process
		return u, nil
	}
	c, err := StartCluster()
	if err != nil {
		return "", err
	}
	cluster = c
	return c.URL("postgres"), nil
}

// StartCluster starts a private throwaway cluster in a new temp dir and arranges for it to
// be stopped and removed when this process ends. `make test` uses it through the
// testcluster command; tests reach it through AdminURL.
func StartCluster() (*pgcluster.Cluster, error) {
	bin, err := pgcluster.FindBinaries(pgcluster.FindOptions{Dirs: []string{os.Getenv("OWLMETRY_PG_BIN")}}) //nolint:forbidigo // test harness top
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "owlpg-")
	if err != nil {
		return nil, err
	}
	c, err := pgcluster.New(pgcluster.Options{
		BinDir: bin, DataDir: filepath.Join(root, "data"), SocketDir: root, MaxConnections: 1000,
	})
	if err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	if err := c.Own(root); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Init(ctx); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	// The watchdog exists before the server starts, so no path leaves a postmaster behind.
	if err := c.StopOnExit(root); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		c.Shutdown(ctx) //nolint:errcheck
		return nil, err
	}
	return c, nil
}

// templateKey identifies the migration set: a template built by another binary with other
// migrations is never reused.
func templateKey() string {
	h := sha256.New()
	for _, m := range db.Migrations() {
		h.Write([]byte(m.SQL))
	}
	fmt.Fprintf(h, "river:%d", db.RiverLatestVersion())
	// Partitions are made for the month the template was built in.
	fmt.Fprint(h, time.Now().UTC().Format("2006-01"))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// ensureTemplate builds the migrated template once per server. Several test processes
// share a server, so the build is serialised with an advisory lock and published by a
// rename: a template under its final name is always complete.
func ensureTemplate(adminURL string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := "owltpl_" + templateKey()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connect to test server: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(hashtext('owlmetry-pgtest-template'))`); err != nil {
		return "", err
	}
	defer admin.Exec(context.Background(), `SELECT pg_advisory_unlock(hashtext('owlmetry-pgtest-template'))`) //nolint:errcheck

	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{building}.Sanitize()+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{building}.Sanitize()); err != nil {
		return "", err
	}
	pool, err := db.OpenPool(ctx, withDatabase(adminURL, building), db.PoolOptions{MaxConns: 4})
	if err != nil {
		return "", err
	}
	_, err = db.Migrate(ctx, pool, db.MigrateOptions{})
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrate test template: %w", err)
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{building}.Sanitize()+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	return name, nil
}

// New creates a fresh migrated database for t, dropped when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	adminURL := AdminURL(t)
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(adminURL) })
	if templateErr != nil {
		t.Fatal(templateErr.Error())
	}
	return create(t, adminURL, templateName)
}

// NewEmpty creates a fresh database with no schema at all, dropped when t ends.
func NewEmpty(t testing.TB) *DB {
	t.Helper()
	return create(t, AdminURL(t), "template0")
}

func create(t testing.TB, adminURL, template string) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "t_" + randomHex(8)
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatalf("connect to test server: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize())); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	d := &DB{Name: name, URL: withDatabase(adminURL, name)}
	t.Cleanup(func() {
		if d.Pool != nil {
			d.Pool.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		admin, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	pool, err := db.OpenPool(ctx, d.URL, db.PoolOptions{MaxConns: 20})
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	d.Pool = pool
	return d
}

func withDatabase(rawURL, name string) string {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		panic(err) // the harness built or validated this URL
	}
	return replaceDatabase(rawURL, cfg.Database, name)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}

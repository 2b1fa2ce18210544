package devstack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/pgcluster"
)

const (
	pgUser     = "owlmetry"
	pgDatabase = "owlmetry"
)

// startPostgres creates the cluster on first use and starts it on a loopback port — the
// port of the previous start when it is free — with a watchdog that stops it if this
// process dies (cli.md §11.2 step 4).
func startPostgres(ctx context.Context, dataDir, binDir string, removeOnExit bool) (*pgcluster.Cluster, string, error) {
	pgDir := filepath.Join(dataDir, "pg")
	socketDir := pgDir
	if len(socketDir) > 90 { // unix socket paths are limited to ~107 bytes
		d, err := os.MkdirTemp("", "owldev-")
		if err != nil {
			return nil, "", err
		}
		socketDir = d
	}
	portFile := filepath.Join(dataDir, "postgres.port")
	port := 0
	if b, err := os.ReadFile(portFile); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pgcluster.PortFree(p) {
			port = p
		}
	}
	if port == 0 {
		p, err := pgcluster.FreePort()
		if err != nil {
			return nil, "", err
		}
		port = p
	}
	c, err := pgcluster.New(pgcluster.Options{
		BinDir: binDir, DataDir: pgDir, SocketDir: socketDir, Port: port, ListenAddresses: "127.0.0.1",
		Superuser: pgUser, MaxConnections: 200, LogFile: filepath.Join(dataDir, "postgres.log"),
	})
	if err != nil {
		return nil, "", err
	}
	if err := c.Own(dataDir); err != nil {
		return nil, "", err
	}
	if !c.Initialized() {
		if err := c.Init(ctx); err != nil {
			return nil, "", err
		}
	} else if c.Running() {
		// We hold the data dir lock, so this postmaster is an orphan of an earlier start.
		if err := c.Stop(ctx); err != nil {
			return nil, "", err
		}
	}
	remove := ""
	if removeOnExit {
		remove = dataDir
	} else if socketDir != pgDir {
		remove = socketDir
	}
	if err := c.StopOnExit(remove); err != nil {
		return nil, "", err
	}
	if err := c.Start(ctx); err != nil {
		c.Shutdown(ctx) //nolint:errcheck
		return nil, "", fmt.Errorf("start PostgreSQL: %w", err)
	}
	if err := os.WriteFile(portFile, []byte(strconv.Itoa(port)+"\n"), 0o600); err != nil {
		c.Shutdown(ctx) //nolint:errcheck
		return nil, "", err
	}
	if err := ensureDatabase(ctx, c); err != nil {
		c.Shutdown(ctx) //nolint:errcheck
		return nil, "", err
	}
	return c, c.TCPURL("127.0.0.1", pgDatabase), nil
}

func ensureDatabase(ctx context.Context, c *pgcluster.Cluster) error {
	conn, err := pgx.Connect(ctx, c.TCPURL("127.0.0.1", "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, pgDatabase).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgDatabase)
	return err
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// Command testcluster runs a command with a private Postgres cluster: it starts the
// cluster from the installed server binaries, exports TEST_DATABASE_URL, runs the command,
// then stops the cluster and removes its directory — also when the command fails, panics
// or is interrupted. `make test` wraps `go test ./...` with it so every test package
// shares one cluster.
//
//	go run ./internal/pgtest/cmd/testcluster -- go test -race ./...
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: testcluster -- <command> [args…]")
		return 2
	}
	c, err := pgtest.StartCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	defer func() {
		if err := c.Shutdown(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "warning: stop test cluster:", err)
		}
	}()

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), pgtest.EnvURL+"="+c.URL("postgres"))
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s) //nolint:errcheck // the child may have exited already
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if code := exit.ExitCode(); code > 0 {
			return code
		}
		return 1
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}

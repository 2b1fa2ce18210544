// Package dev implements `owlmetry dev`: the whole system on one machine with one
// command (cli.md §11.2).
package dev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/owlmetry/owlmetry/internal/cmdutil"
	envcmd "github.com/owlmetry/owlmetry/internal/commands/dev/env"
	"github.com/owlmetry/owlmetry/internal/config"
	"github.com/owlmetry/owlmetry/internal/devstack"
)

// ServeFunc runs the API server in process with env until ctx ends, calling ready with
// its address. The root command passes `owlmetry server`'s own Serve, so dev and server
// share every line of start-up and shutdown.
type ServeFunc func(ctx context.Context, env func(string) (string, bool), ready func(addr string)) error

// DevOptions holds what `owlmetry dev` needs.
type DevOptions struct {
	Factory *cmdutil.Factory
	Serve   ServeFunc

	DataDir   string
	Reset     bool
	Ephemeral bool
	Port      int
	PGBinDir  string
	Schedules string
	NoSeed    bool
	NoLogin   bool
}

// NewCmdDev builds `owlmetry dev` and its `env` subcommand.
func NewCmdDev(f *cmdutil.Factory, serve ServeFunc, runFunc func(context.Context, *DevOptions) error) *cobra.Command {
	opts := &DevOptions{Factory: f, Serve: serve}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system on this machine: Postgres, emulators, server",
		Long: `Run owlmetry on this machine with one command: a private PostgreSQL started from
the installed server binaries in a data dir of its own, the migrations, demo
data (a team, projects with Apple and Android apps, an agent key, app users and
events), local emulators of the third-party APIs, and the server with fast
development schedules. A dev profile is written to the CLI config so the next
owlmetry command talks to this stack.

A second start reuses the data dir. Ctrl-C stops everything; no Postgres
process is left behind. As root, PostgreSQL runs as the postgres system user.`,
		Example: `  # Start the stack, then try a sync from another shell
  owlmetry dev
  owlmetry ratings sync --wait

  # A throwaway stack on a free port, for a script
  owlmetry dev --ephemeral --port 0 --no-login`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch opts.Schedules {
			case "dev", "prod", "off":
			default:
				return cmdutil.FlagErrorf("invalid --schedules %q: valid values are dev, prod, off", opts.Schedules)
			}
			if opts.Port < 0 || opts.Port > 65535 {
				return cmdutil.FlagErrorf("invalid --port %d: 0 picks a free port", opts.Port)
			}
			if opts.Ephemeral && (cmd.Flags().Changed("data-dir") || opts.Reset) {
				return cmdutil.FlagErrorf("--ephemeral cannot be combined with --data-dir or --reset")
			}
			if runFunc != nil {
				return runFunc(cmd.Context(), opts)
			}
			return devRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.DataDir, "data-dir", "", "cluster, state and logs (default: the user's data dir)")
	fl.BoolVar(&opts.Reset, "reset", false, "delete the data dir first")
	fl.BoolVar(&opts.Ephemeral, "ephemeral", false, "use a temporary data dir, removed on exit")
	fl.IntVar(&opts.Port, "port", 4114, "API port; 0 picks a free one")
	fl.StringVar(&opts.PGBinDir, "pg-bin-dir", "", "where initdb and postgres live (OWLMETRY_PG_BIN)")
	fl.StringVar(&opts.Schedules, "schedules", "dev", "default schedules: dev, prod or off")
	fl.BoolVar(&opts.NoSeed, "no-seed", false, "skip demo data on a fresh data dir")
	fl.BoolVar(&opts.NoLogin, "no-login", false, "do not write the dev profile into the CLI config")
	cmd.RegisterFlagCompletionFunc("schedules", cobra.FixedCompletions([]string{"dev", "prod", "off"}, cobra.ShellCompDirectiveNoFileComp)) //nolint:errcheck
	cmd.AddCommand(envcmd.NewCmdEnv(f, nil))
	return cmd
}

func devRun(ctx context.Context, opts *DevOptions) error {
	f := opts.Factory
	ios := f.IOStreams
	p, err := f.Printer()
	if err != nil {
		return err
	}
	dataDir := opts.DataDir
	if dataDir == "" && !opts.Ephemeral {
		home, _ := f.LookupEnvFunc("HOME")
		dataDir = devstack.DefaultDataDir(f.LookupEnvFunc, home)
	}
	port := opts.Port
	if port != 0 && !portFree(port) {
		return fmt.Errorf("port %d is in use; pass --port 0 for a free one", port)
	}
	log := slog.New(slog.NewTextHandler(ios.ErrOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	stack, err := devstack.Start(ctx, devstack.Options{
		DataDir: dataDir, Reset: opts.Reset, Ephemeral: opts.Ephemeral, PGBinDir: opts.PGBinDir,
		NoSeed: opts.NoSeed, LookupEnv: f.LookupEnvFunc, Logger: log,
	})
	if err != nil {
		var running *devstack.AlreadyRunningError
		if errors.As(err, &running) {
			return err
		}
		return fmt.Errorf("%s", oneLine(err))
	}
	defer stack.Stop(context.WithoutCancel(ctx)) //nolint:errcheck // reported by the shutdown path below

	listen := "127.0.0.1:" + strconv.Itoa(port)
	addr := make(chan string, 1)
	served := make(chan error, 1)
	serveCtx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	go func() {
		served <- opts.Serve(serveCtx, stack.ServerEnv(f.LookupEnvFunc, listen, opts.Schedules), func(a string) { addr <- a })
	}()
	var endpoint string
	select {
	case a := <-addr:
		endpoint = "http://" + a
	case err := <-served:
		if err == nil {
			err = errors.New("the server stopped before it was ready")
		}
		return err
	}
	if err := waitReady(ctx, endpoint); err != nil {
		stopServer()
		<-served
		return err
	}
	state, err := stack.WriteState(endpoint)
	if err != nil {
		stopServer()
		<-served
		return err
	}
	if !opts.NoLogin && stack.Seed != nil {
		if err := writeProfile(f, stack, endpoint); err != nil {
			cmdutil.Warnf(ios, "could not write the dev profile: %v", err)
		}
	}
	doc := envcmd.Document(state)
	if err := p.Print(doc, func(rc cmdutil.RenderContext) string {
		if rc.TTY {
			return readyBanner(state)
		}
		return envcmd.Exports(state)
	}); err != nil {
		return err
	}

	select {
	case <-ctx.Done():
		cmdutil.Notef(ios, p.Format, "stopping owlmetry dev…")
		err = <-served
	case err = <-served:
	}
	if stopErr := stack.Stop(context.WithoutCancel(ctx)); stopErr != nil && err == nil {
		err = stopErr
	}
	return err
}

// waitReady polls /readyz until it answers 200 (at most a minute).
func waitReady(ctx context.Context, endpoint string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the server did not become ready within a minute")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeProfile makes the dev team the active profile (cli.md §11.2 step 11) and says on
// stderr which profile was active before.
func writeProfile(f *cmdutil.Factory, stack *devstack.Stack, endpoint string) error {
	path, err := f.Settings().ConfigPath()
	if err != nil {
		return err
	}
	var previous string
	_, err = config.Update(path.Value, func(file *config.File) error {
		previous = file.ActiveTeam
		prof, ok := file.Teams[stack.Seed.TeamID]
		if !ok {
			prof = &config.Profile{}
			file.Teams[stack.Seed.TeamID] = prof
		}
		prof.APIKey, prof.TeamName, prof.TeamSlug = stack.Seed.APIKey, "Owlmetry Dev", "dev"
		prof.Endpoint, prof.DefaultProject = endpoint, stack.Seed.Projects["A"]
		file.ActiveTeam = stack.Seed.TeamID
		return nil
	})
	if err != nil {
		return err
	}
	ios := f.IOStreams
	switch {
	case previous == "" || previous == stack.Seed.TeamID:
		fmt.Fprintf(ios.ErrOut, "The dev profile is now active in %s.\n", path.Value)
	default:
		fmt.Fprintf(ios.ErrOut, "The dev profile is now active in %s (it was %s; switch back with: owlmetry auth switch %s).\n",
			path.Value, previous, previous)
	}
	return nil
}

func readyBanner(s devstack.State) string {
	var b strings.Builder
	b.WriteString("owlmetry dev is ready\n")
	fmt.Fprintf(&b, "  API        %s\n", s.Endpoint)
	fmt.Fprintf(&b, "  Postgres   %s\n", s.DatabaseURL)
	if len(s.Emulators) > 0 {
		b.WriteString("  Emulators ")
		for _, name := range []string{"revenuecat", "apple-search-ads", "app-store-connect", "itunes"} {
			if u, ok := s.Emulators[name]; ok {
				fmt.Fprintf(&b, " %s %s", name, u)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\nTry, in another shell:\n")
	b.WriteString("  owlmetry ratings sync --wait\n")
	b.WriteString("  owlmetry jobs list\n")
	b.WriteString("  eval \"$(owlmetry dev env)\" && owlmetry system jobs schedules\n")
	b.WriteString("\nPress Ctrl-C to stop.\n")
	return b.String()
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func oneLine(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

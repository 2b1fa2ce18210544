package commands_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/creack/pty"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/jobtype"
	"github.com/owlmetry/owlmetry/internal/owltest"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildOut  []byte
	buildErr  error
)

// owlmetryBinary builds cmd/owlmetry once per test process: the terminal tests run the
// real binary, as a user would.
func owlmetryBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "owlmetry-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "owlmetry")
		buildOut, buildErr = exec.Command("go", "build", "-o", builtBin, "github.com/owlmetry/owlmetry/cmd/owlmetry").CombinedOutput()
	})
	require.NoError(t, buildErr, string(buildOut))
	return builtBin
}

// removeBuiltBinary deletes what owlmetryBinary built; TestMain calls it at the end.
func removeBuiltBinary() {
	if builtBin != "" {
		_ = os.RemoveAll(filepath.Dir(builtBin))
	}
}

// envList turns a stack environment into a process environment: that and PATH only.
func envList(env owltest.Env, extra ...string) []string {
	out := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return append(out, extra...)
}

// screen replays what a program wrote to a terminal and returns the lines a person would
// see, scrollback included. It understands what an inline Bubble Tea program and plain
// output use: printable text, CR, LF, backspace, cursor moves, erasing and SGR (ignored).
func screen(raw string, cols int) []string {
	var lines [][]rune
	row, col := 0, 0
	ensure := func() {
		for len(lines) <= row {
			lines = append(lines, nil)
		}
		for len(lines[row]) < cols {
			lines[row] = append(lines[row], ' ')
		}
	}
	eraseLine := func(from, to int) {
		ensure()
		for c := max(0, from); c < min(cols, to); c++ {
			lines[row][c] = ' '
		}
	}
	p := ansi.NewParser()
	p.SetHandler(ansi.Handler{
		Print: func(r rune) {
			ensure()
			if col >= cols {
				col = 0
				row++
				ensure()
			}
			lines[row][col] = r
			col++
		},
		Execute: func(b byte) {
			switch b {
			case '\r':
				col = 0
			case '\n':
				row++
				ensure()
			case '\b':
				col = max(0, col-1)
			}
		},
		HandleCsi: func(cmd ansi.Cmd, params ansi.Params) {
			if cmd.Prefix() != 0 {
				return // private modes: cursor visibility, bracketed paste…
			}
			n, _, _ := params.Param(0, 1)
			switch cmd.Final() {
			case 'A':
				row = max(0, row-n)
			case 'B':
				row += n
			case 'C':
				col = min(cols-1, col+n)
			case 'D':
				col = max(0, col-n)
			case 'G':
				col = n - 1
			case 'X':
				eraseLine(col, col+n)
			case 'K':
				switch m, _, _ := params.Param(0, 0); m {
				case 0:
					eraseLine(col, cols)
				case 1:
					eraseLine(0, col+1)
				default:
					eraseLine(0, cols)
				}
			case 'J':
				if m, _, _ := params.Param(0, 0); m == 0 {
					eraseLine(col, cols)
					lines = lines[:row+1]
				}
			}
		},
	})
	p.Parse([]byte(raw))
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.TrimRight(string(l), " ")
	}
	return out
}

// screenHas waits until the replayed screen has a line matching re.
func screenHas(t *testing.T, out *owltest.SyncBuffer, cols int, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, l := range screen(out.String(), cols) {
			if rx.MatchString(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screen never showed %s:\n%s", re, strings.Join(screen(out.String(), cols), "\n"))
		}
		waitMore(t, out)
	}
}

// waitMore blocks until the buffer grows, or a second has passed.
func waitMore(t *testing.T, out *owltest.SyncBuffer) {
	t.Helper()
	select {
	case <-out.Changed():
	case <-time.After(time.Second):
	}
}

func TestTerminalBar(t *testing.T) {
	t.Parallel()
	const cols = 100
	bin := owlmetryBinary(t)
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppStoreRatingsSync))
	project := stack.SeedProject(t, owltest.WithAppleApps(2))

	cmd := exec.Command(bin, "ratings", "sync", "--project-id", project.ID, "--wait")
	cmd.Env = envList(stack.Env(), "TERM=xterm-256color")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: cols})
	require.NoError(t, err)
	out := &owltest.SyncBuffer{}
	copied := make(chan struct{})
	go func() { defer close(copied); _, _ = io.Copy(out, tty) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = tty.Close() })

	id := waitRunOf(t, stack, project.ID, jobtype.AppStoreRatingsSync)
	short := id[:8]
	run := stack.Blocker.Started(t, id)
	screenHas(t, out, cols, `^. App Store Ratings Sync  `+short+`  `)

	run.Progress.Report(1, 4, "app 1")
	first := screenHas(t, out, cols, `^. App Store Ratings Sync  `+short+`  █+░+  25%  1/4  app 1 +\d+s$`)
	run.Progress.Report(3, 4, "app 3")
	second := screenHas(t, out, cols, `^. App Store Ratings Sync  `+short+`  █+░+  75%  3/4  app 3 +\d+s$`)
	require.Greater(t, strings.Count(second, "█"), strings.Count(first, "█"), "the bar advanced")
	require.Len(t, screen(out.String(), cols), 1, "one row, drawn in place")

	stack.Blocker.Release(id)
	require.NoError(t, cmd.Wait(), "exit 0")
	_ = tty.Close()
	<-copied

	lines := screen(out.String(), cols)
	require.Regexp(t, `^✓ App Store Ratings Sync  `+short+`  █{40} 100%  4/4  app 3 +\d+s$`, lines[0], "the last frame stays in the scrollback")
	require.Regexp(t, `^✓ App Store Ratings Sync `+short+` completed in \d`, lines[1], "then the outcome line")
	require.Equal(t, "App Store Ratings Sync (app_store_ratings_sync)", lines[2], "then the run on stdout")
	raw := out.String()
	require.Contains(t, raw, "\x1b[?25l", "the cursor is hidden while drawing")
	require.Greater(t, strings.LastIndex(raw, "\x1b[?25h"), strings.LastIndex(raw, "█"), "and restored at the end")
	require.NotContains(t, raw, "\x1b[?1049h", "inline: no alternate screen")
}

func TestTerminalPiped(t *testing.T) {
	t.Parallel()
	bin := owlmetryBinary(t)
	stack := owltest.StartStack(t, owltest.WithBlockingHandler(jobtype.AppStoreRatingsSync))
	project := stack.SeedProject(t, owltest.WithAppleApps(2))

	cmd := exec.Command(bin, "ratings", "sync", "--project-id", project.ID, "--wait")
	cmd.Env = envList(stack.Env(), "TERM=xterm-256color")
	var stdout bytes.Buffer
	stderr := &owltest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	id := waitRunOf(t, stack, project.ID, jobtype.AppStoreRatingsSync)
	stderr.WaitFor(t, "waiting for app_store_ratings_sync run "+id+"\n")
	stack.Blocker.Started(t, id).Progress.Report(3, 4, "app 3")
	stack.Blocker.Release(id)
	require.NoError(t, cmd.Wait())

	errText := stderr.String()
	require.Regexp(t, `(?m)^\+\d+s `+id[:8]+` app_store_ratings_sync (pending|running)`, errText)
	require.Regexp(t, `(?m)^\+\d+s `+id[:8]+` app_store_ratings_sync completed 4/4 \(100%\) app 3$`, errText)
	require.Regexp(t, `(?m)^app_store_ratings_sync `+id+` completed in \d`, errText)
	require.Contains(t, stdout.String(), "id\t"+id+"\n")
	for _, s := range []string{stdout.String(), errText} {
		require.NotContains(t, s, "\x1b", "no escape codes when piped")
		require.NotContains(t, s, "\r", "no carriage returns")
	}
}

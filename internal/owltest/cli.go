package owltest

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/owlmetry/owlmetry/internal/commands"
	"github.com/owlmetry/owlmetry/internal/iostreams"
)

// SyncBuffer is a bytes.Buffer safe for one writer and concurrent readers, so a test can
// watch a command's output while it runs.
type SyncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.buf.Write(p)
}

// Changed returns a channel closed at the next write.
func (b *SyncBuffer) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.changed
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor blocks until the output contains s, for at most the harness's wait limit.
func (b *SyncBuffer) WaitFor(t testing.TB, s string) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		b.mu.Lock()
		if strings.Contains(b.buf.String(), s) {
			b.mu.Unlock()
			return
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("owltest: output never contained %q; got:\n%s", s, b.String())
		}
	}
}

// Running is a CLI run started in the background by Start.
type Running struct {
	Stdout, Stderr *SyncBuffer
	signals        chan os.Signal
	done           chan Result
}

// StartOptions adjust a background run.
type StartOptions struct {
	// TTY makes stdout and stderr terminals of Width columns (default 80).
	TTY   bool
	Width int
}

// Start runs one command line in process in the background, with output buffers the
// test may read while it runs and a signal channel it may send to, as Main's would.
func Start(t testing.TB, env Env, o StartOptions, args ...string) *Running {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	r := &Running{Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, signals: make(chan os.Signal, 4), done: make(chan Result, 1)}
	ios.Out, ios.ErrOut = r.Stdout, r.Stderr
	if o.TTY {
		ios.SetStdoutTTY(true)
		ios.SetStderrTTY(true)
		ios.SetWidth(80)
	}
	if o.Width > 0 {
		ios.SetWidth(o.Width)
	}
	go func() {
		code := commands.Run(context.Background(), commands.Options{
			Args: args, IO: ios, LookupEnvFunc: env.Lookup, NowFunc: time.Now, Signals: r.signals,
		})
		r.done <- Result{ExitCode: code}
	}()
	t.Cleanup(func() {
		select {
		case r.signals <- os.Interrupt:
		default:
		}
	})
	return r
}

// Signal delivers a signal to the run.
func (r *Running) Signal(s os.Signal) { r.signals <- s }

// Wait returns how the run ended, logging its command line and output.
func (r *Running) Wait(t testing.TB) Result {
	t.Helper()
	select {
	case res := <-r.done:
		t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", res.ExitCode, r.Stdout, r.Stderr)
		res.Stdout = bytes.NewBufferString(r.Stdout.String())
		res.Stderr = bytes.NewBufferString(r.Stderr.String())
		return res
	case <-time.After(waitLimit):
		t.Fatalf("owltest: the command did not end; stderr so far:\n%s", r.Stderr)
		return Result{}
	}
}

// Interrupt is the signal Ctrl-C sends.
var Interrupt os.Signal = os.Interrupt

// RunWithStdin is Run with the given standard input.
func RunWithStdin(t testing.TB, env Env, stdin string, args ...string) Result {
	t.Helper()
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	code := commands.Run(context.Background(), commands.Options{Args: args, IO: ios, LookupEnvFunc: env.Lookup, NowFunc: time.Now})
	t.Logf("owlmetry %s → %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	return Result{ExitCode: code, Stdout: out, Stderr: errOut}
}

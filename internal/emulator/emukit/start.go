package emukit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Start serves h on a real TCP listener at addr ("127.0.0.1:0" for an ephemeral port)
// and returns the base URL it is reachable at ("http://127.0.0.1:41234") and a stop
// function. When addr names a port that is busy, Start falls back to an ephemeral port
// on the same host, as owlmetry dev does for its default emulator ports
// (upstreams.md §9.1).
//
// stop closes the listener and every connection, then waits until the server and all
// handlers (delay faults included) have returned; it is idempotent and also runs when
// ctx ends.
func Start(ctx context.Context, h http.Handler, addr string) (string, func(), error) {
	ln, err := listen(ctx, addr)
	if err != nil {
		return "", nil, err
	}
	handlers := newTracker()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handlers.add()
			defer handlers.done()
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()

	stopped := make(chan struct{})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			close(stopped)
			_ = srv.Close()
			<-served
			handlers.wait()
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-stopped:
		}
	}()
	return "http://" + ln.Addr().String(), stop, nil
}

func listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err == nil {
		return ln, nil
	}
	host, port, splitErr := net.SplitHostPort(addr)
	if splitErr != nil || port == "0" || !errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	ln, err = lc.Listen(ctx, "tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", net.JoinHostPort(host, "0"), err)
	}
	return ln, nil
}

// tracker counts running handlers. Unlike a WaitGroup it tolerates a handler starting
// while stop is already waiting (a request read just before the listener closed).
type tracker struct {
	mu   sync.Mutex
	n    int
	idle *sync.Cond
}

func newTracker() *tracker {
	t := &tracker{}
	t.idle = sync.NewCond(&t.mu)
	return t
}

func (t *tracker) add() {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		t.idle.Broadcast()
	}
	t.mu.Unlock()
}

func (t *tracker) wait() {
	t.mu.Lock()
	for t.n > 0 {
		t.idle.Wait()
	}
	t.mu.Unlock()
}

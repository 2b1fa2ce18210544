package cmdutil

import (
	"context"
	"os"
)

// InterruptContext turns the first signal on sigs into a cancelled context whose cause is
// ErrInterrupted, and hands later signals to whoever asks through the returned channel
// (waits with --cancel-on-interrupt, --local runs, server, dev).
func InterruptContext(parent context.Context, sigs <-chan os.Signal) (context.Context, <-chan os.Signal, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	later := make(chan os.Signal, 4)
	if sigs == nil {
		return ctx, later, cancel
	}
	go func() {
		first := true
		for {
			select {
			case s, ok := <-sigs:
				if !ok {
					return
				}
				if first {
					first = false
					cancel(ErrInterrupted)
					continue
				}
				select {
				case later <- s:
				default:
				}
			case <-parent.Done():
				return
			}
		}
	}()
	return ctx, later, cancel
}

package devstack

import (
	"context"
	"fmt"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
	"github.com/owlmetry/owlmetry/internal/emulator/itunes"
	"github.com/owlmetry/owlmetry/internal/emulator/universe"
)

// emulatorPorts are the default loopback ports (cli.md §11.2 step 8); a busy one falls
// back to a free port.
var emulatorPorts = map[string]int{"itunes": 4104}

// startEmulators starts every emulator that exists, seeded from the universe, and
// returns their base URLs and one stop function.
func startEmulators(ctx context.Context, u *universe.Universe) (map[string]string, func(), error) {
	urls := map[string]string{}
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	it, err := itunes.New(itunes.Options{State: u.ITunesState()})
	if err != nil {
		return nil, nil, fmt.Errorf("iTunes emulator: %w", err)
	}
	base, stop, err := emukit.Start(ctx, it.Handler(), fmt.Sprintf("127.0.0.1:%d", emulatorPorts["itunes"]))
	if err != nil {
		return nil, nil, fmt.Errorf("iTunes emulator: %w", err)
	}
	it.SetPublicBaseURL(base)
	stops = append(stops, stop)
	urls["itunes"] = base
	return urls, stopAll, nil
}

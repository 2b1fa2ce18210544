// Package emukit is the shared core of owlmetry's upstream emulators (upstreams.md §7):
// the pieces every emulator needs and none should write twice.
//
// An emulator package (itunes, revenuecat, appleads, appstoreconnect) keeps its own
// state, routes and vendor rules, and hands them to a Kit:
//
//	s := &Server{…}
//	s.Kit = emukit.New(emukit.Options{
//		API:       "itunes",
//		Clock:     opts.Clock,
//		Vendor:    http.HandlerFunc(s.serveVendor), // the vendor's routes
//		Backend:   backend{s},                      // state and limits as JSON
//		ErrorBody: vendorErrorBody,                 // the vendor's usual error bodies
//	})
//	s.Kit.HandleControl("POST /throttle", s.handleThrottle) // an API-specific action
//
// The Kit is then the emulator's http.Handler. For every request outside the reserved
// prefix /_emulator/ it
//
//  1. reads the request body and notes the arrival (WaitArrivals),
//  2. evaluates the fault rules in insertion order (§7.5) — delays, synthetic statuses,
//     dropped connections, truncated or malformed bodies,
//  3. otherwise calls the vendor handler, which authenticates, rate-limits and routes
//     (§7.6) using the Kit's Clock and a TokenBucket, FixedWindow or RollingWindow,
//  4. records the exchange in the request journal (§7.4), which tests read with
//     Requests.
//
// Under /_emulator/ it serves the control API of §7.7: health, state, collections,
// reset, faults, the journal, the clock and the limits, plus whatever actions the
// emulator registered with HandleControl.
//
// Clocks: every time-dependent vendor behaviour reads Kit.Clock(). Tests pass a
// ManualClock and move it with Set and Advance (or POST /_emulator/clock); nothing in an
// emulator sleeps on emulator time. Fault delays are the one exception: they exist to
// exercise the clients' real-time timeouts, so they wait on the wall clock and end early
// when the client goes away.
//
// Start runs any handler on a real loopback listener for tests and owlmetry dev.
//
// This package imports only the standard library and golang-jwt, and never the
// upstream clients, so a misunderstanding of a vendor API cannot hide in shared code.
package emukit

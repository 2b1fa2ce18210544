// Package itunes is owlmetry's client for Apple's iTunes Lookup API (upstreams.md §6),
// used by app_version_sync and app_store_ratings_sync (jobs.md §11, §12).
//
// One process has one Pacer, built from the configuration and shared by every caller,
// because Apple throttles per client IP:
//
//	cfg, err := itunes.LoadConfig(lookupEnv) // OWLMETRY_ITUNES_* (upstreams.md §1.3)
//	pacer := itunes.NewPacerFromConfig(cfg, metricsSet)
//	client, err := itunes.New(itunes.Options{BaseURL: cfg.BaseURL, Pacer: pacer, Metrics: metricsSet})
//
// A job fans out with a worker pool of pacer.Concurrency() goroutines; each call to
// Lookup takes a concurrency slot, waits for its pacing slot, makes exactly one request
// and tells the pacer how it went, which widens the interval after throttling and
// narrows it back towards the baseline afterwards:
//
//	res, err := client.Lookup(ctx, itunes.LookupParams{BundleID: app.BundleID, Country: "de"})
//	if err != nil {
//		return err // ctx ended: the run is being stopped
//	}
//	switch {
//	case res.Outcome == itunes.OutcomeFound:         // res.App holds the fields owlmetry reads
//	case res.Outcome == itunes.OutcomeNotFound:      // not sold there, or unknown
//	case res.Outcome == itunes.OutcomeRateLimited,
//		res.Transient:                               // the job's retry policy decides
//	default:                                        // error(res.Status), not worth retrying
//	}
//
// The client never retries by itself; res.Waits tells the job how long the call waited
// for its slot, for the result counters. Should a throttled answer carry Retry-After
// (Apple's does not today), res.RetryAfter reports it and, up to MaxRetryAfter, the
// pacer holds every caller until it has passed. Requests carry User-Agent owlmetry/<version>,
// time out after 10 s, never follow redirects and read at most 16 MiB.
//
// Tests run the client against the emulator in internal/emulator/itunes on a real
// listener; this package never imports it.
package itunes

// Package itunes emulates Apple's iTunes Lookup API (upstreams.md §6, §8.4) for tests and
// owlmetry dev: GET /lookup by bundleId or id in a country storefront, with the live
// API's quirks (JSON served as JavaScript after blank lines, missing rating fields,
// empty answers for storefronts that do not sell an app), per-IP throttling answered
// with 403, throttle storms, and the shared fault injection, journal and control API of
// package emukit.
package itunes

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/owlmetry/owlmetry/internal/emulator/emukit"
)

// Options configure a Server. The zero value is a valid emulator with an empty
// catalogue, the real clock, the default limits and the storefronts of Appendix A.
type Options struct {
	// Clock is the emulator clock that drives the throttle. Defaults to the real clock.
	Clock emukit.Clock
	// PublicBaseURL is where clients reach the emulator; the iTunes API has no absolute
	// links, so it only matters for consistency with the other emulators.
	PublicBaseURL string
	// Limits are the initial throttle and switches. Nil means DefaultLimits().
	Limits *Limits
	// Storefronts is the set of country codes the emulator treats as storefronts.
	// Nil means DefaultStorefronts() (upstreams.md Appendix A).
	Storefronts []string
	// State is the initial seed.
	State State
	// JournalSize is the request journal's size. Defaults to emukit.DefaultJournalSize.
	JournalSize int
	// RandSeed seeds fault probabilities. Defaults to 1.
	RandSeed uint64
}

// Server is the iTunes Lookup emulator. Its embedded Kit provides the Go side of the
// control API (faults, journal, Reset, clock) and makes it an http.Handler.
type Server struct {
	*emukit.Kit

	storefronts map[string]bool

	mu     sync.Mutex
	seed   State
	state  State
	limits Limits
	bucket *emukit.TokenBucket
	storm  int
}

// New builds an emulator. It fails on an invalid seed, limits or storefront code.
func New(opts Options) (*Server, error) {
	s := &Server{storefronts: map[string]bool{}, limits: DefaultLimits()}
	if opts.Limits != nil {
		s.limits = *opts.Limits
		if err := s.limits.Throttle.applyPreset(); err != nil {
			return nil, err
		}
		if err := s.limits.validate(); err != nil {
			return nil, fmt.Errorf("limits: %w", err)
		}
	}
	codes := opts.Storefronts
	if codes == nil {
		codes = DefaultStorefronts()
	}
	for _, cc := range codes {
		cc = strings.ToLower(cc)
		if !isAlpha2(cc) {
			return nil, fmt.Errorf("storefront %q is not an alpha-2 code", cc)
		}
		s.storefronts[cc] = true
	}
	if err := opts.State.validate(); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	s.seed = opts.State.clone()
	s.state = s.seed.clone()
	s.bucket = newBucket(s.limits.Throttle)
	s.Kit = emukit.New(emukit.Options{
		API:           "itunes",
		Clock:         opts.Clock,
		Vendor:        http.HandlerFunc(s.serveVendor),
		Backend:       backend{s},
		ErrorBody:     errorBody,
		JournalSize:   opts.JournalSize,
		RandSeed:      opts.RandSeed,
		PublicBaseURL: opts.PublicBaseURL,
	})
	s.HandleControl("POST /throttle", s.handleThrottle)
	s.HandleControl("GET /throttle", s.handleThrottle)
	return s, nil
}

// MustNew is New for tests and fixtures, where bad options are a programmer mistake.
func MustNew(opts Options) *Server {
	s, err := New(opts)
	if err != nil {
		panic("itunes emulator: " + err.Error())
	}
	return s
}

func newBucket(t Throttle) *emukit.TokenBucket {
	return emukit.NewTokenBucket(t.PerMinute, time.Minute, t.Burst)
}

// Handler returns the emulator as an http.Handler: vendor routes and /_emulator/.
func (s *Server) Handler() http.Handler { return s.Kit }

// Seed replaces the catalogue and makes it the state Reset returns to.
func (s *Server) Seed(st State) error {
	if err := st.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seed = st.clone()
	s.state = s.seed.clone()
	return nil
}

// State returns a copy of the current catalogue, apps in track id order.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.clone()
}

// PutApps adds apps to the current catalogue or replaces those with the same track id
// (the "apps" collection). The seed is unchanged.
func (s *Server) PutApps(apps ...App) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := s.state.upsert(apps)
	if err != nil {
		return err
	}
	s.state = next
	return nil
}

// Limits returns the current throttle and switches.
func (s *Server) Limits() Limits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits
}

// SetLimits replaces the throttle and switches. A change of rate or burst starts every
// client with a full bucket.
func (s *Server) SetLimits(l Limits) error {
	if err := l.Throttle.applyPreset(); err != nil {
		return err
	}
	if err := l.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLimitsLocked(l)
	return nil
}

func (s *Server) setLimitsLocked(l Limits) {
	if l.Throttle.PerMinute != s.limits.Throttle.PerMinute || l.Throttle.Burst != s.limits.Throttle.Burst {
		s.bucket = newBucket(l.Throttle)
	}
	s.limits = l
}

// Throttle makes the next n lookups answer the throttle status whatever the bucket
// says: a throttle storm. Zero ends a storm.
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storm = max(n, 0)
}

func (s *Server) handleThrottle(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var req struct {
			Next *int `json:"next"`
		}
		if err := emukit.ReadControlBody(r, &req); err != nil {
			emukit.WriteControlError(w, http.StatusBadRequest, "throttle: "+err.Error())
			return
		}
		if req.Next == nil || *req.Next < 0 {
			emukit.WriteControlError(w, http.StatusBadRequest, `throttle: "next" must be a non-negative integer`)
			return
		}
		s.Throttle(*req.Next)
	}
	s.mu.Lock()
	n := s.storm
	s.mu.Unlock()
	emukit.WriteJSON(w, http.StatusOK, map[string]int{"next": n})
}

// serveVendor answers vendor routes after the Kit's fault rules: throttle first (per
// client IP, as Apple does, whatever the path), then the route.
func (s *Server) serveVendor(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	limits := s.limits
	throttled := false
	switch {
	case r.URL.Path == "/lookup" && s.storm > 0:
		s.storm--
		throttled = true
	case limits.Throttle.Enabled:
		ok, _ := s.bucket.Take(emukit.ClientIP(r), s.Clock().Now())
		throttled = !ok
	}
	s.mu.Unlock()

	if throttled {
		// Apple's throttle answers carry a short plain-text body and no Retry-After.
		writeText(w, limits.Throttle.Status)
		return
	}
	if r.URL.Path != "/lookup" {
		writeText(w, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeText(w, http.StatusMethodNotAllowed)
		return
	}
	s.lookup(w, r, limits.Switches)
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request, sw Switches) {
	q := r.URL.Query()
	country := strings.ToLower(q.Get("country"))
	if country == "" {
		country = "us"
	}
	if !s.storefronts[country] {
		if sw.RejectUnknownCountry {
			writeAPI(w, http.StatusBadRequest, invalidValue("country"), sw)
			return
		}
		writeAPI(w, http.StatusOK, response{Results: []result{}}, sw)
		return
	}

	s.mu.Lock()
	var found []App
	switch {
	case q.Has("id"):
		for _, raw := range strings.Split(q.Get("id"), ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
			if err != nil || id <= 0 {
				s.mu.Unlock()
				writeAPI(w, http.StatusBadRequest, invalidValue("id"), sw)
				return
			}
			if a, ok := s.byTrackID(id); ok {
				found = append(found, a)
			}
		}
	case q.Has("bundleId"):
		for _, b := range strings.Split(q.Get("bundleId"), ",") {
			if a, ok := s.byBundleID(strings.TrimSpace(b)); ok {
				found = append(found, a)
			}
		}
	}
	s.mu.Unlock()

	resp := response{Results: []result{}}
	for _, a := range found {
		if rating, ok := a.Storefronts[country]; ok {
			resp.Results = append(resp.Results, toResult(a, country, rating))
		}
	}
	resp.ResultCount = len(resp.Results)
	writeAPI(w, http.StatusOK, resp, sw)
}

func (s *Server) byTrackID(id int64) (App, bool) {
	for _, a := range s.state.Apps {
		if a.TrackID == id {
			return a, true
		}
	}
	return App{}, false
}

func (s *Server) byBundleID(b string) (App, bool) {
	for _, a := range s.state.Apps {
		if a.BundleID == b {
			return a, true
		}
	}
	return App{}, false
}

// backend adapts Server to emukit.Backend without exporting the adapter's methods.
type backend struct{ s *Server }

func (b backend) StateJSON() ([]byte, error) { return json.MarshalIndent(b.s.State(), "", "  ") }

func (b backend) SeedJSON(data []byte) error {
	var st State
	if err := emukit.DecodeJSON(data, &st); err != nil {
		return err
	}
	return b.s.Seed(st)
}

func (b backend) UpsertJSON(collection string, data []byte) error {
	if collection != "apps" {
		return fmt.Errorf("%w %q (the iTunes emulator has \"apps\")", emukit.ErrUnknownCollection, collection)
	}
	apps, err := decodeApps(data)
	if err != nil {
		return err
	}
	return b.s.PutApps(apps...)
}

func (b backend) ResetState() {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = s.seed.clone()
	s.storm = 0
	s.bucket.Reset()
}

func (b backend) LimitsJSON() ([]byte, error) { return json.MarshalIndent(b.s.Limits(), "", "  ") }

func (b backend) UpdateLimitsJSON(data []byte) error {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := mergeLimits(s.limits, data)
	if err != nil {
		return err
	}
	s.setLimitsLocked(next)
	return nil
}

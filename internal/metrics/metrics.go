// Package metrics defines owlmetry's Prometheus metrics (engine.md §16.2,
// upstreams.md §2.7) in one place, so every component records into the same set and
// `/metrics` exposes them all.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Set holds every collector. Components take a *Set; New(nil) gives a private set for
// tests and CLI processes that expose nothing.
type Set struct {
	Registry *prometheus.Registry

	RunsCreated      *prometheus.CounterVec
	RunsFinished     *prometheus.CounterVec
	RunsAborted      *prometheus.CounterVec
	RunDuration      *prometheus.HistogramVec
	RunsActive       *prometheus.GaugeVec
	Conflicts        *prometheus.CounterVec
	ScheduleTicks    *prometheus.CounterVec
	RunsRecovered    *prometheus.CounterVec
	CancelRequests   *prometheus.CounterVec
	ProgressWrites   prometheus.Counter
	Emails           *prometheus.CounterVec
	PartitionsAhead  *prometheus.GaugeVec
	HTTPRequests     *prometheus.CounterVec
	HTTPDuration     *prometheus.HistogramVec
	SSEStreams       prometheus.Gauge
	UpstreamRequests *prometheus.CounterVec
	UpstreamDuration *prometheus.HistogramVec
	UpstreamWait     *prometheus.CounterVec
	UpstreamThrottle *prometheus.CounterVec
	ITunesInterval   prometheus.Gauge
}

// New builds the set on a fresh registry with the Go runtime and process collectors.
func New() *Set {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	durations := []float64{.1, .5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600}
	s := &Set{
		Registry:         reg,
		RunsCreated:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "owlmetry_job_runs_created_total", Help: "Runs created, by job type and entry point."}, []string{"job_type", "entry"}),
		RunsFinished:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "owlmetry_job_runs_finished_total", Help: "Runs that reached a terminal state."}, []string{"job_type", "status"}),
		RunsAborted:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "owlmetry_job_runs_aborted_total", Help: "Completed runs whose result says aborted."}, []string{"job_type"}),
		RunDuration:      prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "owlmetry_job_run_duration_seconds", Help: "Run duration from start to finish.", Buckets: durations}, []string{"job_type", "status"}),
		RunsActive:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "owlmetry_job_runs_active", Help: "Pending and running runs (database query, cached 5 s)."}, []string{"job_type", "status"}),
		Conflicts:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "owlmetry_job_conflicts_total", Help: "Enqueues refused because a run of the same key was active."}, []string{"job_type", "entry"}),
		ScheduleTicks:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "owlmetry_schedule_ticks_total", Help: "Cron ticks by outcome."}, []string{"job_type", "outcome"}),
		RunsRecovered:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "owlmetry_runs_recovered_total", Help: "Runs failed by recovery, by reason."}, []string{"reason"}),
		CancelRequests:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "owlmetry_cancel_requests_total", Help: "Cancel requests by job type and run state."}, []string{"job_type", "state"}),
		ProgressWrites:   prometheus.NewCounter(prometheus.CounterOpts{Name: "owlmetry_progress_writes_total", Help: "Persisted progress writes."}),
		Emails:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "owlmetry_emails_total", Help: "E-mails by kind and outcome."}, []string{"kind", "outcome"}),
		PartitionsAhead:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "owlmetry_event_partitions_ahead", Help: "Months covered after the current one."}, []string{"table"}),
		HTTPRequests:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "owlmetry_http_requests_total", Help: "HTTP requests by route pattern, method and status."}, []string{"route", "method", "code"}),
		HTTPDuration:     prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "owlmetry_http_request_duration_seconds", Help: "HTTP request latency.", Buckets: prometheus.DefBuckets}, []string{"route", "method", "code"}),
		SSEStreams:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "owlmetry_sse_streams", Help: "Open event streams."}),
		UpstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "owlmetry_upstream_requests_total", Help: "Upstream requests by upstream, endpoint template and status."}, []string{"upstream", "endpoint", "code"}),
		UpstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "owlmetry_upstream_request_duration_seconds", Help: "Upstream request latency.", Buckets: prometheus.DefBuckets}, []string{"upstream", "endpoint"}),
		UpstreamWait:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "owlmetry_upstream_rate_limit_wait_seconds_total", Help: "Seconds spent waiting for rate limits."}, []string{"upstream"}),
		UpstreamThrottle: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "owlmetry_upstream_throttled_total", Help: "Throttled upstream responses (403/429)."}, []string{"upstream"}),
		ITunesInterval:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "owlmetry_itunes_pacer_interval_seconds", Help: "Current iTunes pacer interval."}),
	}
	for _, c := range []prometheus.Collector{s.RunsCreated, s.RunsFinished, s.RunsAborted, s.RunDuration, s.RunsActive,
		s.Conflicts, s.ScheduleTicks, s.RunsRecovered, s.CancelRequests, s.ProgressWrites, s.Emails, s.PartitionsAhead,
		s.HTTPRequests, s.HTTPDuration, s.SSEStreams, s.UpstreamRequests, s.UpstreamDuration, s.UpstreamWait,
		s.UpstreamThrottle, s.ITunesInterval} {
		f(c)
	}
	return s
}

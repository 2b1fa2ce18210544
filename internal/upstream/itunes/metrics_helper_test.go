package itunes_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// metricValue reads the one sample of a counter, gauge or histogram (its count).
func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	go func() { c.Collect(ch); close(ch) }()
	var out []float64
	for m := range ch {
		var d dto.Metric
		require.NoError(t, m.Write(&d))
		switch {
		case d.Counter != nil:
			out = append(out, d.Counter.GetValue())
		case d.Gauge != nil:
			out = append(out, d.Gauge.GetValue())
		case d.Histogram != nil:
			out = append(out, float64(d.Histogram.GetSampleCount()))
		}
	}
	require.Len(t, out, 1, "one sample")
	return out[0]
}

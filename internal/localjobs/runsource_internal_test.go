package localjobs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/apitype"
	"github.com/owlmetry/owlmetry/internal/db"
	"github.com/owlmetry/owlmetry/internal/pgtest"
)

func TestOutageBackoff(t *testing.T) {
	t.Parallel()
	var got []time.Duration
	for i := 1; i <= 8; i++ {
		got = append(got, outageBackoff(i))
	}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}, got)
}

// A read that fails is reported as an outage and retried after the backoff, not
// returned: the wait decides when contact is lost.
func TestWatchReportsOutages(t *testing.T) {
	t.Parallel()
	tdb := pgtest.New(t)
	pool, err := db.OpenPool(context.Background(), tdb.URL, db.PoolOptions{})
	require.NoError(t, err)
	st, err := New(pool, Config{})
	require.NoError(t, err)
	st.Close() // every read now fails

	waits := make(chan time.Duration, 8)
	src := st.RunSource(time.Second)
	src.after = func(d time.Duration) <-chan time.Time {
		waits <- d
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
	ctx, cancel := context.WithCancel(context.Background())
	var outages int
	err = src.Watch(ctx, "3f2a9c1e-5b7d-4c1a-9e2f-0a1b2c3d4e5f", func(r *apitype.JobRun, _ *apitype.ProgressEvent, outage error) {
		require.Nil(t, r)
		require.Error(t, outage)
		outages++
		if outages == 3 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 3, outages)
	require.Equal(t, time.Second, <-waits)
	require.Equal(t, 2*time.Second, <-waits)
}

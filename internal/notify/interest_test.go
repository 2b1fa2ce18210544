package notify

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/owlmetry/owlmetry/internal/jobtype"
)

// Interested never says no to a run RunFinished acts on: for every kind of ending, its
// answer matches whether RunFinished wrote a job or a notification.
func TestInterestedMatchesRunFinished(t *testing.T) {
	t.Parallel()
	for _, mode := range []AlertMode{AlertAll, AlertFailures} {
		for _, emails := range [][]string{nil, {"ops@example.com"}} {
			b := setup(t, setupOptions{cfg: Config{AlertEmails: emails, AlertOn: mode}, noWorker: true})
			var userID, teamID string
			require.NoError(t, b.pool.QueryRow(b.ctx, `INSERT INTO users (email, name) VALUES ('u@example.com', 'U') RETURNING id`).Scan(&userID))
			require.NoError(t, b.pool.QueryRow(b.ctx, `INSERT INTO teams (name, slug) VALUES ('T', 't') RETURNING id`).Scan(&teamID))
			for _, run := range []FinishedRun{
				{Status: "completed", Result: map[string]any{"_silent": true}},
				{Status: "completed", Result: map[string]any{"_silent": false}},
				{Status: "completed", Result: map[string]any{"aborted": true, "_silent": true}},
				{Status: "failed", Error: ptr("boom")},
				{Status: "cancelled"},
				{Status: "completed", TeamID: &teamID},
				{Status: "failed", TeamID: &teamID, Error: ptr("boom")},
				{Status: "completed", TeamID: &teamID, Notify: true, TriggeredBy: "manual:user:" + userID},
				{Status: "cancelled", TeamID: &teamID, Notify: true, TriggeredBy: "manual:user:" + userID},
			} {
				run.ID, run.JobType = "00000000-0000-4000-8000-000000000001", jobtype.PartitionCreation
				if run.TriggeredBy == "" {
					run.TriggeredBy = "schedule"
				}
				run.CompletedAt = time.Now().UTC()
				interested := b.svc.Interested(run)
				var jobs, inbox int
				err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
					if err := b.svc.RunFinished(b.ctx, tx, b.client, run); err != nil {
						return err
					}
					if err := tx.QueryRow(b.ctx, `SELECT count(*) FROM river_job`).Scan(&jobs); err != nil {
						return err
					}
					if err := tx.QueryRow(b.ctx, `SELECT count(*) FROM notifications`).Scan(&inbox); err != nil {
						return err
					}
					return errRollback
				})
				require.ErrorIs(t, err, errRollback)
				require.Equal(t, jobs+inbox > 0, interested, "mode %s, alerts %v, run %+v", mode, emails, run)
			}
		}
	}
}

var errRollback = errors.New("rolled back on purpose")

package notify

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func (b *bundle) dispatch(t *testing.T, n Notification) int {
	t.Helper()
	var count int
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		var err error
		count, err = Dispatch(b.ctx, tx, b.client, n)
		return err
	}))
	return count
}

func TestDispatchChannelsAndRecipients(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{noWorker: true})
	s := b.seedTeam(t)
	alice := b.seedUser(t, "alice@example.com", "")
	bob := b.seedUser(t, "bob@example.com", `{"notifications":{"types":{"issue.new":{"email":true,"in_app":false}}}}`)

	tests := []struct {
		typ   string
		alice []string // channels
		bob   []string
	}{
		{TypeIssueNew, []string{ChannelInApp}, []string{ChannelEmail}},
		{TypeIssueDigest, []string{ChannelEmail}, []string{ChannelEmail}},
		{TypeAppRatingChanged, []string{ChannelInApp}, []string{ChannelInApp}},
		{TypeAppReviewNew, []string{ChannelEmail, ChannelInApp}, []string{ChannelEmail, ChannelInApp}},
		{TypeJobCompleted, []string{ChannelEmail, ChannelInApp}, []string{ChannelEmail, ChannelInApp}},
	}
	for _, tt := range tests {
		_, err := b.pool.Exec(b.ctx, `DELETE FROM notifications`)
		require.NoError(t, err)
		jobsBefore := len(b.emailJobs(t))
		n := b.dispatch(t, Notification{
			Type: tt.typ, TeamID: &s.teamID,
			Recipients: []string{alice, strings.ToUpper(bob), "6f1c2d3e-0000-4000-8000-000000000099", "nope", alice, ""},
			Title:      "title", Data: map[string]any{"k": 1},
		})
		require.Equal(t, 2, n, "%s: unknown and malformed ids dropped, duplicates removed", tt.typ)
		for user, want := range map[string][]string{alice: tt.alice, bob: tt.bob} {
			var got []string
			for _, d := range b.deliveries(t, user) {
				got = append(got, d.Channel)
				switch d.Channel {
				case ChannelInApp:
					require.Equal(t, DeliverySent, d.Status)
				case ChannelEmail:
					require.Equal(t, DeliveryPending, d.Status)
					require.Nil(t, d.AttemptedAt)
				}
			}
			require.Equal(t, want, got, "%s", tt.typ)
		}
		wantJobs := 0
		for _, ch := range append(append([]string{}, tt.alice...), tt.bob...) {
			if ch == ChannelEmail {
				wantJobs++
			}
		}
		jobs := b.emailJobs(t)
		require.Len(t, jobs, jobsBefore+wantJobs, "%s: one email_delivery job per email row", tt.typ)
		for _, j := range jobs[jobsBefore:] {
			a := decodeArgs(t, j)
			require.NotEmpty(t, a.DeliveryID)
			require.Empty(t, a.Subject, "user e-mails are rendered at send time")
			var channel, status string
			require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT channel, status FROM notification_deliveries WHERE id = $1`,
				a.DeliveryID).Scan(&channel, &status))
			require.Equal(t, ChannelEmail, channel)
		}
	}

	var pushRows int
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM notification_deliveries WHERE channel = 'mobile_push'`).Scan(&pushRows))
	require.Zero(t, pushRows, "no push adapter, no push rows")

	var body, link *string
	var teamID string
	var data map[string]any
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT body, link, team_id::text, data FROM notifications WHERE user_id = $1`, alice).
		Scan(&body, &link, &teamID, &data))
	require.Nil(t, body)
	require.Nil(t, link)
	require.Equal(t, s.teamID, teamID)
	require.Equal(t, map[string]any{"k": 1.0}, data)
}

func TestDispatchRefusesAndRollsBack(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{noWorker: true})
	user := b.seedUser(t, "alice@example.com", "")

	err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		_, err := Dispatch(b.ctx, tx, b.client, Notification{Type: "issue.old", Recipients: []string{user}, Title: "x"})
		return err
	})
	require.ErrorContains(t, err, `unknown notification type "issue.old"`)
	err = pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		_, err := Dispatch(b.ctx, tx, b.client, Notification{Type: TypeIssueNew, Recipients: []string{user}, Title: " "})
		return err
	})
	require.ErrorContains(t, err, "empty title")

	// The caller's rollback takes the rows and their e-mail jobs with it.
	sentinel := errors.New("the data change failed")
	err = pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		n, err := Dispatch(b.ctx, tx, b.client, Notification{Type: TypeAppReviewNew, Recipients: []string{user}, Title: "x"})
		require.NoError(t, err)
		require.Equal(t, 1, n)
		return sentinel
	})
	require.ErrorIs(t, err, sentinel)
	var rows int
	require.NoError(t, b.pool.QueryRow(b.ctx, `SELECT count(*) FROM notifications`).Scan(&rows))
	require.Zero(t, rows)
	require.Empty(t, b.emailJobs(t))

	require.Zero(t, b.dispatch(t, Notification{Type: TypeIssueNew, Title: "x"}), "no recipients, nothing to do")
}

func TestProjectRecipients(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{noWorker: true})
	s := b.seedTeam(t)
	other := b.seedTeam(t)
	alice := b.seedUser(t, "alice@example.com", "")
	bob := b.seedUser(t, "bob@example.com", "")
	carol := b.seedUser(t, "carol@example.com", "")
	b.addMember(t, s.teamID, alice)
	b.addMember(t, s.teamID, bob)
	b.addMember(t, other.teamID, carol)
	_, err := b.pool.Exec(b.ctx, `UPDATE team_members SET role = 'owner' WHERE user_id = $1`, bob)
	require.NoError(t, err)

	teamID, members, err := ProjectRecipients(b.ctx, b.pool, s.projectID)
	require.NoError(t, err)
	require.Equal(t, s.teamID, teamID)
	require.ElementsMatch(t, []string{alice, bob}, members, "any role, only this team")

	members, err = TeamMembers(b.ctx, b.pool, other.teamID)
	require.NoError(t, err)
	require.Equal(t, []string{carol}, members)

	_, err = b.pool.Exec(b.ctx, `DELETE FROM team_members WHERE team_id = $1`, other.teamID)
	require.NoError(t, err)
	_, members, err = ProjectRecipients(b.ctx, b.pool, other.projectID)
	require.NoError(t, err)
	require.Empty(t, members)

	_, _, err = ProjectRecipients(b.ctx, b.pool, "6f1c2d3e-0000-4000-8000-000000000099")
	require.ErrorIs(t, err, ErrProjectNotFound)
	_, _, err = ProjectRecipients(b.ctx, b.pool, "not-a-uuid")
	require.ErrorIs(t, err, ErrProjectNotFound)
}

// Producers' notifications are e-mailed with the templates of jobs.md §3.7 rule 4,
// rendered by the worker from the stored row.
func TestDispatchedEmailsAreRenderedAtSendTime(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOptions{cfg: Config{WebAppURL: "https://owl.example.com"}})
	s := b.seedTeam(t)
	alice := b.seedUser(t, "alice@example.com", "")
	b.addMember(t, s.teamID, alice)
	teamID, members, err := ProjectRecipients(b.ctx, b.pool, s.projectID)
	require.NoError(t, err)

	b.dispatch(t, Notification{
		Type: TypeIssueDigest, TeamID: &teamID, Recipients: members, Title: "1 issue in Owl App",
		Body: "🆕 Crash in <Feed>", Link: "/dashboard/issues",
		Data: map[string]any{"project_id": s.projectID, "project_name": "Owl App", "dashboard_url": "https://owl.example.com/dashboard/issues",
			"issues": []any{map[string]any{"id": "i1", "title": "Crash in <Feed>", "status": "new",
				"occurrence_count": 7, "unique_user_count": 2, "app_name": "Owl iOS"}}},
	})
	m := b.sink.wait(t, 1)[0].parse(t)
	require.Equal(t, "[Owlmetry] 🐛 1 issue in Owl App", m.Subject)
	require.Contains(t, m.HTML, "Crash in &lt;Feed&gt;")
	require.Contains(t, m.HTML, ">7<")
	require.Contains(t, m.HTML, `href="https://owl.example.com/dashboard/issues"`)
	b.waitSettled(t, 1)

	b.dispatch(t, Notification{
		Type: TypeAppReviewNew, TeamID: &teamID, Recipients: members, Title: "1 new review on Owl iOS",
		Body: "Latest: ★★★★☆ — Lovely <3", Link: "/dashboard/reviews?app_id=a1",
	})
	r := b.sink.wait(t, 1)[0]
	require.Equal(t, []string{"alice@example.com"}, r.To)
	m = r.parse(t)
	require.Equal(t, "[Owlmetry] 1 new review on Owl iOS", m.Subject)
	require.Contains(t, m.HTML, "Latest: ★★★★☆ — Lovely &lt;3")
	require.Contains(t, m.HTML, `href="https://owl.example.com/dashboard/reviews?app_id=a1"`)
	require.Contains(t, m.HTML, ">View reviews</a>")
	require.Contains(t, m.Text, "View reviews: https://owl.example.com/dashboard/reviews?app_id=a1")
	b.waitSettled(t, 1)
	require.Equal(t, 1.0, b.emailCount(TypeIssueDigest, OutcomeSent))
	require.Equal(t, 1.0, b.emailCount(TypeAppReviewNew, OutcomeSent))
}

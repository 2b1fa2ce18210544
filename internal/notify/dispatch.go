package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/owlmetry/owlmetry/internal/db"
)

// The notification types of jobs.md §3.7.
const (
	TypeIssueNew         = "issue.new"
	TypeIssueDigest      = "issue.digest"
	TypeAppRatingChanged = "app.rating_changed"
	TypeAppReviewNew     = "app.review_new"
	TypeJobCompleted     = "job.completed"
)

// The delivery channels. mobile_push rows are never written while no push adapter
// exists (jobs.md §3.7).
const (
	ChannelInApp      = "in_app"
	ChannelEmail      = "email"
	ChannelMobilePush = "mobile_push"
)

// The statuses of a notification_deliveries row (schema.md §8.2).
const (
	DeliveryPending = "pending"
	DeliverySent    = "sent"
	DeliverySkipped = "skipped"
	DeliveryFailed  = "failed"
)

// channelDefaults is the table of jobs.md §3.7: whether a channel is on when the user's
// preferences say nothing.
var channelDefaults = map[string]map[string]bool{
	TypeIssueNew:         {ChannelInApp: true, ChannelEmail: false, ChannelMobilePush: true},
	TypeIssueDigest:      {ChannelInApp: false, ChannelEmail: true, ChannelMobilePush: false},
	TypeAppRatingChanged: {ChannelInApp: true, ChannelEmail: false, ChannelMobilePush: true},
	TypeAppReviewNew:     {ChannelInApp: true, ChannelEmail: true, ChannelMobilePush: true},
	TypeJobCompleted:     {ChannelInApp: true, ChannelEmail: true, ChannelMobilePush: true},
}

// KnownType reports whether t is one of the five notification types.
func KnownType(t string) bool {
	_, ok := channelDefaults[t]
	return ok
}

// ChannelDefault is the channel's setting for a type when preferences say nothing.
func ChannelDefault(notificationType, channel string) bool {
	return channelDefaults[notificationType][channel]
}

// Notification is what a producer asks Dispatch to deliver.
type Notification struct {
	// Type is one of the Type constants.
	Type string
	// TeamID becomes notifications.team_id; nil for none.
	TeamID *string
	// Recipients are user ids. Unknown and malformed ids are dropped and duplicates
	// removed, so producers can pass team members as they come.
	Recipients []string
	// Title is the inbox title.
	Title string
	// Body is the inbox body; "" stores NULL.
	Body string
	// Link is a dashboard path such as /dashboard/issues; "" stores NULL.
	Link string
	// Data is the type's JSON payload; nil stores {}.
	Data map[string]any
}

// Dispatch delivers n inside the caller's transaction (jobs.md §3.7): one notifications
// row per known recipient, an in_app delivery marked sent and an email delivery marked
// pending for each channel the recipient's preferences enable, and for every email
// delivery one email_delivery job inserted through ins in the same transaction. The row
// and its job commit or roll back together, so a notification is never lost or mailed
// twice. It returns the number of notifications rows.
func Dispatch(ctx context.Context, tx pgx.Tx, ins Inserter, n Notification) (int, error) {
	if !KnownType(n.Type) {
		return 0, fmt.Errorf("dispatch: unknown notification type %q", n.Type)
	}
	if strings.TrimSpace(n.Title) == "" {
		return 0, fmt.Errorf("dispatch %s: empty title", n.Type)
	}
	ids := uniqueUUIDs(n.Recipients)
	if len(ids) == 0 {
		return 0, nil
	}
	data := n.Data
	if data == nil {
		data = map[string]any{}
	}
	dataJSON, err := json.Marshal(data)
	if err != nil {
		return 0, fmt.Errorf("dispatch %s: encode data: %w", n.Type, err)
	}

	prefs, err := loadPreferences(ctx, tx, ids)
	if err != nil {
		return 0, fmt.Errorf("dispatch %s: %w", n.Type, err)
	}
	count := 0
	for _, id := range ids {
		p, ok := prefs[id]
		if !ok {
			continue // unknown user: dropped
		}
		inApp := channelEnabled(p, n.Type, ChannelInApp)
		email := channelEnabled(p, n.Type, ChannelEmail)
		var notificationID string
		var deliveryID *string
		err := tx.QueryRow(ctx, sqlInsertNotification,
			id, n.TeamID, n.Type, n.Title, nullIfEmpty(n.Body), nullIfEmpty(n.Link), dataJSON, inApp, email,
		).Scan(&notificationID, &deliveryID)
		if err != nil {
			return count, fmt.Errorf("dispatch %s to user %s: %w", n.Type, id, err)
		}
		if deliveryID != nil {
			if _, err := ins.InsertTx(ctx, tx, EmailArgs{DeliveryID: *deliveryID}, emailInsertOpts()); err != nil {
				return count, fmt.Errorf("dispatch %s to user %s: enqueue e-mail: %w", n.Type, id, err)
			}
		}
		count++
	}
	return count, nil
}

// loadPreferences returns the preferences of the users that exist among ids.
func loadPreferences(ctx context.Context, q db.DBTX, ids []string) (map[string][]byte, error) {
	rows, err := q.Query(ctx, sqlUserPreferences, ids)
	if err != nil {
		return nil, fmt.Errorf("load recipients: %w", err)
	}
	defer rows.Close()
	m := make(map[string][]byte, len(ids))
	for rows.Next() {
		var id string
		var prefs []byte
		if err := rows.Scan(&id, &prefs); err != nil {
			return nil, fmt.Errorf("load recipients: %w", err)
		}
		m[id] = prefs
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load recipients: %w", err)
	}
	return m, nil
}

// channelEnabled applies users.preferences.notifications.types[type][channel] when it is a
// boolean, else the type's default (schema.md §8.3).
func channelEnabled(prefs []byte, notificationType, channel string) bool {
	var p struct {
		Notifications struct {
			Types map[string]map[string]json.RawMessage `json:"types"`
		} `json:"notifications"`
	}
	if len(prefs) > 0 && json.Unmarshal(prefs, &p) == nil {
		switch string(p.Notifications.Types[notificationType][channel]) {
		case "true":
			return true
		case "false":
			return false
		}
	}
	return ChannelDefault(notificationType, channel)
}

// uniqueUUIDs lower-cases ids, drops the ones that are not UUIDs (they cannot name a
// user) and removes duplicates, keeping the first occurrence's order.
func uniqueUUIDs(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		id = strings.ToLower(strings.TrimSpace(id))
		if !isUUID(id) || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out
}

// isUUID reports the canonical 8-4-4-4-12 hex form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ErrProjectNotFound is returned by ProjectRecipients for a project id with no row.
var ErrProjectNotFound = errors.New("project not found")

// TeamMembers returns the team members of jobs.md §3.2.1: every team_members.user_id of
// the team, any role, de-duplicated, in a stable order.
func TeamMembers(ctx context.Context, q db.DBTX, teamID string) ([]string, error) {
	rows, err := q.Query(ctx, sqlTeamMembers, teamID)
	if err != nil {
		return nil, fmt.Errorf("list members of team %s: %w", teamID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list members of team %s: %w", teamID, err)
	}
	return ids, nil
}

// ProjectRecipients returns the team of a project and that team's members: the
// recipients and notifications.team_id of a job-produced notification (jobs.md §3.7
// rule 1). An unknown project is ErrProjectNotFound; a team without members gives an
// empty list, which the caller counts as a skip.
func ProjectRecipients(ctx context.Context, q db.DBTX, projectID string) (teamID string, userIDs []string, err error) {
	if !isUUID(strings.ToLower(projectID)) {
		return "", nil, fmt.Errorf("project %s: %w", projectID, ErrProjectNotFound)
	}
	if err := q.QueryRow(ctx, sqlProjectTeam, projectID).Scan(&teamID); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return "", nil, fmt.Errorf("project %s: %w", projectID, ErrProjectNotFound)
		}
		return "", nil, fmt.Errorf("find team of project %s: %w", projectID, err)
	}
	userIDs, err = TeamMembers(ctx, q, teamID)
	return teamID, userIDs, err
}

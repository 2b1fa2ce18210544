package notify

// The package's SQL, named. Ids travel as text and are cast in SQL, so callers never
// need a UUID type.

// sqlUserPreferences returns id and preferences of the users that exist among $1.
const sqlUserPreferences = `
SELECT id::text, preferences FROM users WHERE id = ANY ($1::uuid[])`

// sqlInsertNotification inserts one notification with its in_app ($8) and email ($9)
// deliveries in one statement and returns the notification id and the email delivery
// id (NULL without one).
const sqlInsertNotification = `
WITH n AS (
    INSERT INTO notifications (user_id, team_id, type, title, body, link, data)
    VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7::jsonb)
    RETURNING id
), d AS (
    INSERT INTO notification_deliveries (notification_id, channel, status, attempted_at)
    SELECT n.id, 'in_app', 'sent', now() FROM n WHERE $8::boolean
    UNION ALL
    SELECT n.id, 'email', 'pending', NULL FROM n WHERE $9::boolean
    RETURNING id, channel
)
SELECT (SELECT id::text FROM n), (SELECT id::text FROM d WHERE channel = 'email')`

// sqlTeamMembers lists a team's members, de-duplicated (jobs.md §3.2.1).
const sqlTeamMembers = `
SELECT DISTINCT user_id::text FROM team_members WHERE team_id = $1::uuid ORDER BY 1`

// sqlProjectTeam finds a project's team.
const sqlProjectTeam = `
SELECT team_id::text FROM projects WHERE id = $1::uuid`

// sqlAPIKeyCreator finds who created an API key, soft-deleted keys included
// (engine.md §14.3).
const sqlAPIKeyCreator = `
SELECT created_by::text FROM api_keys WHERE id = $1::uuid`

// sqlLoadDelivery reads an email delivery with its notification and recipient.
const sqlLoadDelivery = `
SELECT d.status, d.channel, n.type, n.title, coalesce(n.body, ''), coalesce(n.link, ''),
       n.data, coalesce(n.team_id::text, ''), u.email
FROM notification_deliveries d
JOIN notifications n ON n.id = d.notification_id
JOIN users u ON u.id = n.user_id
WHERE d.id = $1::uuid`

// sqlLoadRun reads the parts of a run a job.completed e-mail shows.
const sqlLoadRun = `
SELECT triggered_by, team_id::text, project_id::text, started_at, completed_at
FROM job_runs WHERE id = $1::uuid`

// sqlRecordDelivery records an attempt on a delivery that is still pending; a row
// another path already finished is left alone.
const sqlRecordDelivery = `
UPDATE notification_deliveries
SET status = $2, error = $3, attempted_at = now(), attempt_metadata = $4::jsonb
WHERE id = $1::uuid AND status = 'pending'`

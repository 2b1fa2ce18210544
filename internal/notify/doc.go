// Package notify delivers what the engine and the handlers want to tell people: system
// alerts to the server owner, "notify me when done" e-mails, and in-app notification
// rows (engine.md §14, jobs.md §3.7).
//
// # The outbox in five steps
//
// Every e-mail goes through a durable outbox: a River job of kind email_delivery on the
// internal queue, inserted in the same transaction as the event it reports. Nothing is
// sent from inside a transaction and nothing is decided after one, so a crash, a
// rollback or an SMTP outage can neither lose an e-mail nor send one for an event that
// did not happen.
//
// 1. Configure. LoadConfig reads SMTP_URL (or SMTP_HOST and friends), EMAIL_FROM,
// WEB_APP_URL and the SYSTEM_JOBS_ALERT_* variables. Without SMTP the log transport
// writes one INFO line per e-mail instead of sending it.
//
//	cfg, err := notify.LoadConfig(lookupEnv) // the process environment, injected
//	svc := notify.New(notify.Options{Config: cfg, Pool: pool, Logger: log, Metrics: m})
//
// 2. Register the worker on every River client that works the internal queue:
//
//	workers := river.NewWorkers()
//	svc.RegisterWorkers(workers)
//
// 3. Decide inside the transaction. The engine calls RunFinished in the transaction of
// every terminal transition; handlers call Dispatch in the transaction of the data change
// they report. Both insert their rows and their email_delivery jobs through the
// Inserter they are given (a started client or an insert-only one):
//
//	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
//		// … the change being reported …
//		_, err := notify.Dispatch(ctx, tx, riverClient, notify.Notification{
//			Type: notify.TypeAppReviewNew, TeamID: &teamID, Recipients: members,
//			Title: "2 new reviews on Owl", Body: "Latest: ★★★★☆ — Nice", Link: "/dashboard/reviews",
//		})
//		return err
//	})
//
// A system alert's job carries the rendered message. A user notification's job carries
// only its delivery_id: the worker renders the e-mail from the notifications row when it
// sends, and a delivery that is no longer pending by then is skipped.
//
// 4. Send. The worker hands the message to the transport. A transient failure (refused
// connection, timeout, a 4xx reply) returns an error, and River tries again after
// RetryDelay: 5s, 10s, 20s … capped at 10 minutes, ±10 % jitter, for up to 48 hours
// after the job was created. A permanent failure (a 5xx reply to MAIL, RCPT or DATA, an
// unusable address) stops at once with river.JobCancel.
//
// 5. Record. For user e-mails the worker writes the outcome to notification_deliveries
// (status sent or failed, attempted_at, error, attempt_metadata with the attempt count,
// the transport and the SMTP code) and every attempt counts in owlmetry_emails_total
// {kind, outcome}.
//
// A process killed mid-send leaves its job running in River; River's rescuer makes it
// available again once the attempt's timeout has passed, and the e-mail goes out then.
package notify

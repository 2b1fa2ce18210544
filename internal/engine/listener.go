package engine

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Event is one job_runs change notification (engine.md §3.3). Kind is insert, status,
// cancel or progress; resync means notifications may have been missed (the listener
// reconnected) and subscribers should re-read the row.
type Event struct {
	RunID string
	Kind  string
}

// notifyChannel is the channel of the job_runs trigger.
const notifyChannel = "owlmetry_job_run"

// Subscription delivers the events of one run, or of all runs.
type Subscription struct {
	C      <-chan Event
	c      chan Event
	runID  string
	b      *broker
	closed bool
}

// Close ends the subscription.
func (s *Subscription) Close() { s.b.unsubscribe(s) }

// broker fans the control session's notifications out to the executor (cancel delivery)
// and to subscribers such as the API's event streams.
type broker struct {
	e    *Engine
	mu   sync.Mutex
	subs map[string]map[*Subscription]struct{}
}

func newBroker(e *Engine) *broker {
	return &broker{e: e, subs: map[string]map[*Subscription]struct{}{}}
}

// Subscribe delivers the events of runID ("" = every run). Events are coalesced when the
// subscriber is slow: a full buffer drops events, since each one only says "re-read".
func (e *Engine) Subscribe(runID string) *Subscription {
	return e.broker.subscribe(runID)
}

func (b *broker) subscribe(runID string) *Subscription {
	c := make(chan Event, 16)
	s := &Subscription{C: c, c: c, runID: runID, b: b}
	b.mu.Lock()
	if b.subs[runID] == nil {
		b.subs[runID] = map[*Subscription]struct{}{}
	}
	b.subs[runID][s] = struct{}{}
	b.mu.Unlock()
	return s
}

func (b *broker) unsubscribe(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	delete(b.subs[s.runID], s)
	if len(b.subs[s.runID]) == 0 {
		delete(b.subs, s.runID)
	}
	close(s.c)
}

func (b *broker) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	send := func(set map[*Subscription]struct{}) {
		for s := range set {
			select {
			case s.c <- ev:
			default:
			}
		}
	}
	if ev.RunID == "" { // resync: everyone
		for _, set := range b.subs {
			send(set)
		}
		return
	}
	send(b.subs[ev.RunID])
	send(b.subs[""])
}

// listen holds the control session: LISTEN owlmetry_job_run and, for servers, the node
// lock. It reconnects with backoff (0.5 s doubling, max 10 s), then re-takes the lock and
// re-reads the cancel requests of owned runs, because notifications sent while it was
// away are lost (engine.md §11.7).
func (e *Engine) listen(ctx context.Context, conn *pgx.Conn) {
	backoff := 500 * time.Millisecond
	for {
		if conn == nil {
			c, err := e.connectControl(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				e.log.Warn("control session reconnect failed", "error", err, "retry_in", backoff.String())
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 10*time.Second)
				continue
			}
			conn = c
			backoff = 500 * time.Millisecond
			e.mu.Lock()
			e.ctrlConn = conn
			e.mu.Unlock()
			e.broker.publish(Event{Kind: "resync"})
			e.recheckCancels(ctx)
		}
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Warn("control session lost", "error", err)
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Close(closeCtx)
			cancel()
			conn = nil
			e.mu.Lock()
			e.ctrlConn = nil
			e.mu.Unlock()
			continue
		}
		id, kind, ok := strings.Cut(n.Payload, ":")
		if !ok {
			continue
		}
		if kind == "cancel" {
			e.deliverCancel(id)
		}
		e.broker.publish(Event{RunID: id, Kind: kind})
	}
}

// connectControl opens the control session and subscribes; servers also take the node lock.
func (e *Engine) connectControl(ctx context.Context) (*pgx.Conn, error) {
	cfg := e.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "owlmetry-control"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	if !e.cfg.Local {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended('owlmetry.node:' || $1, 0))`, e.nodeID).Scan(&got); err != nil {
			conn.Close(ctx)
			return nil, err
		}
		e.mu.Lock()
		e.nodeLock = got
		e.mu.Unlock()
	}
	return conn, nil
}

// recheckCancels reads cancel_requested_at of every owned run after a reconnect.
func (e *Engine) recheckCancels(ctx context.Context) {
	ids := e.ownedIDs()
	if len(ids) == 0 {
		return
	}
	rows, err := e.ctrl.Query(ctx, `SELECT id FROM job_runs WHERE id = ANY($1) AND cancel_requested_at IS NOT NULL`, ids)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if rows.Scan(&id) == nil {
			e.deliverCancel(id)
		}
	}
}

package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/owlmetry/owlmetry/internal/notify"
)

// LateInserter is a notify.Inserter bound after the handlers are built. Handlers can
// insert the River jobs of their notifications through the engine's River client, but
// that client exists only once engine.New has received the handlers; the caller builds
// the handlers with a LateInserter and binds the client as soon as the engine exists:
//
//	ins := &jobs.LateInserter{}
//	eng, err := engine.New(pool, engine.Config{Handlers: jobs.All(jobs.Deps{Inserter: ins})})
//	…
//	ins.Bind(eng.River())
//
// It is safe for concurrent use.
type LateInserter struct {
	target atomic.Pointer[notify.Inserter]
}

// ErrInserterUnbound is what a LateInserter returns when asked to insert before Bind.
var ErrInserterUnbound = errors.New("notification job inserter is not bound to the engine's River client")

// Bind makes ins the inserter every later InsertTx uses.
func (l *LateInserter) Bind(ins notify.Inserter) { l.target.Store(&ins) }

// InsertTx inserts through the bound inserter, or fails with ErrInserterUnbound.
func (l *LateInserter) InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	p := l.target.Load()
	if p == nil || *p == nil {
		return nil, ErrInserterUnbound
	}
	return (*p).InsertTx(ctx, tx, args, opts)
}

// insertOnlyClients holds the insert-only River clients of handlers built without an
// Inserter, one per pool.
type insertOnlyClients struct {
	log     *slog.Logger
	mu      sync.Mutex
	clients map[*pgxpool.Pool]*river.Client[pgx.Tx]
}

// inserter returns the injected inserter or, when there is none, an insert-only River
// client on pool (never started: it only inserts, inside the caller's transaction, into
// the tables every engine works). Either way the notification's job commits or rolls
// back with the data change it reports.
func (d *Deps) inserter(pool *pgxpool.Pool) (notify.Inserter, error) {
	if d.Inserter != nil {
		return d.Inserter, nil
	}
	c := d.insertOnly
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc, ok := c.clients[pool]; ok {
		return rc, nil
	}
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{SkipUnknownJobCheck: true, Logger: c.log})
	if err != nil {
		return nil, fmt.Errorf("build notification job inserter: %w", err)
	}
	c.clients[pool] = rc
	return rc, nil
}

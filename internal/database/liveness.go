package database

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// defaultIdlePing is pgx's own rule for database/sql pools: a connection
// idle for more than a second is pinged before it is lent again.
const defaultIdlePing = time.Second

// livenessKey keys, in a connection's pgconn custom data, the epoch at
// which it was last known alive.
const livenessKey = "timeslots.liveness"

// liveness decides when a pooled PostgreSQL connection is pinged before
// it is lent again. pgx pings only a connection idle for more than a
// second, so after PostgreSQL restarts every connection used within the
// last second would fail its next statement (57P01 admin_shutdown, or a
// broken socket): one request answered UNAVAILABLE per dead connection.
// Instead, once the pool has reason to think its connections died — a
// statement found its connection broken, or the change feed's listener
// lost its own (DB.CheckConnections) — the epoch moves on, and every
// connection last known alive in an older epoch is pinged before its
// next use; database/sql drops those that fail and lends another, or a
// new one.
type liveness struct {
	epoch atomic.Uint64
	// idlePing: a connection idle for longer is pinged anyway
	// (Options.IdlePing).
	idlePing time.Duration
}

func newLiveness(idlePing time.Duration) *liveness {
	if idlePing <= 0 {
		idlePing = defaultIdlePing
	}
	return &liveness{idlePing: idlePing}
}

// openPool opens a database/sql pool on pgx with conf, whose connections
// liveness checks; tracer (if any) sees every statement too.
func (l *liveness) openPool(conf pgx.ConnConfig, tracer pgx.QueryTracer) *sql.DB {
	conf.Tracer = l
	if tracer != nil {
		conf.Tracer = multitracer.New(tracer, l)
	}
	return stdlib.OpenDB(conf,
		stdlib.OptionAfterConnect(func(_ context.Context, c *pgx.Conn) error {
			c.PgConn().CustomData()[livenessKey] = l.epoch.Load()
			return nil
		}),
		stdlib.OptionShouldPing(l.shouldPing))
}

// suspect moves the epoch on: every connection is pinged before its next
// use.
func (l *liveness) suspect() { l.epoch.Add(1) }

// shouldPing is called by pgx before a pooled connection is lent again.
func (l *liveness) shouldPing(_ context.Context, p stdlib.ShouldPingParams) bool {
	data := p.Conn.PgConn().CustomData()
	now := l.epoch.Load()
	if seen, _ := data[livenessKey].(uint64); seen != now {
		// Pinged now; one that fails the ping is dropped.
		data[livenessKey] = now
		return true
	}
	return p.IdleDuration > l.idlePing
}

// TraceQueryStart implements pgx.QueryTracer.
func (l *liveness) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

// TraceQueryEnd suspects every connection of the pool when a statement
// found its connection dead (pgx closes a connection whose server process
// ended or whose socket broke), unless the statement's own deadline or
// cancellation closed it.
func (l *liveness) TraceQueryEnd(_ context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if data.Err != nil && conn.IsClosed() && IsConnectionLost(data.Err) {
		l.suspect()
	}
}

// IsConnectionLost reports whether err says that the connection a
// statement ran on was found dead: its server process ended (57P01
// admin_shutdown, 57P02 crash_shutdown: PostgreSQL restarted or the
// backend was terminated), the connection failed (class 08), or it broke
// without an answer. A read that failed so may run again at once, on
// another connection. A connection that could not be opened at all is not
// lost (PostgreSQL is down), nor one closed by the statement's own
// deadline or cancellation.
func IsConnectionLost(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "57P01" || pg.Code == "57P02" || (len(pg.Code) == 5 && pg.Code[:2] == "08")
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return false
	}
	return brokenConnection(err)
}

// CheckConnections has every pooled connection to the primary pinged
// before its next use (see liveness): the caller has seen the database go
// away, as the change feed's listener does when PostgreSQL restarts. On
// SQLite it does nothing.
func (d *DB) CheckConnections() {
	if d.live != nil {
		d.live.suspect()
	}
}

package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Timings of the listener.
const (
	// idleCheck is how long the listener waits for a notification before
	// it pings the server, so a connection that died silently is noticed.
	idleCheck = 30 * time.Second
	// pingTimeout bounds that ping and each connection attempt.
	pingTimeout = 10 * time.Second
	// Reconnection attempts wait from minBackoff, doubling, up to
	// maxBackoff, each with up to half again at random.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// listener is the dedicated connection of a PostgreSQL feed: it LISTENs
// on Channel and publishes the other replicas' events locally.
type listener struct {
	f      *Feed
	config *pgx.ConnConfig
	log    *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	received   atomic.Uint64
	reconnects atomic.Uint64
	connected  atomic.Bool
	pid        atomic.Uint32 // the backend of the current connection; 0 while disconnected
}

// NewPostgres answers a feed shared with the other replicas on the
// database at dsn. What this replica publishes is also sent to them with
// NOTIFY on Channel (see sender), and a dedicated connection LISTENs on
// Channel and publishes every notification from another origin locally
// (this replica delivered its own already). The listening connection is
// first tried before NewPostgres returns; when it fails or is lost, the
// listener connects again by itself with backoff and then publishes a
// Refetch event, since changes committed while it was away are not
// replayed (until then Healthy answers false). Only a malformed dsn is
// an error. Close stops both, after sending what is queued.
func NewPostgres(ctx context.Context, dsn string, logger *slog.Logger) (*Feed, error) {
	config, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("feed: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := NewLocal()
	l := &listener{f: f, config: config, log: logger.With("component", "feed"), done: make(chan struct{})}
	conn, err := l.connect(ctx)
	if err != nil {
		// The server starts anyway (its pool may still serve, say when
		// connections are scarce); the listener keeps trying, and its
		// subscribers refetch once it is connected.
		l.log.Warn("feed listener cannot connect yet; retrying", "err", err)
		conn = nil
	}
	f.remote = l
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	go l.run(runCtx, conn)
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(ctx))
	f.out = &sender{f: f, config: config, log: l.log, queue: make(chan Event, sendQueue), cancel: cancelSend, done: make(chan struct{})}
	go f.out.run(sendCtx)
	return f, nil
}

// BackendPID answers the PostgreSQL backend of the listener's connection,
// or 0 when it is disconnected or the feed is local (tests terminate it to
// prove reconnection).
func (f *Feed) BackendPID() uint32 {
	if f.remote == nil {
		return 0
	}
	return f.remote.pid.Load()
}

// connect opens the dedicated connection and LISTENs.
func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, l.config.Copy())
	if err != nil {
		return nil, fmt.Errorf("feed: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("feed: listen: %w", err)
	}
	l.pid.Store(conn.PgConn().PID())
	l.connected.Store(true)
	return conn, nil
}

// run receives notifications on conn (nil: not connected yet) until ctx
// ends, reconnecting whenever the connection fails.
func (l *listener) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	for {
		if conn != nil {
			err := l.receive(ctx, conn)
			l.connected.Store(false)
			l.pid.Store(0)
			_ = conn.Close(context.Background())
			if ctx.Err() != nil {
				return
			}
			l.f.losses.Add(1)
			l.f.setHealth(false)
			l.log.Warn("feed listener lost its connection; reconnecting", "err", err)
		}
		if conn = l.reconnect(ctx); conn == nil {
			return
		}
		l.reconnects.Add(1)
		l.log.Info("feed listener reconnected; subscribers refetch")
		l.f.setHealth(true)
		l.publish(Event{Kind: Refetch})
	}
}

// receive publishes the notifications that arrive on conn until it fails
// or ctx ends. After idleCheck without one it pings the server.
func (l *listener) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		wait, cancel := context.WithTimeout(ctx, idleCheck)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			l.notification(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			ping, cancel := context.WithTimeout(ctx, pingTimeout)
			err = conn.Ping(ping)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return err
		}
	}
}

// notification publishes the events of one payload unless this feed sent
// them. A payload it cannot read means events were lost: subscribers
// refetch.
func (l *listener) notification(payload string) {
	origin, events, err := Decode(payload)
	if err != nil {
		l.log.Error("feed notification unreadable; subscribers refetch", "err", err)
		l.publish(Event{Kind: Refetch})
		return
	}
	if origin == l.f.origin {
		return
	}
	l.publish(events...)
}

func (l *listener) publish(events ...Event) {
	l.received.Add(uint64(len(events)))
	l.f.deliver(events)
}

// reconnect connects again, waiting longer after each failure, until it
// succeeds (the connection) or ctx ends (nil).
func (l *listener) reconnect(ctx context.Context) *pgx.Conn {
	delay := minBackoff
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(delay + rand.N(delay/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		conn, err := l.connect(ctx)
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		l.log.Warn("feed listener cannot reconnect", "attempt", attempt, "err", err)
		delay = min(delay*2, maxBackoff)
	}
}

// stop ends the listener and waits until its connection is closed.
func (l *listener) stop() {
	l.once.Do(func() {
		l.cancel()
		<-l.done
	})
}

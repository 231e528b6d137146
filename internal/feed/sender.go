package feed

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bounds of the sender.
const (
	// sendQueue is how many events wait to be sent at most; beyond it
	// events are dropped and the other replicas are told to refetch.
	sendQueue = 8192
	// sendBatch is the most events one round trip sends.
	sendBatch = 512
	// flushTimeout bounds the sending of what is queued when the feed
	// closes.
	flushTimeout = 5 * time.Second
)

// sender forwards the events this replica publishes to the other
// replicas: NOTIFY on Channel, from a dedicated connection, after the
// change committed (Publish runs after the commit). It never holds up
// Publish: events wait in a bounded queue and go out in batches, as many
// as are waiting (up to sendBatch) per round trip.
//
// The NOTIFY is not sent in the change's own transaction because
// PostgreSQL serialises the commits of every transaction that notified,
// WAL flush included, on one lock: measured on the booking statement with
// 16 clients, that cut bookings to 0.1–0.2× of the same statement without
// it, where a NOTIFY after the commit, one per booking, kept 0.55–0.86×
// (bench/README.md); batching here keeps it off the booking's path
// entirely. The cost is a window: events published but not yet sent when
// the process dies are lost to the other replicas, who learn of those
// changes at their next refetch. Events that cannot be sent (a full
// queue, a failed send) are never lost silently: the next batch that goes
// out starts with REFETCH.
type sender struct {
	f      *Feed
	config *pgx.ConnConfig
	log    *slog.Logger

	queue chan Event
	lost  atomic.Bool // events were dropped: the next batch starts with REFETCH

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	sent   atomic.Uint64
	unsent atomic.Uint64
}

// enqueue hands events to the sender without waiting; those that find the
// queue full are dropped and counted. REFETCH stays local.
func (s *sender) enqueue(events []Event) {
	for _, e := range events {
		if e.Kind == Refetch {
			continue
		}
		select {
		case s.queue <- e:
		default:
			s.unsent.Add(1)
			s.lost.Store(true)
		}
	}
}

// run sends batches until ctx ends, then what is still queued (for at
// most flushTimeout).
func (s *sender) run(ctx context.Context) {
	defer close(s.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	var checked uint64 // the listener's losses when conn was last known alive
	batch := make([]Event, 0, sendBatch)
	delay := minBackoff
	for {
		batch = batch[:0]
		select {
		case e := <-s.queue:
			batch = append(batch, e)
		case <-ctx.Done():
			s.flush(conn)
			return
		}
		batch = s.fill(batch)
		for {
			conn = s.ready(ctx, conn, &checked)
			if conn != nil {
				// A send once begun is not cut short by stop: its
				// notifications may commit whatever the context says.
				if err := s.send(context.Background(), conn, batch); err == nil {
					delay = minBackoff
					break
				} else if ctx.Err() == nil {
					s.log.Warn("feed cannot notify other replicas; reconnecting", "err", err)
				}
				_ = conn.Close(context.Background())
				conn = nil
			}
			if ctx.Err() != nil {
				s.unsent.Add(uint64(len(batch)))
				s.flush(nil)
				return
			}
			// The batch waits for the connection; meanwhile the queue
			// fills and drops (and REFETCH follows), so memory stays
			// bounded.
			t := time.NewTimer(delay + rand.N(delay/2+1))
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
			delay = min(delay*2, maxBackoff)
		}
	}
}

// fill adds to batch what is queued, without waiting, up to sendBatch.
func (s *sender) fill(batch []Event) []Event {
	for len(batch) < sendBatch {
		select {
		case e := <-s.queue:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// ready answers a connection to send on: conn, unless the listener has
// lost its own connection since conn was last known alive (*checked) and
// conn fails a ping, or a new one; nil (logged) when none can be opened.
// After a PostgreSQL restart the sender's connection is dead too: found
// so before a batch is sent, it costs a reconnection, not a REFETCH (a
// failed send may or may not have notified, so it is followed by one).
func (s *sender) ready(ctx context.Context, conn *pgx.Conn, checked *uint64) *pgx.Conn {
	losses := s.f.losses.Load()
	if conn != nil && *checked != losses {
		ping, cancel := context.WithTimeout(ctx, pingTimeout)
		err := conn.Ping(ping)
		cancel()
		if err != nil {
			_ = conn.Close(context.Background())
			conn = nil
		}
	}
	if conn == nil {
		conn = s.connect(ctx)
	}
	if conn != nil {
		*checked = losses
	}
	return conn
}

// connect opens the sender's connection, or answers nil (logged) when it
// cannot.
func (s *sender) connect(ctx context.Context) *pgx.Conn {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.config.Copy())
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("feed sender cannot connect", "err", err)
		}
		return nil
	}
	return conn
}

// send notifies the other replicas of batch in one round trip, REFETCH
// first when events were lost since the last batch that went out.
func (s *sender) send(ctx context.Context, conn *pgx.Conn, batch []Event) error {
	lost := s.lost.Swap(false)
	events := batch
	if lost {
		events = append([]Event{{Kind: Refetch}}, batch...)
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	_, err := conn.Exec(ctx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", Channel, Encode(s.f.origin, events))
	if err != nil {
		s.lost.Store(true) // this batch is not sent: REFETCH goes with the next
		return err
	}
	s.sent.Add(uint64(len(batch)))
	return nil
}

// flush sends what is queued on conn (or a new connection), for at most
// flushTimeout, and counts what it could not send.
func (s *sender) flush(conn *pgx.Conn) {
	batch := s.fill(nil)
	if len(batch) == 0 && !s.lost.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	for {
		if conn == nil {
			if conn = s.connect(ctx); conn == nil {
				break
			}
			defer conn.Close(context.Background())
		}
		if err := s.send(ctx, conn, batch); err != nil {
			break
		}
		if batch = s.fill(batch[:0]); len(batch) == 0 {
			return
		}
	}
	s.unsent.Add(uint64(len(batch) + len(s.queue)))
}

// stop ends the sender after it sent what was queued (see flush).
func (s *sender) stop() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
	})
}

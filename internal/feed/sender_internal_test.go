package feed

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// newSender answers a sender (not running yet) of a new local feed on a
// fresh database, with room for queue events, the context to run it
// with, and a connection that LISTENs to what it sends.
func newSender(t *testing.T, queue int) (*Feed, *sender, context.Context, *pgx.Conn) {
	t.Helper()
	dsn := dbtest.URL(t, database.Postgres)
	config, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	listen, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listen.Close(context.Background()) })
	if _, err := listen.Exec(t.Context(), "LISTEN "+Channel); err != nil {
		t.Fatal(err)
	}
	f := NewLocal()
	runCtx, cancel := context.WithCancel(context.Background())
	s := &sender{f: f, config: config, log: slog.New(slog.DiscardHandler), queue: make(chan Event, queue), cancel: cancel, done: make(chan struct{})}
	return f, s, runCtx, listen
}

// Events that find the sender's queue full are dropped, counted, and the
// next batch that goes out starts with REFETCH, so the other replicas
// reload instead of missing them silently.
func TestASenderThatDroppedEventsSendsRefetchFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, s, runCtx, listen := newSender(t, 2)
	ev := func(v int64) Event {
		return Event{Kind: Booked, SlotID: 1, ProviderID: 1, Capacity: 3, Remaining: 1, Version: v}
	}
	s.enqueue([]Event{ev(2), {Kind: Refetch}, ev(3), ev(4)}) // room for two; REFETCH stays local
	if s.unsent.Load() != 1 || !s.lost.Load() {
		t.Fatalf("unsent %d, lost %v; want 1 dropped and lost", s.unsent.Load(), s.lost.Load())
	}
	go s.run(runCtx)

	var got []Event
	for len(got) < 3 {
		wait, done := context.WithTimeout(ctx, time.Minute)
		n, err := listen.WaitForNotification(wait)
		done()
		if err != nil {
			t.Fatal(err)
		}
		origin, events, err := Decode(n.Payload)
		if err != nil || origin != f.origin {
			t.Fatalf("payload %q: origin %q, %v", n.Payload, origin, err)
		}
		got = append(got, events...)
	}
	if len(got) != 3 || got[0].Kind != Refetch || got[1] != ev(2) || got[2] != ev(3) {
		t.Fatalf("sent %+v, want REFETCH, then versions 2 and 3", got)
	}
	s.stop()
	if s.sent.Load() != 2 || s.lost.Load() {
		t.Fatalf("sent %d, lost %v; want 2 sent and nothing lost since", s.sent.Load(), s.lost.Load())
	}
}

// After the listener lost its connection (PostgreSQL restarted, say), the
// sender checks its own before the next batch: a dead one is replaced
// before anything is sent, so the other replicas get the events without
// a needless REFETCH.
func TestASenderReplacesItsDeadConnectionBeforeSending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f, s, runCtx, listen := newSender(t, 8)
	go s.run(runCtx)
	defer s.stop()
	heard := func() []Event {
		t.Helper()
		wait, done := context.WithTimeout(ctx, time.Minute)
		defer done()
		n, err := listen.WaitForNotification(wait)
		if err != nil {
			t.Fatal(err)
		}
		_, events, err := Decode(n.Payload)
		if err != nil {
			t.Fatal(err)
		}
		return events
	}
	ev := func(v int64) Event {
		return Event{Kind: Booked, SlotID: 1, ProviderID: 1, Capacity: 3, Remaining: 1, Version: v}
	}
	s.enqueue([]Event{ev(1)})
	if got := heard(); len(got) != 1 || got[0] != ev(1) {
		t.Fatalf("heard %+v, want version 1", got)
	}

	// Every backend but the listening one ends, the sender's included;
	// the listener would notice its own loss.
	var killed int
	if err := listen.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d backends, want the sender's: %v", killed, err)
	}
	for left := 1; left > 0; time.Sleep(5 * time.Millisecond) {
		if err := listen.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&left); err != nil {
			t.Fatal(err)
		}
	}
	f.losses.Add(1)
	s.enqueue([]Event{ev(2)})
	if got := heard(); len(got) != 1 || got[0] != ev(2) {
		t.Fatalf("heard %+v after the sender's connection died, want version 2 alone", got)
	}
}

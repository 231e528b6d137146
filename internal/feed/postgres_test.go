package feed_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/feed"
)

func TestEncodeSplitsAtMaxPayloadAndDecodes(t *testing.T) {
	t.Parallel()
	var events []feed.Event
	for i := range 500 {
		events = append(events, feed.Event{Kind: feed.Generated, ProviderID: int64(1_000_000 + i),
			Start: time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC), End: time.Date(2030, 3, 7, 17, 30, 0, 123000, time.UTC), Count: 1999})
	}
	events = append(events, booked(9, 4), feed.Event{Kind: feed.ProviderDeactivated, ProviderID: 3},
		feed.Event{Kind: feed.ProviderUpdated, ProviderID: 4})
	payloads := feed.Encode("origin-a", events)
	if len(payloads) < 2 {
		t.Fatalf("%d payloads for 503 events, want them split", len(payloads))
	}
	var got []feed.Event
	for _, p := range payloads {
		if len(p) > feed.MaxPayload {
			t.Fatalf("payload of %d bytes, above %d", len(p), feed.MaxPayload)
		}
		origin, es, err := feed.Decode(p)
		if err != nil || origin != "origin-a" {
			t.Fatalf("Decode = %q, %v", origin, err)
		}
		got = append(got, es...)
	}
	if len(got) != len(events) {
		t.Fatalf("decoded %d events, want %d", len(got), len(events))
	}
	for i := range events {
		if !sameEvent(got[i], events[i]) {
			t.Fatalf("event %d decoded as %+v, want %+v", i, got[i], events[i])
		}
	}
	if !got[501].Start.IsZero() || !got[501].End.IsZero() {
		t.Fatalf("unbounded range decoded as %v–%v, want zero times", got[501].Start, got[501].End)
	}
	if len(feed.Encode("o", nil)) != 0 {
		t.Fatal("Encode of no events answered a payload")
	}
}

func TestDecodeRefusesForeignPayloads(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "hello", `{"o":"x","e":[{"k":"EXPLODED","s":1}]}`, `{"o":1}`} {
		if _, _, err := feed.Decode(p); err == nil {
			t.Errorf("Decode(%q) succeeded, want an error", p)
		}
	}
}

// sameEvent compares events with their times as instants.
func sameEvent(a, b feed.Event) bool {
	ta, tb := a, b
	ta.Start, ta.End, tb.Start, tb.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return ta == tb && a.Start.Equal(b.Start) && a.End.Equal(b.End)
}

// next answers the subscription's next event, failing the test if the
// subscription ends or nothing arrives for a minute (a hung listener, not
// a timing assertion).
func next(t *testing.T, s *feed.Subscription) feed.Event {
	t.Helper()
	select {
	case e, ok := <-s.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", s.Err())
		}
		return e
	case <-time.After(time.Minute):
		t.Fatal("no event within a minute")
	}
	return feed.Event{}
}

func newPostgresFeed(t *testing.T, dsn string) *feed.Feed {
	t.Helper()
	f, err := feed.NewPostgres(context.Background(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func notify(t *testing.T, conn *pgx.Conn, payload string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), "SELECT pg_notify($1, $2)", feed.Channel, payload); err != nil {
		t.Fatal(err)
	}
}

func TestPostgresFeedDeliversOtherOriginsOnly(t *testing.T) {
	t.Parallel()
	dsn := dbtest.URL(t, database.Postgres)
	a, b := newPostgresFeed(t, dsn), newPostgresFeed(t, dsn)
	sub := b.Subscribe(16)
	defer sub.Close()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	notify(t, conn, feed.Encode(a.Origin(), []feed.Event{booked(1, 2)})[0])
	notify(t, conn, feed.Encode(b.Origin(), []feed.Event{booked(2, 2)})[0]) // b's own: skipped
	notify(t, conn, feed.Encode(a.Origin(), []feed.Event{booked(3, 2)})[0])
	for _, want := range []int64{1, 3} {
		if e := next(t, sub); e.SlotID != want || !sameEvent(e, booked(want, 2)) {
			t.Fatalf("got %+v, want the event of slot %d", e, want)
		}
	}
	if st := b.Stats(); st.Received != 2 || !st.Connected || st.Published != 0 {
		t.Fatalf("b's stats %+v, want 2 received, connected, none published", st)
	}
}

func TestPostgresFeedRefetchesAfterLosingItsConnection(t *testing.T) {
	t.Parallel()
	dsn := dbtest.URL(t, database.Postgres)
	f := newPostgresFeed(t, dsn)
	sub := f.Subscribe(16)
	defer sub.Close()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	for round := 1; round <= 2; round++ {
		pid := f.BackendPID()
		if pid == 0 {
			t.Fatal("listener has no backend")
		}
		var ok bool
		if err := conn.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&ok); err != nil || !ok {
			t.Fatalf("terminate backend %d: %v, %v", pid, ok, err)
		}
		if e := next(t, sub); e.Kind != feed.Refetch {
			t.Fatalf("round %d: got %+v after the connection was lost, want REFETCH", round, e)
		}
		if f.BackendPID() == pid || f.BackendPID() == 0 {
			t.Fatalf("round %d: backend %d after reconnecting, was %d", round, f.BackendPID(), pid)
		}
		notify(t, conn, feed.Encode("elsewhere", []feed.Event{booked(7, int64(round))})[0])
		if e := next(t, sub); !sameEvent(e, booked(7, int64(round))) {
			t.Fatalf("round %d: got %+v after reconnecting, want slot 7 version %d", round, e, round)
		}
	}
	if st := f.Stats(); st.Reconnects != 2 || !st.Connected {
		t.Fatalf("stats %+v, want 2 reconnects and connected", st)
	}
	// An unreadable notification also means lost events.
	notify(t, conn, "not the feed's")
	if e := next(t, sub); e.Kind != feed.Refetch {
		t.Fatalf("got %+v after an unreadable notification, want REFETCH", e)
	}
}

// A database it cannot reach yet does not stop the feed (it keeps
// trying, unhealthy meanwhile); a malformed DSN does.
func TestNewPostgresWaitsForAnUnreachableDatabase(t *testing.T) {
	t.Parallel()
	f, err := feed.NewPostgres(context.Background(), "postgres://127.0.0.1:1/none?connect_timeout=1", nil)
	if err != nil {
		t.Fatalf("NewPostgres to a closed port = %v, want a feed that keeps trying", err)
	}
	if st := f.Stats(); st.Connected || f.Healthy() || f.BackendPID() != 0 {
		t.Fatalf("stats %+v, healthy %v; want disconnected", st, f.Healthy())
	}
	sub := f.Subscribe(4)
	f.Publish(booked(1, 2)) // delivered locally; its send waits for a connection
	if e := <-sub.Events(); !sameEvent(e, booked(1, 2)) {
		t.Fatalf("local subscriber got %+v", e)
	}
	f.Close()
	if st := f.Stats(); st.Unsent != 1 || st.Sent != 0 {
		t.Fatalf("stats %+v after Close, want the event counted unsent", st)
	}
	if _, err := feed.NewPostgres(context.Background(), "postgres://%zz", nil); err == nil || !strings.Contains(err.Error(), "feed:") {
		t.Fatalf("NewPostgres of a malformed DSN = %v, want an error", err)
	}
}

// A feed that could not connect at first connects later by itself and
// tells its subscribers to refetch.
func TestAFeedThatStartedDisconnectedRefetchesOnceConnected(t *testing.T) {
	t.Parallel()
	dsn := dbtest.URL(t, database.Postgres)
	admin, err := pgx.Connect(context.Background(), dbtest.PostgresURL(t)) // another database
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	// No one may connect to the database until the test allows it.
	if _, err := admin.Exec(context.Background(), "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	f := newPostgresFeed(t, dsn)
	sub := f.Subscribe(4)
	defer sub.Close()
	if f.Healthy() {
		t.Fatal("a feed that could not connect is healthy")
	}
	if _, err := admin.Exec(context.Background(), "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true"); err != nil {
		t.Fatal(err)
	}
	if e := next(t, sub); e.Kind != feed.Refetch {
		t.Fatalf("got %+v once connected, want REFETCH", e)
	}
	if !f.Healthy() || f.BackendPID() == 0 {
		t.Fatal("a connected feed is not healthy")
	}
}

func TestCloseStopsTheListener(t *testing.T) {
	t.Parallel()
	dsn := dbtest.URL(t, database.Postgres)
	f, err := feed.NewPostgres(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub := f.Subscribe(1)
	f.Close()
	f.Close()
	if _, ok := <-sub.Events(); ok || !errors.Is(sub.Err(), feed.ErrClosed) {
		t.Fatalf("subscription after Close: %v, want ended with ErrClosed", sub.Err())
	}
	if st := f.Stats(); st.Connected || f.BackendPID() != 0 {
		t.Fatalf("stats %+v after Close, want disconnected", st)
	}
}

// What a replica publishes reaches the other replica's subscribers, its
// own subscribers get it once (locally), and Close sends what is queued.
func TestPostgresFeedForwardsWhatItPublishes(t *testing.T) {
	t.Parallel()
	dsn := dbtest.URL(t, database.Postgres)
	a, b := newPostgresFeed(t, dsn), newPostgresFeed(t, dsn)
	subA, subB := a.Subscribe(16), b.Subscribe(16)
	defer subA.Close()
	defer subB.Close()
	a.Publish(booked(1, 2), booked(2, 2))
	a.Publish(feed.Event{Kind: feed.Refetch}) // local only
	for _, want := range []feed.Event{booked(1, 2), booked(2, 2)} {
		if e := next(t, subB); !sameEvent(e, want) {
			t.Fatalf("B got %+v, want %+v", e, want)
		}
	}
	b.Publish(booked(3, 2))
	if e := next(t, subB); !sameEvent(e, booked(3, 2)) {
		t.Fatalf("B got %+v, want its own event", e)
	}
	for _, want := range []feed.Event{booked(1, 2), booked(2, 2), {Kind: feed.Refetch}, booked(3, 2)} {
		if e := next(t, subA); !sameEvent(e, want) {
			t.Fatalf("A got %+v, want %+v (its own events once, B's after)", e, want)
		}
	}
	a.Publish(booked(4, 2))
	a.Close() // sends what is queued before it returns
	if e := next(t, subB); !sameEvent(e, booked(4, 2)) {
		t.Fatalf("B got %+v, want the event A published as it closed", e)
	}
	if st := a.Stats(); st.Sent != 3 || st.Unsent != 0 || st.Published != 4 {
		t.Fatalf("A's stats %+v, want 3 sent, none unsent, 4 published", st)
	}
}

package slots_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/feed"
	"timeslots/internal/slots"
	"timeslots/models"
)

// replica is one server's manager and feed over a shared PostgreSQL
// database, with a pool of its own.
type replica struct {
	db   *database.DB
	m    *slots.Manager
	clk  *clock
	feed *feed.Feed
	sub  *feed.Subscription
}

func newReplica(t *testing.T, target database.Target, now time.Time) *replica {
	t.Helper()
	db, err := database.Open(context.Background(), target, database.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// LISTEN holds a session: straight to PostgreSQL, never through a
	// transaction pooler (dbtest's PgBouncer pass).
	f, err := feed.NewPostgres(context.Background(), target.SessionDSN(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	m, clk := newManager(db, now, slots.WithFeed(f))
	return &replica{db: db, m: m, clk: clk, feed: f, sub: f.Subscribe(1000)}
}

// next answers the next event r's subscriber gets, failing the test if
// none comes within a minute (a lost notification, not a timing check).
func (r *replica) next(t *testing.T) feed.Event {
	t.Helper()
	select {
	case e, ok := <-r.sub.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", r.sub.Err())
		}
		return e
	case <-time.After(time.Minute):
		t.Fatal("no event within a minute")
	}
	return feed.Event{}
}

// nextN answers r's next n events.
func (r *replica) nextN(t *testing.T, n int) []feed.Event {
	t.Helper()
	out := make([]feed.Event, n)
	for i := range out {
		out[i] = r.next(t)
	}
	return out
}

// Two replicas on one database: what one commits reaches the other's
// subscribers through NOTIFY, with the same events its own subscribers
// got locally, and neither sees its own changes twice.
func TestChangesReachTheOtherReplica(t *testing.T) {
	t.Parallel()
	target := dbtest.Target(t, database.Postgres)
	a, b := newReplica(t, target, bookingDay), newReplica(t, target, bookingDay)

	var fx *bookingFixture
	local := emitted(t, a.feed, a.sub, func() { fx = newBookingFixture(t, a.db, a.m, a.clk, 2, 0) })
	wantEvents(t, "generation on B", b.nextN(t, len(local)), local...)

	slot := fx.slots[1].ID
	var booking *models.Booking
	local = emitted(t, a.feed, a.sub, func() {
		var err error
		if booking, _, err = a.m.Book(ctx, slots.BookInput{SlotID: slot, Customer: "Ann"}); err != nil {
			t.Fatal(err)
		}
	})
	got := b.nextN(t, 1)
	wantEvents(t, "a booking on A, heard on B", got, local...)
	if got[0].Remaining != 1 || got[0].Version != 2 || got[0].SlotID != slot {
		t.Fatalf("B heard %+v, want slot %d with 1 seat left at version 2", got[0], slot)
	}

	local = emitted(t, b.feed, b.sub, func() {
		if _, err := b.m.Reschedule(ctx, admin, slots.RescheduleInput{Booking: byID(booking.ID), SlotID: fx.slots[2].ID}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.m.Cancel(ctx, admin, byID(booking.ID)); err != nil {
			t.Fatal(err)
		}
	})
	wantEvents(t, "a reschedule and a cancellation on B, heard on A", a.nextN(t, 3), local...)

	in := models.ProviderInput{Name: fx.p.Name, TimeZone: "UTC", SlotMinutes: 60, Capacity: ptr(2),
		WorkingHours: everyDay("09:00", "12:00"), Active: ptr(false)}
	local = emitted(t, a.feed, a.sub, func() {
		if _, err := a.m.UpdateProvider(ctx, fx.p.ID, in); err != nil {
			t.Fatal(err)
		}
	})
	wantEvents(t, "A's deactivation, heard on B", b.nextN(t, 1), local...)
	b.clk.Set(bookingDay.AddDate(0, 0, 3))
	local = emitted(t, b.feed, b.sub, func() {
		if res, err := b.m.Cleanup(ctx, 0, nil); err != nil || res.Deleted != 3 {
			t.Fatalf("cleanup on B: %+v, %v", res, err)
		}
	})
	wantEvents(t, "B's cleanup, heard on A", a.nextN(t, 1), local...)

	// Notifications arrive in commit order: had a replica not skipped one
	// of its own, it would come before the other's next change.
	for _, pair := range [][2]*replica{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		local = emitted(t, from.feed, from.sub, func() {
			p := mustProvider(t, from.m, models.ProviderInput{Name: "Last word", TimeZone: "UTC", SlotMinutes: 60,
				WorkingHours: everyDay("09:00", "10:00")})
			mustGenerate(t, from.m, slots.GenerateInput{DaysAhead: 1, ProviderIDs: []int64{p.ID}})
		})
		wantEvents(t, "the last generation", to.nextN(t, 1), local...)
	}
}

// A change that rolls back sends no notification: the other replica hears
// only what committed.
func TestARolledBackChangeReachesNoReplica(t *testing.T) {
	t.Parallel()
	target := dbtest.Target(t, database.Postgres)
	a, b := newReplica(t, target, bookingDay), newReplica(t, target, bookingDay)
	fx := newBookingFixture(t, a.db, a.m, a.clk, 2, 0)
	b.nextN(t, 1) // the generation
	slot := fx.slots[0].ID
	if _, _, err := a.m.Book(ctx, slots.BookInput{SlotID: slot, Customer: "Ann"}); err != nil {
		t.Fatal(err)
	}
	// The second seat for Ann claims a seat, then the unique index refuses
	// the booking: the statement, its NOTIFY included, is undone.
	if _, _, err := a.m.Book(ctx, slots.BookInput{SlotID: slot, Customer: "Ann"}); err == nil {
		t.Fatal("a second seat for Ann was booked")
	}
	if _, _, err := a.m.Book(ctx, slots.BookInput{SlotID: slot, Customer: "Bob"}); err != nil {
		t.Fatal(err)
	}
	got := b.nextN(t, 2)
	if got[0].Version != 2 || got[1].Version != 3 || got[1].Remaining != 0 {
		t.Fatalf("B heard %+v, want versions 2 and 3 and no event in between", got)
	}
}

// When the listener's connection is terminated, its subscribers get
// REFETCH and then the other replica's events again, with no restart.
func TestAReplicaRefetchesAfterItsListenerIsTerminated(t *testing.T) {
	t.Parallel()
	target := dbtest.Target(t, database.Postgres)
	a, b := newReplica(t, target, bookingDay), newReplica(t, target, bookingDay)
	fx := newBookingFixture(t, a.db, a.m, a.clk, 3, 0)
	b.nextN(t, 1)
	conn, err := pgx.Connect(context.Background(), target.SessionDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for i, customer := range []string{"Ann", "Bob"} {
		var ok bool
		if err := conn.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", int32(b.feed.BackendPID())).Scan(&ok); err != nil || !ok {
			t.Fatalf("terminate B's listener: %v, %v", ok, err)
		}
		if e := b.next(t); e.Kind != feed.Refetch {
			t.Fatalf("B got %+v after losing its listener, want REFETCH", e)
		}
		if _, _, err := a.m.Book(ctx, slots.BookInput{SlotID: fx.slots[0].ID, Customer: customer}); err != nil {
			t.Fatal(err)
		}
		if e := b.next(t); e.Kind != feed.Booked || e.Remaining != 2-i {
			t.Fatalf("B got %+v after reconnecting, want BOOKED with %d left", e, 2-i)
		}
	}
}

// A read that finds its pooled connection dead (PostgreSQL restarted or
// the backend was terminated since the connection was last used) runs
// again on a live one: the lost connections cost no read. The pool never
// pings a connection for being idle here, so without the second run the
// first read would fail.
func TestAReadOutlivesItsDeadConnection(t *testing.T) {
	t.Parallel()
	target := dbtest.Target(t, database.Postgres)
	const conns = 4
	db, err := database.Open(context.Background(), target, database.Options{MaxOpenConns: conns, IdlePing: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, _ := newManager(db, bookingDay)
	p := mustProvider(t, m, models.ProviderInput{Name: "Dr Dead", TimeZone: "UTC", WorkingHours: everyDay("09:00", "17:00"), SlotMinutes: 30})
	// Each connection lent twice: pgx pings one the first time it is
	// lent again.
	dbtest.UseConnections(t, db.SQL(), conns)
	dbtest.UseConnections(t, db.SQL(), conns)
	// Through a transaction pooler the server connections die, not the
	// pool's: then the read succeeds anyway.
	dbtest.TerminateBackends(t, target.SessionDSN(), 1)
	got, err := m.Provider(context.Background(), p.ID)
	if err != nil || got.Name != p.Name {
		t.Fatalf("the provider read after its connections died: %+v, %v", got, err)
	}
}

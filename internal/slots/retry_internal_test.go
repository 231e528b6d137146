package slots

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/models"
)

// openImpatient answers a fresh database of dialect d whose SQLite
// connections wait no time at all for another's write lock.
func openImpatient(t *testing.T, d database.Dialect) *database.DB {
	t.Helper()
	if d == database.Postgres {
		return dbtest.Open(t, d)
	}
	target := dbtest.Target(t, d)
	impatient := strings.Replace(target.DSN, "busy_timeout(10000)", "busy_timeout(0)", 1)
	if impatient == target.DSN {
		t.Fatalf("SQLite's DSN %q has no busy_timeout(10000) to replace", target.DSN)
	}
	target.DSN = impatient
	ctx := context.Background()
	db, err := database.Open(ctx, target, database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// conflict makes every booking attempt on db (from openImpatient) fail
// with a real transient conflict, as a deadlock or a busy SQLite would,
// until release is called: on PostgreSQL a trigger raises
// serialization_failure (40001) while a row says so; on SQLite another
// transaction holds the write lock.
func conflict(t *testing.T, db *database.DB) (release func()) {
	t.Helper()
	if db.Dialect == database.Postgres {
		for _, stmt := range []string{
			"CREATE TABLE conflicting (on_purpose boolean)",
			`CREATE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF EXISTS (SELECT 1 FROM conflicting) THEN
					RAISE EXCEPTION 'a transient conflict, on purpose' USING ERRCODE = 'serialization_failure';
				END IF;
				RETURN NEW;
			END $$`,
			"CREATE TRIGGER bookings_conflict BEFORE INSERT ON bookings FOR EACH ROW EXECUTE FUNCTION conflict()",
			"INSERT INTO conflicting VALUES (true)",
		} {
			if err := db.Exec(stmt).Error; err != nil {
				t.Fatal(err)
			}
		}
		return func() {
			if err := db.Exec("DELETE FROM conflicting").Error; err != nil {
				t.Error(err)
			}
		}
	}
	holder, err := db.SQL().BeginTx(context.Background(), nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	var released bool
	release = func() {
		if !released {
			released = true
			if err := holder.Rollback(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(release)
	return release
}

// contendedSlot answers a manager over a fresh database of dialect d, a
// future slot of it, and the release of the conflict that every booking
// attempt meets from now on.
func contendedSlot(t *testing.T, d database.Dialect) (m *Manager, slot int64, release func()) {
	t.Helper()
	db := openImpatient(t, d)
	m, slot = retryFixture(t, db)
	return m, slot, conflict(t, db)
}

// retryFixture answers a manager over db and a future slot of it.
func retryFixture(t *testing.T, db *database.DB) (*Manager, int64) {
	t.Helper()
	now := time.Date(2030, 1, 7, 6, 0, 0, 0, time.UTC)
	m := New(db, WithClock(func() time.Time { return now }))
	p, err := m.CreateProvider(context.Background(), models.ProviderInput{Name: "Contended", TimeZone: "UTC", SlotMinutes: 60,
		WorkingHours: []models.WorkingHours{{Weekday: models.Monday, Start: "09:00", End: "10:00"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Generate(context.Background(), GenerateInput{DaysAhead: 1, ProviderIDs: []int64{p.ID}}); err != nil {
		t.Fatal(err)
	}
	page, err := m.ListSlots(context.Background(), SlotFilter{ProviderID: &p.ID}, PageRequest{})
	if err != nil || len(page.Slots) != 1 {
		t.Fatalf("the fixture's slots: %+v, %v", page, err)
	}
	return m, page.Slots[0].ID
}

// A booking that meets a transient conflict waits and tries again; the
// conflict over, it books.
func TestABookingRetriesATransientConflict(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			m, slot, release := contendedSlot(t, d)
			var waits []int
			m.retryDelay = func(attempt int) time.Duration {
				waits = append(waits, attempt)
				release()
				return time.Millisecond
			}
			b, s, err := m.Book(context.Background(), BookInput{SlotID: slot, Customer: "patient"})
			if err != nil || b.ID == 0 || s.BookedCount != 1 {
				t.Fatalf("booking after the conflict: %+v, %+v, %v", b, s, err)
			}
			if len(waits) != 1 || waits[0] != 0 {
				t.Fatalf("the booking waited before attempts %v, want once, before the first retry", waits)
			}
		})
	}
}

// A conflict that outlasts every retry is UNAVAILABLE: the database could
// not serve the booking now, and the same request may succeed later.
func TestAConflictPastTheRetriesIsUnavailable(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			m, slot, _ := contendedSlot(t, d)
			waits := 0
			m.retryDelay = func(int) time.Duration { waits++; return time.Millisecond }
			_, _, err := m.Book(context.Background(), BookInput{SlotID: slot, Customer: "unlucky"})
			if code := apperr.ErrorCode(err); code != apperr.Unavailable || !database.IsRetryable(err) {
				t.Fatalf("a booking that kept conflicting: %v (%s), want UNAVAILABLE over the conflict", err, code)
			}
			if waits != 3 {
				t.Fatalf("the booking waited %d times, want 3", waits)
			}
		})
	}
}

// A booking whose context is cancelled while it waits to retry stops
// waiting and answers the context's error, not the conflict. The wait here
// is an hour: the test ends only if the cancellation ends it.
func TestACancelledBookingStopsWaitingToRetry(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			m, slot, _ := contendedSlot(t, d)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			waits := 0
			m.retryDelay = func(int) time.Duration {
				waits++
				cancel() // the client goes away as the wait begins
				return time.Hour
			}
			done := make(chan error, 1)
			go func() {
				_, _, err := m.Book(ctx, BookInput{SlotID: slot, Customer: "impatient"})
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) || database.IsRetryable(err) {
					t.Fatalf("a booking cancelled while waiting: %v, want the context's error", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("the booking still waits a minute after its context was cancelled")
			}
			if waits != 1 {
				t.Fatalf("the booking waited %d times, want once", waits)
			}
		})
	}
}

package database_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// These tests write raw SQL past the manager, as a buggy caller or a
// hand-written script would: the schema alone must keep the data rules.

var t0 = time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC)

func insertProvider(t *testing.T, db *database.DB) int64 {
	t.Helper()
	var id int64
	err := db.Raw(`INSERT INTO providers (name, time_zone, slot_minutes, working_hours, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, "Constraint Clinic", "UTC", 30, "[]", t0, t0).Scan(&id).Error
	if err != nil || id == 0 {
		t.Fatalf("insert provider: id %d, %v", id, err)
	}
	return id
}

// insertSlot inserts one slot with plain INSERT (onConflict false) or
// INSERT … ON CONFLICT DO NOTHING and answers the rows inserted.
func insertSlot(db *database.DB, provider int64, start time.Time, minutes, capacity, booked int, onConflict bool) (int64, error) {
	q := `INSERT INTO time_slots (provider_id, start_time, end_time, date, capacity, booked_count, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)`
	if onConflict {
		q += " ON CONFLICT DO NOTHING"
	}
	res := db.Exec(q, provider, start, start.Add(time.Duration(minutes)*time.Minute), start.Format("2006-01-02"),
		capacity, booked, t0, t0)
	return res.RowsAffected, res.Error
}

func slotID(t *testing.T, db *database.DB, provider int64, start time.Time) int64 {
	t.Helper()
	var id int64
	if err := db.Raw("SELECT id FROM time_slots WHERE provider_id = ? AND start_time = ?", provider, start).Scan(&id).Error; err != nil || id == 0 {
		t.Fatalf("find slot of provider %d at %s: id %d, %v", provider, start, id, err)
	}
	return id
}

// reference answers a new booking reference, as the server would make one.
func reference() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return "bk_" + base64.RawURLEncoding.EncodeToString(b)
}

func countRows(t *testing.T, db *database.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.Raw(q, args...).Scan(&n).Error; err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func sqlState(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}

func TestTheSchemaKeepsOneProvidersSlotsFromOverlapping(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		offset     int // minutes after the existing 09:00–09:30 slot's start
		minutes    int
		other      bool // for another provider
		onConflict bool
		lands      bool
	}{
		{name: "a slot at the same start is refused", offset: 0, minutes: 30, lands: false},
		{name: "a slot at the same start with another length is refused", offset: 0, minutes: 45, lands: false},
		{name: "a slot starting inside the existing one is refused", offset: 15, minutes: 30, lands: false},
		{name: "a slot ending inside the existing one is refused", offset: -15, minutes: 30, lands: false},
		{name: "a slot enclosing the existing one is refused", offset: -60, minutes: 480, lands: false},
		{name: "an overlapping slot is refused (PostgreSQL) or dropped (SQLite) with ON CONFLICT DO NOTHING", offset: 15, minutes: 45, onConflict: true, lands: false},
		{name: "a duplicate is skipped by ON CONFLICT DO NOTHING", offset: 0, minutes: 30, onConflict: true, lands: false},
		{name: "a slot starting where the existing one ends is accepted", offset: 30, minutes: 30, lands: true},
		{name: "a slot ending where the existing one starts is accepted", offset: -30, minutes: 30, lands: true},
		{name: "an adjacent slot is accepted with ON CONFLICT DO NOTHING", offset: 30, minutes: 60, onConflict: true, lands: true},
		{name: "another provider's slot at the same time is accepted", offset: 0, minutes: 30, other: true, lands: true},
	}
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p := insertProvider(t, db)
				if n, err := insertSlot(db, p, t0, 30, 1, 0, false); err != nil || n != 1 {
					t.Fatalf("insert the existing slot: %d rows, %v", n, err)
				}
				target := p
				if tc.other {
					target = insertProvider(t, db)
				}
				n, err := insertSlot(db, target, t0.Add(time.Duration(tc.offset)*time.Minute), tc.minutes, 1, 0, tc.onConflict)
				if tc.lands {
					if err != nil || n != 1 {
						t.Fatalf("insert = %d rows, %v; want 1 row", n, err)
					}
					return
				}
				switch {
				case tc.onConflict && tc.offset != 0 && db.Dialect == database.Postgres:
					// The overlap guard refuses the statement; only the
					// duplicate start is a conflict that DO NOTHING skips.
					if code := sqlState(err); code != "23P01" {
						t.Fatalf("insert ON CONFLICT DO NOTHING: %d rows, error %v (SQLSTATE %q), want an exclusion violation", n, err, code)
					}
				case tc.onConflict && (err != nil || n != 0):
					t.Fatalf("insert ON CONFLICT DO NOTHING = %d rows, %v; want 0 rows and no error", n, err)
				case !tc.onConflict && db.Dialect == database.Postgres:
					// PostgreSQL refuses: an overlap by the exclusion
					// constraint (23P01); the same start may trip the
					// unique constraint (23505) first.
					code := sqlState(err)
					if code != "23P01" && (tc.offset != 0 || code != "23505") {
						t.Fatalf("plain insert: error %v (SQLSTATE %q), want an exclusion violation", err, code)
					}
				case !tc.onConflict:
					// SQLite's overlap trigger drops the row like DO NOTHING.
					if err != nil || n != 0 {
						t.Fatalf("plain insert = %d rows, %v; want the row dropped (0 rows)", n, err)
					}
				}
				if got := countRows(t, db, "SELECT COUNT(*) FROM time_slots WHERE provider_id = ?", p); got != 1 {
					t.Fatalf("provider has %d slots, want only the existing one", got)
				}
			})
		}
	})
}

func TestTheSchemaRefusesInconsistentRows(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		p := insertProvider(t, db)
		at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

		t.Run("booked_count above capacity is refused", func(t *testing.T) {
			if _, err := insertSlot(db, p, at(1), 30, 2, 3, false); err == nil {
				t.Fatal("insert with booked_count 3 > capacity 2 succeeded")
			}
		})
		t.Run("negative booked_count is refused", func(t *testing.T) {
			if _, err := insertSlot(db, p, at(2), 30, 2, -1, false); err == nil {
				t.Fatal("insert with booked_count -1 succeeded")
			}
		})
		t.Run("an update past capacity is refused", func(t *testing.T) {
			if n, err := insertSlot(db, p, at(3), 30, 2, 2, false); err != nil || n != 1 {
				t.Fatalf("insert full slot: %d, %v", n, err)
			}
			id := slotID(t, db, p, at(3))
			if err := db.Exec("UPDATE time_slots SET booked_count = booked_count + 1 WHERE id = ?", id).Error; err == nil {
				t.Fatal("raising booked_count past capacity succeeded")
			}
		})
		t.Run("status is derived from the seat counts", func(t *testing.T) {
			if n, err := insertSlot(db, p, at(4), 30, 2, 1, false); err != nil || n != 1 {
				t.Fatalf("insert: %d, %v", n, err)
			}
			id := slotID(t, db, p, at(4))
			status := func() string {
				var s string
				if err := db.Raw("SELECT status FROM time_slots WHERE id = ?", id).Scan(&s).Error; err != nil {
					t.Fatal(err)
				}
				return s
			}
			if s := status(); s != "available" {
				t.Fatalf("1 of 2 seats taken: status %q, want available", s)
			}
			if err := db.Exec("UPDATE time_slots SET booked_count = 2 WHERE id = ?", id).Error; err != nil {
				t.Fatal(err)
			}
			if s := status(); s != "booked" {
				t.Fatalf("2 of 2 seats taken: status %q, want booked", s)
			}
			if err := db.Exec("UPDATE time_slots SET status = 'available' WHERE id = ?", id).Error; err == nil {
				t.Fatal("writing the generated status column succeeded")
			}
		})
		t.Run("a slot longer than 480 minutes is refused", func(t *testing.T) {
			if _, err := insertSlot(db, p, at(7), 481, 1, 0, false); err == nil {
				t.Fatal("insert of a 481-minute slot succeeded")
			}
			if n, err := insertSlot(db, p, at(20), 480, 1, 0, false); err != nil || n != 1 {
				t.Fatalf("insert of a 480-minute slot: %d, %v", n, err)
			}
		})
		t.Run("a slot's provider, start and end never change", func(t *testing.T) {
			if n, err := insertSlot(db, p, at(30), 30, 1, 0, false); err != nil || n != 1 {
				t.Fatalf("insert: %d, %v", n, err)
			}
			id := slotID(t, db, p, at(30))
			for _, set := range []string{"start_time = start_time", "end_time = end_time", "provider_id = provider_id"} {
				// SQLite refuses naming the column at all; PostgreSQL refuses a change.
				if db.Dialect == database.SQLite {
					if err := db.Exec("UPDATE time_slots SET "+set+" WHERE id = ?", id).Error; err == nil {
						t.Fatalf("SET %s succeeded", set)
					}
				}
			}
			if err := db.Exec("UPDATE time_slots SET start_time = ?, end_time = ? WHERE id = ?", at(31), at(31).Add(30*time.Minute), id).Error; err == nil {
				t.Fatal("moving a slot succeeded")
			}
			if err := db.Exec("UPDATE time_slots SET provider_id = ? WHERE id = ?", insertProvider(t, db), id).Error; err == nil {
				t.Fatal("moving a slot to another provider succeeded")
			}
		})
		t.Run("a slot ending before it starts is refused", func(t *testing.T) {
			if _, err := insertSlot(db, p, at(5), -30, 1, 0, false); err == nil {
				t.Fatal("insert with end before start succeeded")
			}
		})
		t.Run("a slot of an unknown provider is refused", func(t *testing.T) {
			if _, err := insertSlot(db, p+1000, at(6), 30, 1, 0, false); err == nil {
				t.Fatal("insert for provider that does not exist succeeded")
			}
			if got := countRows(t, db, "SELECT COUNT(*) FROM time_slots WHERE provider_id = ?", p+1000); got != 0 {
				t.Fatalf("%d slots of an unknown provider stored", got)
			}
		})
		t.Run("a booking of an unknown slot is refused", func(t *testing.T) {
			err := db.Exec(`INSERT INTO bookings (slot_id, provider_id, start_time, end_time, customer, status, created_at, reference)
				VALUES (?, ?, ?, ?, ?, 'confirmed', ?, ?)`, 99999999, p, at(7), at(8), "ghost", t0, reference()).Error
			if err == nil {
				t.Fatal("booking of a slot that does not exist succeeded")
			}
		})

		t.Run("one confirmed booking per customer per slot", func(t *testing.T) {
			if n, err := insertSlot(db, p, at(10), 30, 5, 0, false); err != nil || n != 1 {
				t.Fatalf("insert: %d, %v", n, err)
			}
			id := slotID(t, db, p, at(10))
			book := func(customer, status string) error {
				return db.Exec(`INSERT INTO bookings (slot_id, provider_id, start_time, end_time, customer, status, created_at, reference)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, p, at(10), at(10).Add(30*time.Minute), customer, status, t0, reference()).Error
			}
			if err := book("ada", "confirmed"); err != nil {
				t.Fatalf("first confirmed booking: %v", err)
			}
			err := book("ada", "confirmed")
			if _, ok := database.IsUniqueViolation(err); !ok {
				t.Fatalf("second confirmed booking of the same customer: %v, want a unique violation", err)
			}
			if err := book("ada", "cancelled"); err != nil {
				t.Fatalf("a cancelled booking beside the confirmed one: %v", err)
			}
			if err := book("grace", "confirmed"); err != nil {
				t.Fatalf("another customer's booking: %v", err)
			}
		})

		t.Run("deleting a slot keeps its bookings with a NULL slot", func(t *testing.T) {
			if n, err := insertSlot(db, p, at(12), 30, 1, 1, false); err != nil || n != 1 {
				t.Fatalf("insert: %d, %v", n, err)
			}
			id := slotID(t, db, p, at(12))
			if err := db.Exec(`INSERT INTO bookings (slot_id, provider_id, start_time, end_time, customer, status, created_at, reference)
				VALUES (?, ?, ?, ?, 'lin', 'confirmed', ?, ?)`, id, p, at(12), at(12).Add(30*time.Minute), t0, reference()).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Exec("DELETE FROM time_slots WHERE id = ?", id).Error; err != nil {
				t.Fatalf("delete booked slot: %v", err)
			}
			if got := countRows(t, db, "SELECT COUNT(*) FROM bookings WHERE customer = 'lin' AND slot_id IS NULL"); got != 1 {
				t.Fatalf("%d bookings of the deleted slot left with slot_id NULL, want 1", got)
			}
		})
		t.Run("a provider with slots cannot be deleted", func(t *testing.T) {
			if err := db.Exec("DELETE FROM providers WHERE id = ?", p).Error; err == nil {
				t.Fatal("deleting a provider that has slots succeeded")
			}
		})
	})
}

func TestConcurrentInsertsNeverLeaveOverlappingSlots(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		p := insertProvider(t, db)
		// 24 racers, each a 30-minute slot 5 minutes after the previous one's
		// start: every one overlaps its five neighbours on each side.
		const racers = 24
		var wg sync.WaitGroup
		start := make(chan struct{})
		inserted := make([]int64, racers)
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				n, err := insertSlot(db, p, t0.Add(time.Duration(5*i)*time.Minute), 30, 1, 0, true)
				if err != nil && sqlState(err) != "23P01" && !database.IsRetryable(err) {
					t.Errorf("racer %d: %v", i, err)
				}
				inserted[i] = n
			}()
		}
		close(start)
		wg.Wait()
		var total int64
		for _, n := range inserted {
			total += n
		}
		if got := countRows(t, db, "SELECT COUNT(*) FROM time_slots WHERE provider_id = ?", p); total < 1 || got != total {
			t.Fatalf("%d inserts reported, %d rows stored; want at least one, and the same", total, got)
		}
		overlaps := countRows(t, db, `SELECT COUNT(*) FROM time_slots a JOIN time_slots b
			ON a.provider_id = b.provider_id AND a.id < b.id
			AND a.start_time < b.end_time AND b.start_time < a.end_time`)
		if overlaps != 0 {
			t.Fatalf("%d overlapping pairs after concurrent inserts", overlaps)
		}
	})
}

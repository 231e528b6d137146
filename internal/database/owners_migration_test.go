package database_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// A database with bookings, made before bookings had owners, migrates:
// every booking keeps its id and data and gets a reference of its own, and
// new bookings' ids go on after the old ones.
func TestBookingsOfAnOlderDatabaseGetReferencesWhenMigrated(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := openFresh(t, d, dbtest.Target(t, d))
			if err := db.MigrateTo(ctx, 3); err != nil {
				t.Fatalf("migrate to version 3: %v", err)
			}
			p := insertProvider(t, db)
			if n, err := insertSlot(db, p, t0, 30, 5, 0, false); err != nil || n != 1 {
				t.Fatalf("insert the slot: %d, %v", n, err)
			}
			slot := slotID(t, db, p, t0)
			type row struct {
				ID             int64
				SlotID         *int64
				Customer       string
				Status         string
				IdempotencyKey *string
				StartTime      time.Time
			}
			key := "old-key"
			old := []row{
				{Customer: "ada", Status: "confirmed", IdempotencyKey: &key},
				{Customer: "grace", Status: "cancelled"},
				{Customer: "lin", Status: "confirmed"},
				{Customer: "gone", Status: "cancelled"},
			}
			for i := range old {
				if err := db.Raw(`INSERT INTO bookings (slot_id, provider_id, start_time, end_time, customer, status, idempotency_key, created_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, slot, p, t0, t0.Add(30*time.Minute), old[i].Customer, old[i].Status,
					old[i].IdempotencyKey, t0).Scan(&old[i].ID).Error; err != nil {
					t.Fatalf("insert booking %d: %v", i, err)
				}
			}
			// The last booking was deleted by hand: its id is not handed out again.
			last := old[len(old)-1].ID
			if err := db.Exec("DELETE FROM bookings WHERE id = ?", last).Error; err != nil {
				t.Fatal(err)
			}
			old = old[:len(old)-1]

			if n, err := db.Migrate(ctx); err != nil || n != migrationCount(t, d)-3 {
				t.Fatalf("Migrate = %d, %v; want the %d newer migrations", n, err, migrationCount(t, d)-3)
			}

			var got []struct {
				ID             int64
				SlotID         *int64
				Customer       string
				Status         string
				IdempotencyKey *string
				StartTime      time.Time
				Reference      string
				CustomerID     *string
			}
			if err := db.Raw(`SELECT id, slot_id, customer, status, idempotency_key, start_time, reference, customer_id
				FROM bookings ORDER BY id`).Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if len(got) != len(old) {
				t.Fatalf("%d bookings after migrating, want %d", len(got), len(old))
			}
			refs := map[string]bool{}
			for i, g := range got {
				o := old[i]
				if g.ID != o.ID || g.SlotID == nil || *g.SlotID != slot || g.Customer != o.Customer || g.Status != o.Status ||
					!g.StartTime.Equal(t0) || (g.IdempotencyKey == nil) != (o.IdempotencyKey == nil) {
					t.Errorf("booking %d after migrating: %+v, before: %+v", o.ID, g, o)
				}
				if !strings.HasPrefix(g.Reference, "bk_") || len(g.Reference) < 3+36 || refs[g.Reference] {
					t.Errorf("booking %d has reference %q: want bk_ and at least 144 random bits, distinct", g.ID, g.Reference)
				}
				refs[g.Reference] = true
				if g.CustomerID != nil {
					t.Errorf("booking %d has an owner %q after migrating", g.ID, *g.CustomerID)
				}
			}
			var next int64
			if err := db.Raw(`INSERT INTO bookings (slot_id, provider_id, start_time, end_time, customer, status, created_at, reference)
				VALUES (?, ?, ?, ?, 'new', 'confirmed', ?, ?) RETURNING id`, slot, p, t0, t0.Add(30*time.Minute), t0, reference()).
				Scan(&next).Error; err != nil {
				t.Fatalf("a new booking after migrating: %v", err)
			}
			if next <= last {
				t.Fatalf("a new booking got id %d, which a deleted booking had (ids up to %d were given)", next, last)
			}
			// The old key still replays: it is among the anonymous keys.
			if err := db.Exec(`INSERT INTO bookings (slot_id, provider_id, start_time, end_time, customer, status, idempotency_key, created_at, reference)
				VALUES (?, ?, ?, ?, 'mallory', 'confirmed', ?, ?, ?)`, slot, p, t0, t0.Add(30*time.Minute), key, t0, reference()).Error; err == nil {
				t.Fatal("an anonymous booking took the migrated booking's idempotency key")
			} else if index, _ := database.IsUniqueViolation(err); index != database.UniqueBookingKey {
				t.Fatalf("the migrated booking's key refused another with %v, want %s", err, database.UniqueBookingKey)
			}
			if d == database.SQLite {
				var problems []struct{ Table string }
				if err := db.Raw("PRAGMA foreign_key_check").Scan(&problems).Error; err != nil || len(problems) > 0 {
					t.Fatalf("foreign_key_check after the rebuild: %v, %+v", err, problems)
				}
			}
		})
	}
}

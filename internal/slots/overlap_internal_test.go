package slots

import (
	"context"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/models"
)

// A batch that overlaps a slot written after it was filtered (by a
// concurrent generation with other slot lengths) still lands without the
// overlapping rows: on PostgreSQL the guard refuses the batch's COPY, and
// the batch is filtered again and sent as an INSERT; SQLite's trigger drops
// the rows.
func TestABatchRefusedForOverlapIsFilteredAndResent(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		ctx := context.Background()
		m, slotAt := racedBatch(t, db)
		at := func(h, min int) time.Time { return time.Date(2030, 1, 8, h, min, 0, 0, time.UTC) }
		slot := func(start time.Time, minutes int) newSlot { return slotAt(start, minutes) }
		// The slot written by someone else: 09:10-09:55.
		if n, _, err := m.insertChunk(ctx, []newSlot{slot(at(9, 10), 45)}); err != nil || n != 1 {
			t.Fatalf("insert the other slot: %d, %v", n, err)
		}
		rows := []newSlot{slot(at(9, 0), 30), slot(at(9, 30), 30), slot(at(10, 0), 30), slot(at(10, 30), 30)}
		n, statements, err := m.insertChunk(ctx, rows)
		if err != nil {
			t.Fatalf("insert the batch: %v", err)
		}
		want := 1 // SQLite: the trigger drops the two overlapping rows
		if db.Dialect == database.Postgres {
			want = 2 // the COPY refused, then an INSERT without the two
		}
		if n != 2 || statements != want {
			t.Fatalf("inserted %d rows in %d statements, want 2 in %d", n, statements, want)
		}
		var got int64
		if err := db.Raw(`SELECT COUNT(*) FROM time_slots a JOIN time_slots b
			ON a.provider_id = b.provider_id AND a.id < b.id
			AND a.start_time < b.end_time AND b.start_time < a.end_time`).Scan(&got).Error; err != nil || got != 0 {
			t.Fatalf("%d overlapping pairs, %v", got, err)
		}
	})
}

// A batch holding a slot that another generation wrote since it was
// filtered (the same start and length) lands without it: on PostgreSQL
// the unique key refuses the COPY, and the rest goes in as an INSERT.
func TestABatchRefusedForADuplicateIsFilteredAndResent(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		ctx := context.Background()
		m, slotAt := racedBatch(t, db)
		slot := func(h, min int) newSlot { return slotAt(time.Date(2030, 1, 8, h, min, 0, 0, time.UTC), 30) }
		if n, _, err := m.insertChunk(ctx, []newSlot{slot(9, 30)}); err != nil || n != 1 {
			t.Fatalf("insert the other slot: %d, %v", n, err)
		}
		n, statements, err := m.insertChunk(ctx, []newSlot{slot(9, 0), slot(9, 30), slot(10, 0)})
		if err != nil {
			t.Fatalf("insert the batch: %v", err)
		}
		want := 1 // SQLite: ON CONFLICT DO NOTHING skips it
		if db.Dialect == database.Postgres {
			want = 2 // the COPY refused, then an INSERT without it
		}
		if n != 2 || statements != want {
			t.Fatalf("inserted %d rows in %d statements, want 2 in %d", n, statements, want)
		}
		var got int64
		if err := db.Raw("SELECT COUNT(*) FROM time_slots").Scan(&got).Error; err != nil || got != 3 {
			t.Fatalf("%d slots, want 3 (%v)", got, err)
		}
	})
}

// racedBatch answers a manager whose clock stands on 2030-01-07 06:00 UTC
// over db, and a maker of generation rows for a fresh provider of it: one
// slot starting at start and lasting minutes, dated 2030-01-08.
func racedBatch(t *testing.T, db *database.DB) (*Manager, func(start time.Time, minutes int) newSlot) {
	t.Helper()
	now := time.Date(2030, 1, 7, 6, 0, 0, 0, time.UTC)
	m := New(db, WithClock(func() time.Time { return now }))
	p, err := m.CreateProvider(context.Background(), models.ProviderInput{Name: "Raced", TimeZone: "UTC", SlotMinutes: 30,
		WorkingHours: []models.WorkingHours{}})
	if err != nil {
		t.Fatal(err)
	}
	return m, func(start time.Time, minutes int) newSlot {
		return newSlot{ProviderID: p.ID, StartTime: start, EndTime: start.Add(time.Duration(minutes) * time.Minute),
			Date: models.Date("2030-01-08"), Capacity: 1, CreatedAt: now, UpdatedAt: now}
	}
}

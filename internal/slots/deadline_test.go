package slots_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// outOfTime fails unless err is DEADLINE_EXCEEDED whose details are want.
func outOfTime(t *testing.T, err error, want map[string]int) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Code != apperr.DeadlineExceeded {
		t.Fatalf("error %v, want DEADLINE_EXCEEDED", err)
	}
	for k, v := range want {
		if got, ok := e.Details[k].(int); !ok || got != v {
			t.Errorf("details[%q] = %v, want %d (details %v)", k, e.Details[k], v, e.Details)
		}
	}
	if !strings.Contains(e.Message, "stay committed") {
		t.Errorf("message %q does not say the work done stays", e.Message)
	}
}

// A cleanup whose deadline passes while its second batch is being sent
// finishes that batch and stops: the error is DEADLINE_EXCEEDED and it and
// the result count exactly the slots that are gone.
func TestCleanupStoppedByItsDeadlineCountsWhatIsCommitted(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		var hooked int
		m, clk := newManager(db, time.Date(2029, 11, 30, 23, 59, 0, 0, time.UTC),
			slots.WithHooks(slots.Hooks{Deleted: func(n int) { hooked += n }}))
		mustProvider(t, m, models.ProviderInput{Name: "Round the clock", TimeZone: "UTC", SlotMinutes: 5,
			WorkingHours: everyDay("00:00", "24:00")})
		if res := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 11}); res.Created != 10*288 {
			t.Fatalf("generated %d slots, want %d", res.Created, 10*288)
		}
		clk.Set(time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC))

		deadline := dbtest.NewDeadline(t.Context())
		var deletes atomic.Int32
		t.Cleanup(db.WatchStatements(func(q string) {
			if strings.HasPrefix(strings.ReplaceAll(strings.TrimSpace(q), "`", ""), "DELETE FROM time_slots") && deletes.Add(1) == 2 {
				deadline.Expire()
			}
		}))
		res, err := m.Cleanup(deadline, 0, nil)
		outOfTime(t, err, map[string]int{"deleted": 2000, "batches": 2})
		if res.Deleted != 2000 || res.Batches != 2 || hooked != 2000 {
			t.Fatalf("result %+v, hook %d; want 2000 deleted in 2 batches", res, hooked)
		}
		if left := count(t, db, "SELECT COUNT(*) FROM time_slots"); left != 10*288-2000 {
			t.Fatalf("%d slots left, want %d", left, 10*288-2000)
		}

		// Run again, it goes on where it stopped.
		res, err = m.Cleanup(ctx, 0, nil)
		if err != nil || res.Deleted != 10*288-2000 {
			t.Fatalf("second cleanup: %+v, %v", res, err)
		}
	})
}

// A generation whose deadline passes after its first written batch stops:
// batches already sent are finished, the error is DEADLINE_EXCEEDED, and
// it and the result count exactly the slots in the database.
func TestGenerationStoppedByItsDeadlineCountsWhatIsCommitted(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		var hooked int
		m, _ := newManager(db, time.Date(2029, 11, 30, 23, 59, 0, 0, time.UTC), slots.WithBatchSize(100), slots.WithWriters(3),
			slots.WithHooks(slots.Hooks{Generated: func(created, _ int) { hooked += created }}))
		mustProvider(t, m, models.ProviderInput{Name: "Round the clock", TimeZone: "UTC", SlotMinutes: 5,
			WorkingHours: everyDay("00:00", "24:00")})

		deadline := dbtest.NewDeadline(t.Context())
		res, err := m.Generate(deadline, slots.GenerateInput{DaysAhead: 11, Progress: func(slots.GenerateProgress) { deadline.Expire() }})
		stored := int(count(t, db, "SELECT COUNT(*) FROM time_slots"))
		outOfTime(t, err, map[string]int{"created": stored, "skipped": 0, "batches": res.Batches})
		if res.Created != stored || hooked != stored || stored == 0 || stored >= 10*288 {
			t.Fatalf("result %+v, hook %d, %d slots stored; want the result to count the stored slots, fewer than %d",
				res, hooked, stored, 10*288)
		}

		// Run again, it creates the rest.
		again := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 11})
		if again.Created != 10*288-stored || again.Skipped != stored {
			t.Fatalf("second generation %+v after %d stored", again, stored)
		}
	})
}

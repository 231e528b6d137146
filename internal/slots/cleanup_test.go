package slots_test

import (
	"slices"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

func TestCleanupDeletesOldSlotsInBatchesAndKeepsEveryBooking(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		var deletedByHook int
		m, clk := newManager(db, time.Date(2029, 11, 30, 23, 59, 0, 0, time.UTC),
			slots.WithHooks(slots.Hooks{Deleted: func(n int) { deletedByHook += n }}))
		p := mustProvider(t, m, models.ProviderInput{Name: "Round the clock", TimeZone: "UTC", SlotMinutes: 5,
			WorkingHours: everyDay("00:00", "24:00")})
		// December 1–4: 4 × 288 five-minute slots, more than one batch.
		res := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 5})
		if res.Created != 4*288 {
			t.Fatalf("generated %d old slots, want %d", res.Created, 4*288)
		}
		old := providerSlots(t, db, p.ID)
		last := old[len(old)-1] // December 4, 23:55–24:00
		var bookings []*models.Booking
		for _, s := range []models.TimeSlot{old[120], old[288+144], last} {
			b, _, err := m.Book(ctx, slots.BookInput{SlotID: s.ID, Customer: "customer of " + s.StartTime.Format(time.RFC3339)})
			if err != nil {
				t.Fatal(err)
			}
			bookings = append(bookings, b)
		}
		if _, _, err := m.Cancel(ctx, admin, byID(bookings[1].ID)); err != nil { // a cancelled booking is history too
			t.Fatal(err)
		}

		// Thirty days after the last old slot ended: it ended exactly
		// daysOld days ago, which is not more, so it stays.
		now := last.EndTime.AddDate(0, 0, 30)
		clk.Set(now)
		future := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 1})
		if future.Created != 287 {
			t.Fatalf("generated %d future slots, want 287", future.Created)
		}
		cutoff := now.AddDate(0, 0, -30)
		want := count(t, db, "SELECT COUNT(*) FROM time_slots WHERE end_time < ?", cutoff)
		if want != int64(len(old)-1) {
			t.Fatalf("%d slots ended before the cutoff, want %d", want, len(old)-1)
		}

		var progress []int
		cr, err := m.Cleanup(ctx, 30, func(n int) { progress = append(progress, n) })
		if err != nil {
			t.Fatal(err)
		}
		if cr.Deleted != int(want) || cr.Batches != 2 || !slices.Equal(progress, []int{1000, int(want)}) || deletedByHook != int(want) {
			t.Fatalf("cleanup %+v, progress %v, hook %d; want %d deleted in 2 batches", cr, progress, deletedByHook, want)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM time_slots"); n != 1+287 {
			t.Fatalf("%d slots left, want the boundary slot and 287 future ones", n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM time_slots WHERE start_time > ?", now); n != 287 {
			t.Fatalf("%d future slots left, want 287", n)
		}

		for i, b := range bookings {
			got, err := m.Booking(ctx, b.ID)
			if err != nil {
				t.Fatalf("booking %d after cleanup: %v", b.ID, err)
			}
			if got.ProviderID != p.ID || !got.StartTime.Equal(b.StartTime) || !got.EndTime.Equal(b.EndTime) ||
				got.Customer != b.Customer || !got.CreatedAt.Equal(b.CreatedAt) {
				t.Fatalf("booking %d after cleanup: %+v, want the snapshot of %+v", b.ID, got, b)
			}
			if wantStatus := map[bool]models.BookingStatus{true: models.BookingCancelled, false: models.BookingConfirmed}[i == 1]; got.Status != wantStatus {
				t.Fatalf("booking %d has status %s, want %s", b.ID, got.Status, wantStatus)
			}
			if deleted := i < 2; deleted != (got.SlotID == nil) {
				t.Fatalf("booking %d has slot %v after cleanup (its slot deleted: %v)", b.ID, got.SlotID, deleted)
			}
		}

		again, err := m.Cleanup(ctx, 30, nil)
		if err != nil || again.Deleted != 0 {
			t.Fatalf("second cleanup: %+v, %v; want nothing deleted", again, err)
		}
		zero, err := m.Cleanup(ctx, 0, nil)
		if err != nil || zero.Deleted != 1 {
			t.Fatalf("cleanup with daysOld 0: %+v, %v; want the one ended slot deleted", zero, err)
		}
		if got, err := m.Booking(ctx, bookings[2].ID); err != nil || got.SlotID != nil || got.Customer != bookings[2].Customer {
			t.Fatalf("booking of the last deleted slot: %+v, %v", got, err)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM time_slots"); n != 287 {
			t.Fatalf("%d slots left, want the 287 future ones", n)
		}
	})
}

func TestCleanupRefusesDaysOldOutOfRange(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, _ := newManager(db, bookingDay)
		for _, days := range []int{-1, 3651} {
			_, err := m.Cleanup(ctx, days, nil)
			wantCode(t, err, apperr.BadUserInput, "daysOld")
		}
		if _, err := m.Cleanup(ctx, 3650, nil); err != nil {
			t.Fatalf("daysOld 3650: %v", err)
		}
	})
}

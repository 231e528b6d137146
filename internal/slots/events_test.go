package slots_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/feed"
	"timeslots/internal/slots"
	"timeslots/models"
)

// marker is an event no manager publishes: a test publishes it after an
// operation, and every event read before it is what the operation emitted.
var marker = feed.Event{Kind: feed.Refetch, SlotID: -1}

// emitted runs op, then answers the events it published on f, read from
// sub up to the marker.
func emitted(t *testing.T, f *feed.Feed, sub *feed.Subscription, op func()) []feed.Event {
	t.Helper()
	op()
	f.Publish(marker)
	var out []feed.Event
	for e := range sub.Events() {
		if e == marker {
			return out
		}
		out = append(out, e)
	}
	t.Fatalf("subscription ended: %v", sub.Err())
	return nil
}

// slotChange is the event a change of kind leaves slot s in, read from
// the table.
func slotChange(t *testing.T, db *database.DB, kind feed.Kind, id int64) feed.Event {
	t.Helper()
	var s models.TimeSlot
	if err := db.First(&s, id).Error; err != nil {
		t.Fatal(err)
	}
	return feed.Event{Kind: kind, SlotID: s.ID, ProviderID: s.ProviderID, Start: s.StartTime.UTC(), End: s.EndTime.UTC(),
		Capacity: s.Capacity, Remaining: s.Capacity - s.BookedCount, Version: s.Version}
}

// wantEvents fails unless got and want are the same events, times
// compared as instants.
func wantEvents(t *testing.T, what string, got []feed.Event, want ...feed.Event) {
	t.Helper()
	norm := func(es []feed.Event) []string {
		out := make([]string, len(es))
		for i, e := range es {
			start, end := e.Start.UnixMicro(), e.End.UnixMicro()
			e.Start, e.End = time.Time{}, time.Time{}
			out[i] = fmt.Sprintf("%+v %d–%d", e, start, end)
		}
		return out
	}
	if g, w := norm(got), norm(want); !slices.Equal(g, w) {
		t.Fatalf("%s emitted\n  %v\nwant\n  %v", what, g, w)
	}
}

func TestEachChangeEmitsItsEventsAndRefusalsNone(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		f := feed.NewLocal()
		sub := f.Subscribe(1000)
		defer sub.Close()
		m, clk := newManager(db, bookingDay, slots.WithFeed(f))
		var fx *bookingFixture
		gen := emitted(t, f, sub, func() { fx = newBookingFixture(t, db, m, clk, 2, 0) })
		first, last := fx.slots[0], fx.slots[2]
		wantEvents(t, "generation", gen, feed.Event{Kind: feed.Generated, ProviderID: fx.p.ID,
			Start: first.StartTime, End: last.EndTime, Count: 3})

		a, b, c := fx.slots[0].ID, fx.slots[1].ID, fx.slots[2].ID
		var ann *models.Booking
		got := emitted(t, f, sub, func() {
			var err error
			if ann, _, err = m.Book(ctx, slots.BookInput{SlotID: a, Customer: "Ann", IdempotencyKey: "ann-1"}); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "a booking", got, slotChange(t, db, feed.Booked, a))
		if got[0].Remaining != 1 || got[0].Version != 2 {
			t.Fatalf("booking emitted remaining %d version %d, want 1 and 2", got[0].Remaining, got[0].Version)
		}

		refusals := []struct {
			name string
			in   slots.BookInput
			code apperr.Code
		}{
			{"a replay of the same idempotent booking", slots.BookInput{SlotID: a, Customer: "Ann", IdempotencyKey: "ann-1"}, ""},
			{"a second seat for the same customer (rolled back)", slots.BookInput{SlotID: a, Customer: "Ann"}, apperr.SlotUnavailable},
			{"a taken idempotency key with other input (rolled back)", slots.BookInput{SlotID: b, Customer: "Ann", IdempotencyKey: "ann-1"}, apperr.IdempotencyConflict},
			{"a slot that does not exist", slots.BookInput{SlotID: c + 1000, Customer: "Bob"}, apperr.NotFound},
		}
		for _, r := range refusals {
			got := emitted(t, f, sub, func() {
				_, _, err := m.Book(ctx, r.in)
				if apperr.ErrorCode(err) != r.code && !(r.code == "" && err == nil) {
					t.Fatalf("%s: %v, want %s", r.name, err, r.code)
				}
			})
			wantEvents(t, r.name, got)
		}
		fx.wantSeats(t, a, 1, 2)

		got = emitted(t, f, sub, func() {
			if _, _, err := m.Book(ctx, slots.BookInput{SlotID: a, Customer: "Cid"}); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "the last seat", got, slotChange(t, db, feed.Booked, a))
		got = emitted(t, f, sub, func() {
			_, _, err := m.Book(ctx, slots.BookInput{SlotID: a, Customer: "Dee"})
			wantCode(t, err, apperr.SlotUnavailable, "")
		})
		wantEvents(t, "a booking of a full slot", got)

		got = emitted(t, f, sub, func() {
			if _, err := m.Reschedule(ctx, admin, slots.RescheduleInput{Booking: byID(ann.ID), SlotID: b}); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "a reschedule", got, slotChange(t, db, feed.Rescheduled, b), slotChange(t, db, feed.Rescheduled, a))
		if got[0].Remaining != 1 || got[1].Remaining != 1 || got[1].Version != 4 {
			t.Fatalf("reschedule emitted %+v, want one seat left in each, the old slot at version 4", got)
		}
		got = emitted(t, f, sub, func() {
			_, err := m.Reschedule(ctx, admin, slots.RescheduleInput{Booking: byID(ann.ID), SlotID: b})
			wantCode(t, err, apperr.BadUserInput, "slotId")
		})
		wantEvents(t, "a reschedule to the booking's own slot", got)
		got = emitted(t, f, sub, func() {
			if _, _, err := m.Book(ctx, slots.BookInput{SlotID: c, Customer: "Ann"}); err != nil {
				t.Fatal(err)
			}
			// Ann holds a seat of c now: the claim of c's seat is rolled back.
			_, err := m.Reschedule(ctx, admin, slots.RescheduleInput{Booking: byID(ann.ID), SlotID: c})
			wantCode(t, err, apperr.SlotUnavailable, "")
		})
		wantEvents(t, "a booking, then a reschedule to a slot the customer holds", got, slotChange(t, db, feed.Booked, c))
		fx.wantSeats(t, c, 1, 2)

		got = emitted(t, f, sub, func() {
			if _, _, err := m.Cancel(ctx, admin, byID(ann.ID)); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "a cancellation", got, slotChange(t, db, feed.Cancelled, b))
		got = emitted(t, f, sub, func() {
			if _, _, err := m.Cancel(ctx, admin, byID(ann.ID)); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "cancelling a cancelled booking", got)

		in := models.ProviderInput{Name: fx.p.Name, TimeZone: "UTC", SlotMinutes: 60, Capacity: ptr(2),
			WorkingHours: everyDay("09:00", "12:00")}
		got = emitted(t, f, sub, func() {
			if _, err := m.UpdateProvider(ctx, fx.p.ID, in); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "an update that keeps the provider active", got, feed.Event{Kind: feed.ProviderUpdated, ProviderID: fx.p.ID})
		in.Active = ptr(false)
		got = emitted(t, f, sub, func() {
			if _, err := m.UpdateProvider(ctx, fx.p.ID, in); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "deactivating the provider", got, feed.Event{Kind: feed.ProviderDeactivated, ProviderID: fx.p.ID})
		got = emitted(t, f, sub, func() {
			if _, err := m.UpdateProvider(ctx, fx.p.ID, in); err != nil {
				t.Fatal(err)
			}
			_, err := m.UpdateProvider(ctx, fx.p.ID+1000, in)
			wantCode(t, err, apperr.NotFound, "")
		})
		wantEvents(t, "updating an inactive and a missing provider", got, feed.Event{Kind: feed.ProviderUpdated, ProviderID: fx.p.ID})
		in.Active = ptr(true)
		got = emitted(t, f, sub, func() {
			if _, err := m.UpdateProvider(ctx, fx.p.ID, in); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "reactivating the provider", got, feed.Event{Kind: feed.ProviderUpdated, ProviderID: fx.p.ID})

		clk.Set(bookingDay.AddDate(0, 0, 3))
		got = emitted(t, f, sub, func() {
			if res, err := m.Cleanup(ctx, 0, nil); err != nil || res.Deleted != 3 {
				t.Fatalf("cleanup: %+v, %v", res, err)
			}
		})
		wantEvents(t, "a cleanup", got, feed.Event{Kind: feed.CleanedUp, ProviderID: fx.p.ID,
			Start: first.StartTime, End: last.EndTime, Count: 3})
		got = emitted(t, f, sub, func() {
			if res, err := m.Cleanup(ctx, 0, nil); err != nil || res.Deleted != 0 {
				t.Fatalf("cleanup: %+v, %v", res, err)
			}
		})
		wantEvents(t, "a cleanup with nothing to delete", got)
	})
}

// Generation and cleanup emit one event per provider and batch, whose
// range and count are exactly the slots of that provider it wrote or
// deleted; a generation that writes nothing emits nothing.
func TestBulkEventsCoalescePerProviderAndBatch(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		f := feed.NewLocal()
		sub := f.Subscribe(1000)
		defer sub.Close()
		m, clk := newManager(db, bookingDay, slots.WithFeed(f), slots.WithBatchSize(5), slots.WithWriters(1))
		var ps []*models.Provider
		for i := range 3 {
			ps = append(ps, mustProvider(t, m, models.ProviderInput{Name: fmt.Sprintf("Bulk %d", i), TimeZone: "UTC",
				SlotMinutes: 60, WorkingHours: everyDay("09:00", "12:00")}))
		}
		ids := []int64{ps[0].ID, ps[1].ID, ps[2].ID}
		got := emitted(t, f, sub, func() {
			// 3 providers × 2 days × 3 slots = 18 rows in batches of 5:
			// [p0 ×5] [p0 ×1, p1 ×4] [p1 ×2, p2 ×3] [p2 ×3].
			if res := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 2, ProviderIDs: ids}); res.Created != 18 {
				t.Fatalf("created %d, want 18", res.Created)
			}
		})
		rows := map[int64][]models.TimeSlot{}
		for _, p := range ps {
			rows[p.ID] = providerSlots(t, db, p.ID)
		}
		span := func(kind feed.Kind, p int64, from, to int) feed.Event {
			return feed.Event{Kind: kind, ProviderID: p, Start: rows[p][from].StartTime, End: rows[p][to-1].EndTime, Count: to - from}
		}
		wantEvents(t, "generation in batches of 5", got,
			span(feed.Generated, ids[0], 0, 5),
			span(feed.Generated, ids[0], 5, 6), span(feed.Generated, ids[1], 0, 4),
			span(feed.Generated, ids[1], 4, 6), span(feed.Generated, ids[2], 0, 3),
			span(feed.Generated, ids[2], 3, 6))

		got = emitted(t, f, sub, func() {
			if res := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 2, ProviderIDs: ids}); res.Created != 0 {
				t.Fatalf("created %d again, want 0", res.Created)
			}
		})
		wantEvents(t, "a generation that writes nothing", got)

		clk.Set(bookingDay.AddDate(0, 0, 1).Add(2 * time.Hour)) // 08:00 the next day: only the first day's slots have ended
		got = emitted(t, f, sub, func() {
			if res, err := m.Cleanup(ctx, 0, nil); err != nil || res.Deleted != 9 {
				t.Fatalf("cleanup: %+v, %v", res, err)
			}
		})
		slices.SortFunc(got, func(a, b feed.Event) int { return int(a.ProviderID - b.ProviderID) })
		wantEvents(t, "a cleanup of one batch", got,
			span(feed.CleanedUp, ids[0], 0, 3), span(feed.CleanedUp, ids[1], 0, 3), span(feed.CleanedUp, ids[2], 0, 3))
	})
}

// Under 50 bookings and cancellations of one slot released together,
// every change gets its own version and its event says what it left: in
// version order, each booking takes a seat and each cancellation frees
// one.
func TestVersionsOrderConcurrentChangesOfASlot(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		f := feed.NewLocal()
		m, clk := newManager(db, bookingDay, slots.WithFeed(f))
		if db.Dialect == database.Postgres {
			db.SQL().SetMaxOpenConns(20)
		}
		fx := newBookingFixture(t, db, m, clk, 50, 0)
		target := fx.slots[1].ID
		const n = 50
		held := make([]*models.Booking, n/2)
		for i := range held {
			b, _, err := m.Book(ctx, slots.BookInput{SlotID: target, Customer: fmt.Sprintf("holder-%02d", i)})
			if err != nil {
				t.Fatal(err)
			}
			held[i] = b
		}
		before := slotChange(t, db, feed.Booked, target)
		sub := f.Subscribe(4 * n)
		defer sub.Close()
		errs := together(n, func(i int) error {
			if i%2 == 0 {
				_, _, err := m.Cancel(ctx, admin, byID(held[i/2].ID))
				return err
			}
			_, _, err := m.Book(ctx, slots.BookInput{SlotID: target, Customer: fmt.Sprintf("racer-%02d", i)})
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("change %d: %v", i, err)
			}
		}
		got := emitted(t, f, sub, func() {})
		if len(got) != n {
			t.Fatalf("%d events, want %d", len(got), n)
		}
		slices.SortFunc(got, func(a, b feed.Event) int { return int(a.Version - b.Version) })
		remaining := before.Remaining
		for i, e := range got {
			if e.SlotID != target || e.Version != before.Version+int64(i)+1 {
				t.Fatalf("event %d: slot %d version %d, want slot %d version %d", i, e.SlotID, e.Version, target, before.Version+int64(i)+1)
			}
			switch e.Kind {
			case feed.Booked:
				remaining--
			case feed.Cancelled:
				remaining++
			default:
				t.Fatalf("event %d is %s", i, e.Kind)
			}
			if e.Remaining != remaining {
				t.Fatalf("event %d (%s, version %d) says %d remaining, want %d", i, e.Kind, e.Version, e.Remaining, remaining)
			}
		}
		fx.wantSeats(t, target, n/2, before.Version+n)
	})
}

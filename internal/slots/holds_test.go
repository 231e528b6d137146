package slots_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/feed"
	"timeslots/internal/slots"
	"timeslots/models"
)

// seatsTaken counts a slot's confirmed bookings and its holds live at now
// straight from the tables, in one statement, whatever the slot's counters
// say.
func seatsTaken(t testing.TB, db *database.DB, slotID int64, now time.Time) int64 {
	t.Helper()
	return count(t, db, `SELECT (SELECT COUNT(*) FROM bookings WHERE slot_id = ? AND status = 'confirmed')
		+ (SELECT COUNT(*) FROM slot_holds WHERE slot_id = ? AND status = 'held' AND expires_at > ?)`, slotID, slotID, now)
}

// listed answers the slot among the provider's slots listed with statuses,
// nil when it is not listed.
func listed(t testing.TB, m *slots.Manager, providerID, slotID int64, statuses ...models.SlotStatus) *models.TimeSlot {
	t.Helper()
	page, err := m.ListSlots(ctx, slots.SlotFilter{ProviderID: &providerID, Statuses: statuses}, slots.PageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range page.Slots {
		if page.Slots[i].ID == slotID {
			return &page.Slots[i]
		}
	}
	return nil
}

// wantRemaining checks what every read of the slot answers as its free
// seats at the manager's now: by id, in the AVAILABLE or BOOKED listing,
// and in the count of each.
func wantRemaining(t testing.TB, m *slots.Manager, f *bookingFixture, slotID int64, remaining int) {
	t.Helper()
	s, err := m.Slot(ctx, slotID)
	if err != nil {
		t.Fatal(err)
	}
	if s.Remaining() != remaining {
		t.Fatalf("slot %d by id: remaining %d (booked %d, held %d), want %d", slotID, s.Remaining(), s.BookedCount, s.Held, remaining)
	}
	avail := listed(t, m, f.p.ID, slotID)
	full := listed(t, m, f.p.ID, slotID, models.SlotBooked)
	byID, err := m.SlotsByID(ctx, []int64{slotID})
	if err != nil {
		t.Fatal(err)
	}
	if byID[slotID].Remaining() != remaining {
		t.Fatalf("slot %d by ids: remaining %d, want %d", slotID, byID[slotID].Remaining(), remaining)
	}
	if remaining > 0 {
		if avail == nil || full != nil || avail.Remaining() != remaining || avail.Status != models.SlotAvailable {
			t.Fatalf("slot %d with %d free seats: AVAILABLE lists %+v, BOOKED %+v", slotID, remaining, avail, full)
		}
	} else if avail != nil || full == nil || full.Remaining() != 0 || full.Status != models.SlotBooked {
		t.Fatalf("full slot %d: AVAILABLE lists %+v, BOOKED %+v", slotID, avail, full)
	}
	pid, from, to := f.p.ID, s.StartTime, s.StartTime.Add(time.Minute)
	n, err := m.CountSlots(ctx, slots.SlotFilter{ProviderID: &pid, From: &from, To: &to, Statuses: []models.SlotStatus{models.SlotBooked}})
	if err != nil {
		t.Fatal(err)
	}
	if (n > 0) != (remaining == 0) {
		t.Fatalf("slot %d with %d free seats: %d BOOKED slots counted", slotID, remaining, n)
	}
}

func TestHoldTakesASeatUntilItExpiresReleasesOrIsBooked(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 2, 0)
		id := f.slots[0].ID

		h1, s, err := m.Hold(ctx, slots.HoldInput{SlotID: id, TTLMinutes: ptr(5)})
		if err != nil {
			t.Fatal(err)
		}
		if len(h1.Reference) != 27 || h1.Reference[:3] != "hd_" || !h1.ExpiresAt.Equal(bookingDay.Add(5*time.Minute)) {
			t.Fatalf("hold %+v", h1)
		}
		if s.Remaining() != 1 || s.Held != 1 {
			t.Fatalf("hold answered slot %+v, want 1 held and 1 free", s)
		}
		wantRemaining(t, m, f, id, 1)
		h2, s, err := m.Hold(ctx, slots.HoldInput{SlotID: id, Customer: "Ann"})
		if err != nil {
			t.Fatal(err)
		}
		if s.Remaining() != 0 || !h2.ExpiresAt.Equal(bookingDay.Add(slots.DefaultHoldTTL)) {
			t.Fatalf("second hold %+v answered slot %+v", h2, s)
		}
		wantRemaining(t, m, f, id, 0)
		_, _, err = m.Book(ctx, slots.BookInput{SlotID: id, Customer: "Bob"})
		wantCode(t, err, apperr.SlotUnavailable, "")
		_, _, err = m.Hold(ctx, slots.HoldInput{SlotID: id})
		wantCode(t, err, apperr.SlotUnavailable, "")

		// The first hold expires by time alone: its seat is free the
		// instant expiresAt passes, and a booking takes it.
		clk.Set(h1.ExpiresAt)
		wantRemaining(t, m, f, id, 1)
		_, _, err = m.BookHold(ctx, h1.Reference, slots.BookInput{Customer: "Cat"})
		wantCode(t, err, apperr.HoldExpired, "")
		b, s, err := m.Book(ctx, slots.BookInput{SlotID: id, Customer: "Bob"})
		if err != nil {
			t.Fatal(err)
		}
		if s.Remaining() != 0 || s.Held != 1 || s.BookedCount != 1 {
			t.Fatalf("booking beside a live hold answered slot %+v", s)
		}
		_ = b
		wantRemaining(t, m, f, id, 0)

		// The second hold is Ann's: only she books it, into the seat it kept.
		_, _, err = m.BookHold(ctx, h2.Reference, slots.BookInput{Customer: "Dan"})
		wantCode(t, err, apperr.BadUserInput, "customer")
		ann, s, err := m.BookHold(ctx, h2.Reference, slots.BookInput{Customer: "Ann"})
		if err != nil {
			t.Fatal(err)
		}
		if s.BookedCount != 2 || s.Held != 0 || s.Remaining() != 0 || ann.SlotID == nil || *ann.SlotID != id {
			t.Fatalf("booked hold: booking %+v, slot %+v", ann, s)
		}
		again, _, err := m.BookHold(ctx, h2.Reference, slots.BookInput{Customer: "Ann"})
		if err != nil || again.ID != ann.ID {
			t.Fatalf("booking a booked hold again: %+v, %v; want booking %d", again, err, ann.ID)
		}
		if n := seatsTaken(t, db, id, clk.Now()); n != 2 {
			t.Fatalf("%d seats taken in the tables, want 2", n)
		}
		_, _, err = m.ReleaseHold(ctx, h2.Reference)
		wantCode(t, err, apperr.BadUserInput, "reference")

		// A released hold frees its seat at once and can no longer be booked.
		id = f.slots[1].ID
		h3, _, err := m.Hold(ctx, slots.HoldInput{SlotID: id, TTLMinutes: ptr(1)})
		if err != nil {
			t.Fatal(err)
		}
		wantRemaining(t, m, f, id, 1)
		rel, s, err := m.ReleaseHold(ctx, h3.Reference)
		if err != nil || rel.Status != models.HoldReleased || s.Remaining() != 2 {
			t.Fatalf("release: %+v, %+v, %v", rel, s, err)
		}
		wantRemaining(t, m, f, id, 2)
		if rel, _, err := m.ReleaseHold(ctx, h3.Reference); err != nil || rel.Status != models.HoldReleased {
			t.Fatalf("releasing twice: %+v, %v", rel, err)
		}
		_, _, err = m.BookHold(ctx, h3.Reference, slots.BookInput{Customer: "Eve"})
		wantCode(t, err, apperr.HoldExpired, "")
	})
}

func TestHoldRefusesBadInput(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 1, 0)
		id := f.slots[0].ID
		for _, c := range []struct {
			name  string
			in    slots.HoldInput
			code  apperr.Code
			field string
		}{
			{"a hold of no slot", slots.HoldInput{SlotID: 0}, apperr.BadUserInput, "slotId"},
			{"a hold of no minutes", slots.HoldInput{SlotID: id, TTLMinutes: ptr(0)}, apperr.BadUserInput, "ttlMinutes"},
			{"a hold over an hour", slots.HoldInput{SlotID: id, TTLMinutes: ptr(61)}, apperr.BadUserInput, "ttlMinutes"},
			{"a customer with a NUL", slots.HoldInput{SlotID: id, Customer: "a\x00b"}, apperr.BadUserInput, "customer"},
			{"a missing slot", slots.HoldInput{SlotID: 999999}, apperr.NotFound, ""},
		} {
			_, _, err := m.Hold(ctx, c.in)
			wantCode(t, err, c.code, c.field)
		}
		_, _, err := m.BookHold(ctx, "", slots.BookInput{Customer: "Ann"})
		wantCode(t, err, apperr.BadUserInput, "holdReference")
		_, _, err = m.BookHold(ctx, "hd_nothing", slots.BookInput{Customer: "Ann"})
		wantCode(t, err, apperr.NotFound, "")
		_, _, err = m.ReleaseHold(ctx, "hd_nothing")
		wantCode(t, err, apperr.NotFound, "")

		// A started slot is not held; a hold whose slot started is not booked.
		clk.Set(f.slots[0].StartTime.Add(-30 * time.Minute))
		h, _, err := m.Hold(ctx, slots.HoldInput{SlotID: id, Customer: "Ann", IdempotencyKey: "k1", TTLMinutes: ptr(60)})
		if err != nil {
			t.Fatal(err)
		}
		again, _, err := m.Hold(ctx, slots.HoldInput{SlotID: id, Customer: "Ann", IdempotencyKey: "k1", TTLMinutes: ptr(60)})
		if err != nil || again.Reference != h.Reference {
			t.Fatalf("replayed hold %+v, %v; want %s", again, err, h.Reference)
		}
		_, _, err = m.Hold(ctx, slots.HoldInput{SlotID: f.slots[1].ID, Customer: "Ann", IdempotencyKey: "k1"})
		wantCode(t, err, apperr.IdempotencyConflict, "")
		clk.Set(f.slots[0].StartTime)
		_, _, err = m.BookHold(ctx, h.Reference, slots.BookInput{Customer: "Ann"})
		wantCode(t, err, apperr.SlotInPast, "")
		_, _, err = m.Hold(ctx, slots.HoldInput{SlotID: id})
		wantCode(t, err, apperr.SlotInPast, "")
	})
}

func TestConcurrentHoldsFillASlotExactlyToCapacity(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 3, 0)
		if db.Dialect == database.Postgres {
			db.SQL().SetMaxOpenConns(20)
		}
		id := f.slots[1].ID
		const n = 200
		errs := together(n, func(i int) error {
			_, s, err := m.Hold(ctx, slots.HoldInput{SlotID: id, Customer: fmt.Sprintf("racer-%03d", i)})
			if err == nil && (s.Held < 1 || s.Held > 3 || s.Remaining() < 0) {
				return fmt.Errorf("hold answered slot %+v", s)
			}
			return err
		})
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case apperr.ErrorCode(err) != apperr.SlotUnavailable:
				t.Fatalf("a racer got %v", err)
			}
		}
		if ok != 3 {
			t.Fatalf("%d of %d holds succeeded on 3 seats", ok, n)
		}
		if got := seatsTaken(t, db, id, clk.Now()); got != 3 {
			t.Fatalf("%d seats taken in the tables, want 3", got)
		}
		wantRemaining(t, m, f, id, 0)
	})
}

func TestHoldsAndBookingsTogetherNeverExceedCapacity(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 3, 0)
		if db.Dialect == database.Postgres {
			db.SQL().SetMaxOpenConns(20)
		}
		id := f.slots[1].ID
		// One hold is there already and expires while the racers run:
		// the summary then counts a hold that is no longer live, which
		// the racers must recount rather than be refused by.
		old, _, err := m.Hold(ctx, slots.HoldInput{SlotID: id, TTLMinutes: ptr(1)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := m.Hold(ctx, slots.HoldInput{SlotID: id, TTLMinutes: ptr(30)}); err != nil {
			t.Fatal(err)
		}
		clk.Set(old.ExpiresAt.Add(time.Second))
		const n = 120
		var done atomic.Bool
		var over atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // watches the tables while the racers run
			defer wg.Done()
			for !done.Load() {
				if got := seatsTaken(t, db, id, clk.Now()); got > 3 {
					over.Store(got)
				}
			}
		}()
		errs := together(n, func(i int) error {
			var err error
			switch i % 3 {
			case 0:
				_, _, err = m.Book(ctx, slots.BookInput{SlotID: id, Customer: fmt.Sprintf("booker-%03d", i)})
			case 1:
				_, _, err = m.Hold(ctx, slots.HoldInput{SlotID: id})
			default:
				_, _, err = m.BookHold(ctx, old.Reference, slots.BookInput{Customer: fmt.Sprintf("late-%03d", i)})
				if apperr.ErrorCode(err) == apperr.HoldExpired {
					return errors.New("expired as expected")
				}
				if err == nil {
					return errors.New("an expired hold was booked")
				}
			}
			return err
		})
		done.Store(true)
		wg.Wait()
		if got := over.Load(); got > 0 {
			t.Fatalf("the tables showed %d seats taken of 3", got)
		}
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case i%3 == 2 && err.Error() == "expired as expected":
			case apperr.ErrorCode(err) != apperr.SlotUnavailable:
				t.Fatalf("racer %d got %v", i, err)
			}
		}
		if ok != 2 {
			t.Fatalf("%d racers took the 2 seats free once the old hold expired", ok)
		}
		if got := seatsTaken(t, db, id, clk.Now()); got != 3 {
			t.Fatalf("%d seats taken in the tables, want 3", got)
		}
		wantRemaining(t, m, f, id, 0)
	})
}

func TestBookingOneHoldTwiceConcurrentlyMakesOneBooking(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 2, 0)
		id := f.slots[2].ID
		h, _, err := m.Hold(ctx, slots.HoldInput{SlotID: id})
		if err != nil {
			t.Fatal(err)
		}
		const n = 20
		ids := make([]int64, n)
		errs := together(n, func(i int) error {
			b, _, err := m.BookHold(ctx, h.Reference, slots.BookInput{Customer: "Ann"})
			if err == nil {
				ids[i] = b.ID
			}
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("racer %d: %v", i, err)
			}
			if ids[i] != ids[0] {
				t.Fatalf("racers answered bookings %d and %d", ids[0], ids[i])
			}
		}
		if got := count(t, db, "SELECT COUNT(*) FROM bookings WHERE slot_id = ?", id); got != 1 {
			t.Fatalf("%d bookings of the slot, want 1", got)
		}
		if got := seatsTaken(t, db, id, clk.Now()); got != 1 {
			t.Fatalf("%d seats taken in the tables, want 1", got)
		}
		wantRemaining(t, m, f, id, 1)
	})
}

// heldEvent is the event of a change of kind that left slot id with
// remaining seats at version, read from the table otherwise.
func heldEvent(t *testing.T, db *database.DB, kind feed.Kind, id int64, remaining int, version int64) feed.Event {
	t.Helper()
	e := slotChange(t, db, kind, id)
	e.Remaining, e.Version = remaining, version
	return e
}

func TestHoldsEmitHeldReleasedBookedAndExpired(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		fd := feed.NewLocal()
		sub := fd.Subscribe(1000)
		defer sub.Close()
		m, clk := newManager(db, bookingDay, slots.WithFeed(fd))
		var f *bookingFixture
		emitted(t, fd, sub, func() { f = newBookingFixture(t, db, m, clk, 2, 0) })
		id := f.slots[0].ID

		var a, b *models.Hold
		got := emitted(t, fd, sub, func() {
			var err error
			if a, _, err = m.Hold(ctx, slots.HoldInput{SlotID: id, TTLMinutes: ptr(1)}); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "a hold", got, heldEvent(t, db, feed.Held, id, 1, 2))
		got = emitted(t, fd, sub, func() {
			var err error
			if b, _, err = m.Hold(ctx, slots.HoldInput{SlotID: id, TTLMinutes: ptr(5)}); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "a second hold", got, heldEvent(t, db, feed.Held, id, 0, 3))
		got = emitted(t, fd, sub, func() {
			_, _, err := m.Hold(ctx, slots.HoldInput{SlotID: id})
			wantCode(t, err, apperr.SlotUnavailable, "")
		})
		wantEvents(t, "a refused hold", got)

		// Once a expires, the next claim recounts the slot's holds: the
		// expiry is a change of its own, then the booking takes the seat.
		clk.Set(a.ExpiresAt)
		got = emitted(t, fd, sub, func() {
			if _, _, err := m.Book(ctx, slots.BookInput{SlotID: id, Customer: "Ann"}); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "a booking after an expiry", got, heldEvent(t, db, feed.Expired, id, 1, 4), heldEvent(t, db, feed.Booked, id, 0, 5))

		// Booking hold b: the seat passes from the hold to the booking, so
		// both events carry the seats as the change left them.
		got = emitted(t, fd, sub, func() {
			if _, _, err := m.BookHold(ctx, b.Reference, slots.BookInput{Customer: "Bob"}); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "a booked hold", got, heldEvent(t, db, feed.Released, id, 0, 6), heldEvent(t, db, feed.Booked, id, 0, 7))

		id = f.slots[1].ID
		var c *models.Hold
		emitted(t, fd, sub, func() {
			var err error
			if c, _, err = m.Hold(ctx, slots.HoldInput{SlotID: id}); err != nil {
				t.Fatal(err)
			}
		})
		got = emitted(t, fd, sub, func() {
			if _, _, err := m.ReleaseHold(ctx, c.Reference); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "a released hold", got, heldEvent(t, db, feed.Released, id, 2, 3))
		got = emitted(t, fd, sub, func() {
			if _, _, err := m.ReleaseHold(ctx, c.Reference); err != nil {
				t.Fatal(err)
			}
		})
		wantEvents(t, "a hold released twice", got)
	})
}

func TestAPageWithHoldsChangesWhenTheFirstExpires(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 1, 0)
		pid := f.p.ID
		page := func(statuses ...models.SlotStatus) *slots.SlotPage {
			p, err := m.ListSlots(ctx, slots.SlotFilter{ProviderID: &pid, Statuses: statuses}, slots.PageRequest{})
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		if got := page().Changes; !got.Equal(f.slots[0].StartTime) {
			t.Fatalf("a page without holds changes at %s, want the first start", got)
		}
		h, _, err := m.Hold(ctx, slots.HoldInput{SlotID: f.slots[0].ID, TTLMinutes: ptr(7)})
		if err != nil {
			t.Fatal(err)
		}
		if got := page(models.SlotBooked); !got.Changes.Equal(h.ExpiresAt) || len(got.Slots) != 1 {
			t.Fatalf("the BOOKED page of a held slot changes at %s with %d slots, want %s and 1", got.Changes, len(got.Slots), h.ExpiresAt)
		}
		clk.Set(h.ExpiresAt)
		if got := page(models.SlotBooked); len(got.Slots) != 0 {
			t.Fatalf("the BOOKED page lists %d slots once the hold expired", len(got.Slots))
		}
	})
}

func TestPruneHoldsDeletesOnlyHoldsEndedADayAgo(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		var mu sync.Mutex
		events := map[string]int{}
		m, clk := newManager(db, bookingDay, slots.WithHooks(slots.Hooks{Hold: func(e string) {
			mu.Lock()
			events[e]++
			mu.Unlock()
		}}))
		f := newBookingFixture(t, db, m, clk, 3, 0)
		id := f.slots[0].ID
		expiring, _, err := m.Hold(ctx, slots.HoldInput{SlotID: id, TTLMinutes: ptr(1)})
		if err != nil {
			t.Fatal(err)
		}
		released, _, err := m.Hold(ctx, slots.HoldInput{SlotID: id, TTLMinutes: ptr(1)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := m.ReleaseHold(ctx, released.Reference); err != nil {
			t.Fatal(err)
		}
		// Expires at 07:00, an hour after the others: kept an hour longer.
		later, _, err := m.Hold(ctx, slots.HoldInput{SlotID: f.slots[2].ID, Customer: "Ann", TTLMinutes: ptr(60)})
		if err != nil {
			t.Fatal(err)
		}
		clk.Set(bookingDay.Add(slots.HoldRetention))
		if n, err := m.PruneHolds(ctx); err != nil || n != 0 {
			t.Fatalf("pruning a day after the holds began: %d, %v; want 0", n, err)
		}
		clk.Set(bookingDay.Add(slots.HoldRetention + 2*time.Minute))
		if n, err := m.PruneHolds(ctx); err != nil || n != 2 {
			t.Fatalf("pruning: %d, %v; want 2", n, err)
		}
		for _, ref := range []string{expiring.Reference, released.Reference} {
			_, _, err := m.ReleaseHold(ctx, ref)
			wantCode(t, err, apperr.NotFound, "")
		}
		if h, _, err := m.ReleaseHold(ctx, later.Reference); err != nil || h.StatusAt(clk.Now()) != models.HoldExpired {
			t.Fatalf("the hold that expired later: %+v, %v", h, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if events[slots.HoldCreated] != 3 || events[slots.HoldReleased] != 1 || events[slots.HoldExpired] != 1 {
			t.Fatalf("hold events %v", events)
		}
	})
}

func TestStatsCountLiveHolds(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 1, 0)
		h, _, err := m.Hold(ctx, slots.HoldInput{SlotID: f.slots[0].ID, TTLMinutes: ptr(2)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := m.Book(ctx, slots.BookInput{SlotID: f.slots[1].ID, Customer: "Ann"}); err != nil {
			t.Fatal(err)
		}
		want := func(booked, taken int64) {
			t.Helper()
			st, err := m.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var u *slots.ProviderUtilization
			for i := range st.Utilization {
				if st.Utilization[i].Provider.ID == f.p.ID {
					u = &st.Utilization[i]
				}
			}
			var day int64
			for _, d := range st.Days {
				if d.ProviderID == f.p.ID {
					day += d.Booked
				}
			}
			if st.BookedSlots != booked || u == nil || u.BookedSlots != booked || day != taken {
				t.Fatalf("stats: %d booked slots, provider %+v, %d seats taken that day; want %d and %d", st.BookedSlots, u, day, booked, taken)
			}
		}
		want(2, 2)
		clk.Set(h.ExpiresAt)
		want(1, 1)
	})
}

// A cancel, a reschedule, a release or a hold's booking that waits for
// its slot's lock while another hold of the slot commits answers (and so
// publishes) the slot with that hold counted, when the slot's hold summary
// leaves the count to slot_holds: the statement that freed the seat read
// slot_holds from the snapshot it took before it waited. (SQLite runs one
// writer at a time: no such wait.) The slot has three seats, Ann's booking
// and one hold (the first) before; the second hold commits during the
// change.
func TestAFreedSeatCountsAHoldThatCommittedWhileItWaited(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		free func(m *slots.Manager, f *bookingFixture, booking, hold string) (*models.TimeSlot, error)
		// booked and held are the slot's seats after the change.
		booked, held int
	}{
		{"cancel", func(m *slots.Manager, _ *bookingFixture, booking, _ string) (*models.TimeSlot, error) {
			_, s, err := m.Cancel(ctx, slots.Actor{}, byRef(booking))
			return s, err
		}, 0, 2},
		{"reschedule", func(m *slots.Manager, f *bookingFixture, booking, _ string) (*models.TimeSlot, error) {
			r, err := m.Reschedule(ctx, slots.Actor{}, slots.RescheduleInput{Booking: byRef(booking), SlotID: f.slots[1].ID})
			if err != nil {
				return nil, err
			}
			return r.Previous, nil
		}, 0, 2},
		{"release", func(m *slots.Manager, _ *bookingFixture, _, hold string) (*models.TimeSlot, error) {
			_, s, err := m.ReleaseHold(ctx, hold)
			return s, err
		}, 1, 1},
		{"book the hold", func(m *slots.Manager, _ *bookingFixture, _, hold string) (*models.TimeSlot, error) {
			_, s, err := m.BookHold(ctx, hold, slots.BookInput{Customer: "Bob"})
			return s, err
		}, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := dbtest.Open(t, database.Postgres)
			now := bookingDay
			m, clk := newManager(db, now)
			f := newBookingFixture(t, db, m, clk, 3, 0)
			slot := f.slots[0].ID
			b, _, err := m.Book(ctx, slots.BookInput{SlotID: slot, Customer: "Ann"})
			if err != nil {
				t.Fatal(err)
			}
			h, _, err := m.Hold(ctx, slots.HoldInput{SlotID: slot, TTLMinutes: ptr(30)})
			if err != nil {
				t.Fatal(err)
			}
			// The summary's first expiry passed with its hold still live, as
			// when an earlier hold expired and nothing recounted the slot yet.
			if err := db.Exec("UPDATE time_slots SET held_first = ? WHERE id = ?", now.Add(-time.Minute), slot).Error; err != nil {
				t.Fatal(err)
			}
			// A second hold, written as the hold statement writes one,
			// commits while the change waits for the slot's row.
			tx, err := db.SQL().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }()
			if _, err := tx.ExecContext(ctx, "UPDATE time_slots SET held_count = held_count + 1, version = version + 1 WHERE id = $1", slot); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO slot_holds (reference, slot_id, status, expires_at, created_at)
				VALUES ('hd_second', $1, 'held', $2, $3)`, slot, now.Add(30*time.Minute), now); err != nil {
				t.Fatal(err)
			}
			type freed struct {
				slot *models.TimeSlot
				err  error
			}
			done := make(chan freed, 1)
			go func() {
				s, err := tc.free(m, f, b.Reference, h.Reference)
				done <- freed{s, err}
			}()
			deadline := time.Now().Add(10 * time.Second)
			for count(t, db, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the change never waited for the slot's lock")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			got := <-done
			if got.err != nil {
				t.Fatal(got.err)
			}
			if got.slot == nil || got.slot.ID != slot || got.slot.BookedCount != tc.booked || got.slot.Held != tc.held ||
				got.slot.Remaining() != 3-tc.booked-tc.held {
				t.Fatalf("answered %+v, want slot %d with %d booked, %d held, %d remaining", got.slot, slot, tc.booked, tc.held, 3-tc.booked-tc.held)
			}
			if n := seatsTaken(t, db, slot, now); n != int64(tc.booked+tc.held) {
				t.Fatalf("%d seats taken in the tables, want %d", n, tc.booked+tc.held)
			}
		})
	}
}

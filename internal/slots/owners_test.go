package slots_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// referenceShape is the shape of a reference the server makes: bk_ and 18
// random bytes in unpadded base64url.
var referenceShape = regexp.MustCompile(`^bk_[A-Za-z0-9_-]{24}$`)

// mustBook books in or fails the test.
func mustBook(t testing.TB, m *slots.Manager, in slots.BookInput) *models.Booking {
	t.Helper()
	b, _, err := m.Book(ctx, in)
	if err != nil {
		t.Fatalf("book %+v: %v", in, err)
	}
	return b
}

// wantConsistentSeats fails unless every slot's booked count equals its
// confirmed bookings, counted in SQL apart from the manager.
func wantConsistentSeats(t testing.TB, db *database.DB) {
	t.Helper()
	if n := count(t, db, `SELECT COUNT(*) FROM time_slots s WHERE s.booked_count <>
		(SELECT COUNT(*) FROM bookings b WHERE b.slot_id = s.id AND b.status = 'confirmed')`); n != 0 {
		t.Fatalf("%d slots have a booked count other than their confirmed bookings", n)
	}
}

func TestEveryBookingGetsAnUnguessableReference(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 5, 0)
		in := slots.BookInput{SlotID: f.slots[0].ID, Customer: "ada", IdempotencyKey: "ada-1"}
		first := mustBook(t, m, in)
		other := mustBook(t, m, slots.BookInput{SlotID: f.slots[0].ID, Customer: "grace"})
		for _, b := range []*models.Booking{first, other} {
			if !referenceShape.MatchString(b.Reference) {
				t.Fatalf("booking %d has reference %q, want bk_ and 24 base64url characters", b.ID, b.Reference)
			}
		}
		if first.Reference == other.Reference {
			t.Fatalf("two bookings share the reference %q", first.Reference)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM bookings WHERE id = ? AND reference = ?", first.ID, first.Reference); n != 1 {
			t.Fatalf("booking %d is not stored with its reference", first.ID)
		}
		again := mustBook(t, m, in)
		if again.ID != first.ID || again.Reference != first.Reference {
			t.Fatalf("the replay answered booking %d (%q), want %d (%q)", again.ID, again.Reference, first.ID, first.Reference)
		}
		found, err := m.FindBooking(ctx, slots.Actor{}, byRef(first.Reference))
		if err != nil || found.ID != first.ID || found.Customer != "ada" {
			t.Fatalf("FindBooking by reference: %+v, %v", found, err)
		}
		if found.CustomerID != nil {
			t.Fatalf("an anonymous booking has the owner %q", *found.CustomerID)
		}
		owned := mustBook(t, m, slots.BookInput{SlotID: f.slots[1].ID, Customer: "lin", CustomerID: "sub-lin"})
		stored, err := m.Booking(ctx, owned.ID)
		if err != nil || owned.CustomerID == nil || stored.CustomerID == nil || *stored.CustomerID != "sub-lin" {
			t.Fatalf("a customer's booking: answered owner %v, stored %+v, %v", owned.CustomerID, stored, err)
		}
	})
}

func TestAReferenceThatNamesNoBookingIsNotFound(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 5, 0)
		b := mustBook(t, m, slots.BookInput{SlotID: f.slots[0].ID, Customer: "ada"})
		near := b.Reference[:len(b.Reference)-1] + map[bool]string{true: "B", false: "A"}[strings.HasSuffix(b.Reference, "A")]
		for _, tc := range []struct {
			name, ref string
			code      apperr.Code
			field     string
		}{
			{"an empty reference is bad input", "", apperr.BadUserInput, "reference"},
			{"a blank reference is bad input", "  ", apperr.BadUserInput, "reference"},
			{"an overlong reference is bad input", "bk_" + strings.Repeat("x", 98), apperr.BadUserInput, "reference"},
			{"an unknown reference is not found", "bk_AAAAAAAAAAAAAAAAAAAAAAAA", apperr.NotFound, ""},
			{"a reference one character off is not found", near, apperr.NotFound, ""},
			{"a malformed reference is not found", "'; DROP TABLE bookings; --", apperr.NotFound, ""},
			{"a booking's id as a reference is not found", fmt.Sprint(b.ID), apperr.NotFound, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := m.FindBooking(ctx, slots.Actor{}, byRef(tc.ref))
				wantCode(t, err, tc.code, tc.field)
				if tc.code == apperr.NotFound && apperr.ErrorMessage(err) != "no booking has this reference" {
					t.Fatalf("message %q tells this miss apart", apperr.ErrorMessage(err))
				}
				_, _, err = m.Cancel(ctx, slots.Actor{}, byRef(tc.ref))
				wantCode(t, err, tc.code, tc.field)
				_, err = m.Reschedule(ctx, slots.Actor{}, slots.RescheduleInput{Booking: byRef(tc.ref), SlotID: f.slots[1].ID})
				wantCode(t, err, tc.code, tc.field)
			})
		}
		t.Run("a reference of exactly the longest length is looked up", func(t *testing.T) {
			_, err := m.FindBooking(ctx, slots.Actor{}, byRef("bk_"+strings.Repeat("x", 97)))
			wantCode(t, err, apperr.NotFound, "")
		})
		t.Run("both a reference and an id are bad input", func(t *testing.T) {
			ref := slots.BookingRef{Reference: &b.Reference, ID: &b.ID}
			_, err := m.FindBooking(ctx, admin, ref)
			wantCode(t, err, apperr.BadUserInput, "bookingId")
			ref.IDName = "id"
			_, err = m.FindBooking(ctx, admin, ref)
			wantCode(t, err, apperr.BadUserInput, "id")
		})
		t.Run("neither a reference nor an id is bad input", func(t *testing.T) {
			_, _, err := m.Cancel(ctx, admin, slots.BookingRef{})
			wantCode(t, err, apperr.BadUserInput, "reference")
		})
		f.wantSeats(t, f.slots[0].ID, 1, 2)
		f.wantSeats(t, f.slots[1].ID, 0, 1)
		if n := count(t, db, "SELECT COUNT(*) FROM bookings WHERE status = 'cancelled'"); n != 0 {
			t.Fatalf("%d bookings cancelled by refused calls", n)
		}
	})
}

func TestABookingByIDIsForAnAdminOrItsOwner(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 5, 0)
		mine := mustBook(t, m, slots.BookInput{SlotID: f.slots[0].ID, Customer: "ada", CustomerID: "sub-ada"})
		anon := mustBook(t, m, slots.BookInput{SlotID: f.slots[0].ID, Customer: "grace"})
		forbidden := apperr.E(apperr.Forbidden, "admin access denied")

		t.Run("an anonymous caller gets the admin refusal", func(t *testing.T) {
			_, err := m.FindBooking(ctx, slots.Actor{}, byID(mine.ID))
			wantCode(t, err, apperr.Unauthenticated, "")
			_, err = m.FindBooking(ctx, slots.Actor{NotAdmin: forbidden}, byID(mine.ID))
			wantCode(t, err, apperr.Forbidden, "")
			_, _, err = m.Cancel(ctx, slots.Actor{}, byID(mine.ID))
			wantCode(t, err, apperr.Unauthenticated, "")
			_, err = m.Reschedule(ctx, slots.Actor{}, slots.RescheduleInput{Booking: byID(mine.ID), SlotID: f.slots[1].ID})
			wantCode(t, err, apperr.Unauthenticated, "")
			// A missing booking reads the same: the refusal comes first.
			_, err = m.FindBooking(ctx, slots.Actor{}, byID(987654321))
			wantCode(t, err, apperr.Unauthenticated, "")
		})
		t.Run("another customer gets NOT_FOUND, as for a missing booking", func(t *testing.T) {
			for _, id := range []int64{mine.ID, anon.ID} {
				_, err := m.FindBooking(ctx, customer("sub-mallory"), byID(id))
				wantCode(t, err, apperr.NotFound, "")
				if want := fmt.Sprintf("booking %d does not exist", id); apperr.ErrorMessage(err) != want {
					t.Fatalf("message %q, want %q", apperr.ErrorMessage(err), want)
				}
				_, _, err = m.Cancel(ctx, customer("sub-mallory"), byID(id))
				wantCode(t, err, apperr.NotFound, "")
				_, err = m.Reschedule(ctx, customer("sub-mallory"), slots.RescheduleInput{Booking: byID(id), SlotID: f.slots[1].ID})
				wantCode(t, err, apperr.NotFound, "")
			}
			f.wantSeats(t, f.slots[0].ID, 2, 3)
			f.wantSeats(t, f.slots[1].ID, 0, 1)
		})
		t.Run("an admin reads any booking", func(t *testing.T) {
			for _, id := range []int64{mine.ID, anon.ID} {
				if b, err := m.FindBooking(ctx, admin, byID(id)); err != nil || b.ID != id {
					t.Fatalf("admin: %+v, %v", b, err)
				}
			}
			_, err := m.FindBooking(ctx, admin, byID(987654321))
			wantCode(t, err, apperr.NotFound, "")
		})
		t.Run("the owner reads and cancels by id", func(t *testing.T) {
			if b, err := m.FindBooking(ctx, customer("sub-ada"), byID(mine.ID)); err != nil || b.Reference != mine.Reference {
				t.Fatalf("owner: %+v, %v", b, err)
			}
			b, s, err := m.Cancel(ctx, customer("sub-ada"), byID(mine.ID))
			if err != nil || b.Status != models.BookingCancelled || s == nil || s.BookedCount != 1 {
				t.Fatalf("owner's cancel: %+v, %+v, %v", b, s, err)
			}
			f.wantSeats(t, f.slots[0].ID, 1, 4)
		})
		t.Run("a customer does not own an anonymous booking", func(t *testing.T) {
			_, err := m.FindBooking(ctx, customer("sub-ada"), byID(anon.ID))
			wantCode(t, err, apperr.NotFound, "")
		})
		t.Run("an admin cancels by id, anyone by reference", func(t *testing.T) {
			other := mustBook(t, m, slots.BookInput{SlotID: f.slots[2].ID, Customer: "lin"})
			if _, _, err := m.Cancel(ctx, admin, byID(other.ID)); err != nil {
				t.Fatal(err)
			}
			if b, _, err := m.Cancel(ctx, slots.Actor{}, byRef(anon.Reference)); err != nil || b.Status != models.BookingCancelled {
				t.Fatalf("cancel by reference: %+v, %v", b, err)
			}
			wantConsistentSeats(t, db)
		})
	})
}

func TestIdempotencyKeysAreScopedToTheirOwner(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 5, 0)
		const key = "checkout-1"
		ann := mustBook(t, m, slots.BookInput{SlotID: f.slots[0].ID, Customer: "ann", CustomerID: "sub-ann", IdempotencyKey: key})
		bea := mustBook(t, m, slots.BookInput{SlotID: f.slots[1].ID, Customer: "bea", CustomerID: "sub-bea", IdempotencyKey: key})
		anon := mustBook(t, m, slots.BookInput{SlotID: f.slots[2].ID, Customer: "cy", IdempotencyKey: key})
		if ann.ID == bea.ID || ann.ID == anon.ID || bea.ID == anon.ID {
			t.Fatalf("one key in three scopes answered bookings %d, %d, %d; want three", ann.ID, bea.ID, anon.ID)
		}
		t.Run("an owner's repeated key replays within their bookings", func(t *testing.T) {
			again := mustBook(t, m, slots.BookInput{SlotID: f.slots[0].ID, Customer: "ann", CustomerID: "sub-ann", IdempotencyKey: key})
			if again.ID != ann.ID {
				t.Fatalf("replay answered booking %d, want %d", again.ID, ann.ID)
			}
			_, _, err := m.Book(ctx, slots.BookInput{SlotID: f.slots[2].ID, Customer: "ann", CustomerID: "sub-ann", IdempotencyKey: key})
			wantCode(t, err, apperr.IdempotencyConflict, "")
		})
		t.Run("an anonymous key stays global among anonymous bookings", func(t *testing.T) {
			again := mustBook(t, m, slots.BookInput{SlotID: f.slots[2].ID, Customer: "cy", IdempotencyKey: key})
			if again.ID != anon.ID {
				t.Fatalf("replay answered booking %d, want %d", again.ID, anon.ID)
			}
			_, _, err := m.Book(ctx, slots.BookInput{SlotID: f.slots[1].ID, Customer: "dee", IdempotencyKey: key})
			wantCode(t, err, apperr.IdempotencyConflict, "")
		})
		t.Run("twenty owners racing with one key each get their own booking", func(t *testing.T) {
			ids := make([]int64, 20)
			errs := together(20, func(i int) error {
				b, _, err := m.Book(ctx, slots.BookInput{SlotID: f.slots[i%3].ID, Customer: fmt.Sprintf("racer-%d", i),
					CustomerID: fmt.Sprintf("sub-racer-%d", i), IdempotencyKey: "race"})
				if err == nil {
					ids[i] = b.ID
				}
				return err
			})
			seen := map[int64]bool{}
			for i, err := range errs {
				switch code := apperr.ErrorCode(err); {
				case err == nil:
					seen[ids[i]] = true
				case code == apperr.SlotUnavailable: // the slot was full
				default:
					t.Errorf("owner %d: %v", i, err)
				}
			}
			if n := count(t, db, "SELECT COUNT(*) FROM bookings WHERE idempotency_key = 'race'"); n != int64(len(seen)) {
				t.Fatalf("%d bookings carry the key, %d succeeded", n, len(seen))
			}
			wantConsistentSeats(t, db)
		})
	})
}

// rescheduleFixture is two providers' slots on the booking day: from's
// hold the bookings that move, to's take them.
type rescheduleFixture struct {
	from, to *bookingFixture
}

func newRescheduleFixture(t testing.TB, db *database.DB, m *slots.Manager, clk *clock, fromCapacity, toCapacity, toNotice int) rescheduleFixture {
	t.Helper()
	return rescheduleFixture{
		from: newBookingFixture(t, db, m, clk, fromCapacity, 0),
		to:   newBookingFixture(t, db, m, clk, toCapacity, toNotice),
	}
}

func TestRescheduleMovesTheBookingAndKeepsItsHistory(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		fx := newRescheduleFixture(t, db, m, clk, 2, 2, 0)
		b := mustBook(t, m, slots.BookInput{SlotID: fx.from.slots[0].ID, Customer: "ada", CustomerID: "sub-ada", IdempotencyKey: "k"})

		firstMove := bookingDay.Add(time.Minute)
		clk.Set(firstMove)
		out, err := m.Reschedule(ctx, slots.Actor{}, slots.RescheduleInput{Booking: byRef(b.Reference), SlotID: fx.to.slots[1].ID})
		if err != nil {
			t.Fatal(err)
		}
		nb := out.Booking
		if nb.ID != b.ID || nb.Reference != b.Reference || nb.SlotID == nil || *nb.SlotID != fx.to.slots[1].ID ||
			nb.ProviderID != fx.to.p.ID || !nb.StartTime.Equal(fx.to.slots[1].StartTime) || !nb.EndTime.Equal(fx.to.slots[1].EndTime) ||
			nb.Status != models.BookingConfirmed || nb.Customer != "ada" || nb.CustomerID == nil || *nb.CustomerID != "sub-ada" {
			t.Fatalf("rescheduled booking %+v", nb)
		}
		if out.Slot == nil || out.Slot.ID != fx.to.slots[1].ID || out.Slot.BookedCount != 1 ||
			out.Previous == nil || out.Previous.ID != fx.from.slots[0].ID || out.Previous.BookedCount != 0 {
			t.Fatalf("new slot %+v, previous slot %+v", out.Slot, out.Previous)
		}
		stored, err := m.Booking(ctx, b.ID)
		if err != nil || stored.Reference != b.Reference || *stored.SlotID != fx.to.slots[1].ID || !stored.StartTime.Equal(fx.to.slots[1].StartTime) ||
			stored.ProviderID != fx.to.p.ID || stored.IdempotencyKey == nil || *stored.IdempotencyKey != "k" {
			t.Fatalf("stored booking %+v, %v", stored, err)
		}
		fx.from.wantSeats(t, fx.from.slots[0].ID, 0, 3)
		fx.to.wantSeats(t, fx.to.slots[1].ID, 1, 2)

		secondMove := bookingDay.Add(2 * time.Minute)
		clk.Set(secondMove)
		if _, err := m.Reschedule(ctx, customer("sub-ada"), slots.RescheduleInput{Booking: byID(b.ID), SlotID: fx.from.slots[2].ID}); err != nil {
			t.Fatalf("the owner's reschedule by id: %v", err)
		}
		clk.Set(bookingDay)
		if _, err := m.Reschedule(ctx, admin, slots.RescheduleInput{Booking: byID(b.ID), SlotID: fx.from.slots[1].ID}); err != nil {
			t.Fatalf("an admin's reschedule by id: %v", err)
		}
		moves, err := m.BookingMoves(ctx, []int64{b.ID, 987654321})
		if err != nil {
			t.Fatal(err)
		}
		got := moves[b.ID]
		want := []struct {
			slot models.TimeSlot
			at   time.Time
		}{{fx.from.slots[0], firstMove}, {fx.to.slots[1], secondMove}, {fx.from.slots[2], bookingDay}}
		if len(got) != len(want) || len(moves) != 1 {
			t.Fatalf("moves %+v, want %d of booking %d", moves, len(want), b.ID)
		}
		for i, w := range want {
			g := got[i]
			if g.SlotID == nil || *g.SlotID != w.slot.ID || !g.StartTime.Equal(w.slot.StartTime) || !g.EndTime.Equal(w.slot.EndTime) || !g.MovedAt.Equal(w.at) {
				t.Fatalf("move %d: %+v, want from slot %d at %s", i, g, w.slot.ID, w.at)
			}
		}
		wantConsistentSeats(t, db)

		t.Run("a moved booking cancels from its new slot", func(t *testing.T) {
			if _, _, err := m.Cancel(ctx, slots.Actor{}, byRef(b.Reference)); err != nil {
				t.Fatal(err)
			}
			fx.from.wantSeats(t, fx.from.slots[1].ID, 0, 3)
			wantConsistentSeats(t, db)
		})
		t.Run("a move's slot cleaned up leaves its times", func(t *testing.T) {
			clk.Set(bookingDay.AddDate(0, 0, 40))
			defer clk.Set(bookingDay)
			if _, err := m.Cleanup(ctx, 30, nil); err != nil {
				t.Fatal(err)
			}
			moves, err := m.BookingMoves(ctx, []int64{b.ID})
			if err != nil || len(moves[b.ID]) != 3 || moves[b.ID][0].SlotID != nil || !moves[b.ID][0].StartTime.Equal(fx.from.slots[0].StartTime) {
				t.Fatalf("moves after cleanup: %+v, %v", moves, err)
			}
		})
	})
}

func TestARefusedRescheduleChangesNothing(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		fx := newRescheduleFixture(t, db, m, clk, 3, 1, 0)
		notice := newBookingFixture(t, db, m, clk, 1, 240)
		inactive := newBookingFixture(t, db, m, clk, 1, 0)
		if _, err := m.UpdateProvider(ctx, inactive.p.ID, models.ProviderInput{Name: inactive.p.Name, TimeZone: "UTC", SlotMinutes: 60,
			Active: ptr(false), WorkingHours: everyDay("09:00", "12:00")}); err != nil {
			t.Fatal(err)
		}
		ada := mustBook(t, m, slots.BookInput{SlotID: fx.from.slots[1].ID, Customer: "ada"})
		mustBook(t, m, slots.BookInput{SlotID: fx.to.slots[0].ID, Customer: "full"}) // fills it
		mustBook(t, m, slots.BookInput{SlotID: fx.from.slots[2].ID, Customer: "ada"})
		gone := mustBook(t, m, slots.BookInput{SlotID: fx.from.slots[1].ID, Customer: "gone"})
		if _, _, err := m.Cancel(ctx, admin, byID(gone.ID)); err != nil {
			t.Fatal(err)
		}
		early := mustBook(t, m, slots.BookInput{SlotID: fx.from.slots[0].ID, Customer: "early"})

		type state struct {
			Seats, Versions, Moves int64
			Slot                   int64
		}
		read := func() state {
			return state{
				Seats:    count(t, db, "SELECT COALESCE(SUM(booked_count), 0) FROM time_slots"),
				Versions: count(t, db, "SELECT COALESCE(SUM(version), 0) FROM time_slots"),
				Moves:    count(t, db, "SELECT COUNT(*) FROM booking_moves"),
				Slot:     count(t, db, "SELECT slot_id FROM bookings WHERE id = ?", ada.ID),
			}
		}
		before := read()
		for _, tc := range []struct {
			name    string
			now     time.Time
			booking slots.BookingRef
			slot    int64
			code    apperr.Code
			field   string
		}{
			{"a full slot is unavailable", bookingDay, byRef(ada.Reference), fx.to.slots[0].ID, apperr.SlotUnavailable, ""},
			{"a started slot is in the past", fx.to.slots[1].StartTime.Add(-time.Minute), byRef(early.Reference), fx.to.slots[0].ID, apperr.SlotInPast, ""},
			{"a slot inside the minimum notice is too soon", bookingDay, byRef(ada.Reference), notice.slots[0].ID, apperr.SlotTooSoon, ""},
			{"an inactive provider's slot is unavailable", bookingDay, byRef(ada.Reference), inactive.slots[0].ID, apperr.SlotUnavailable, ""},
			{"a slot where the customer holds a seat is unavailable", bookingDay, byRef(ada.Reference), fx.from.slots[2].ID, apperr.SlotUnavailable, ""},
			{"a missing slot is not found", bookingDay, byRef(ada.Reference), 987654321, apperr.NotFound, ""},
			{"the booking's own slot is bad input", bookingDay, byRef(ada.Reference), fx.from.slots[1].ID, apperr.BadUserInput, "slotId"},
			{"a non-positive slot id is bad input", bookingDay, byRef(ada.Reference), 0, apperr.BadUserInput, "slotId"},
			{"a cancelled booking is bad input", bookingDay, byRef(gone.Reference), fx.to.slots[1].ID, apperr.BadUserInput, "reference"},
			{"a cancelled booking by id names the id", bookingDay, byID(gone.ID), fx.to.slots[1].ID, apperr.BadUserInput, "bookingId"},
			{"a booking whose slot started is in the past", fx.from.slots[0].StartTime, byRef(early.Reference), fx.to.slots[2].ID, apperr.SlotInPast, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				clk.Set(tc.now)
				defer clk.Set(bookingDay)
				_, err := m.Reschedule(ctx, admin, slots.RescheduleInput{Booking: tc.booking, SlotID: tc.slot})
				wantCode(t, err, tc.code, tc.field)
				if after := read(); after != before {
					t.Fatalf("the refusal changed %+v into %+v", before, after)
				}
			})
		}
		wantConsistentSeats(t, db)
	})
}

func TestConcurrentReschedulesIntoOneSlotFillItExactlyToCapacity(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		fx := newRescheduleFixture(t, db, m, clk, 200, 3, 0)
		if db.Dialect == database.Postgres {
			db.SQL().SetMaxOpenConns(20) // as TestConcurrentBookingsFillASlotExactlyToCapacity
		}
		const n = 200
		refs := make([]string, n)
		for i := range n {
			// Each booking in one of the first provider's three slots.
			refs[i] = mustBook(t, m, slots.BookInput{SlotID: fx.from.slots[i%3].ID, Customer: fmt.Sprintf("mover-%03d", i)}).Reference
		}
		target := fx.to.slots[1].ID
		errs := together(n, func(i int) error {
			out, err := m.Reschedule(ctx, slots.Actor{}, slots.RescheduleInput{Booking: byRef(refs[i]), SlotID: target})
			if err == nil && (out.Slot.ID != target || out.Slot.BookedCount < 1 || out.Slot.BookedCount > 3) {
				return fmt.Errorf("reschedule answered slot %+v", out.Slot)
			}
			return err
		})
		moved := 0
		for i, err := range errs {
			switch code := apperr.ErrorCode(err); {
			case err == nil:
				moved++
			case code == apperr.SlotUnavailable:
			default:
				t.Errorf("mover %d: %v (code %s)", i, err, code)
			}
		}
		if moved != 3 {
			t.Fatalf("%d reschedules succeeded, want exactly 3", moved)
		}
		fx.to.wantSeats(t, target, 3, 4)
		if n := count(t, db, "SELECT COUNT(*) FROM booking_moves"); n != 3 {
			t.Fatalf("%d moves recorded, want 3", n)
		}
		if left := count(t, db, "SELECT COALESCE(SUM(booked_count), 0) FROM time_slots WHERE provider_id = ?", fx.from.p.ID); left != n-3 {
			t.Fatalf("the first provider's slots hold %d seats, want %d", left, n-3)
		}
		wantConsistentSeats(t, db)
	})
}

// Cancelling a booking while it is being moved leaves every count true,
// whichever comes first.
func TestCancelAndRescheduleOfOneBookingAtOnceKeepTheCounts(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		fx := newRescheduleFixture(t, db, m, clk, 50, 50, 0)
		const n = 20
		refs := make([]string, n)
		for i := range n {
			refs[i] = mustBook(t, m, slots.BookInput{SlotID: fx.from.slots[0].ID, Customer: fmt.Sprintf("c%02d", i)}).Reference
		}
		errs := together(2*n, func(i int) error {
			if i%2 == 0 {
				_, _, err := m.Cancel(ctx, slots.Actor{}, byRef(refs[i/2]))
				return err
			}
			_, err := m.Reschedule(ctx, slots.Actor{}, slots.RescheduleInput{Booking: byRef(refs[i/2]), SlotID: fx.to.slots[0].ID})
			if apperr.ErrorCode(err) == apperr.BadUserInput { // cancelled first
				return nil
			}
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("call %d: %v", i, err)
			}
		}
		if c := count(t, db, "SELECT COUNT(*) FROM bookings WHERE status = 'confirmed'"); c != 0 {
			t.Fatalf("%d bookings still confirmed after every one was cancelled", c)
		}
		wantConsistentSeats(t, db)
	})
}

func TestAdminsListBookingsByEveryFilter(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		a := newBookingFixture(t, db, m, clk, 5, 0)
		b := newBookingFixture(t, db, m, clk, 5, 0)
		ann1 := mustBook(t, m, slots.BookInput{SlotID: a.slots[0].ID, Customer: "Ann", CustomerID: "sub-ann"})
		bob := mustBook(t, m, slots.BookInput{SlotID: a.slots[0].ID, Customer: "Bob"})
		ann2 := mustBook(t, m, slots.BookInput{SlotID: b.slots[1].ID, Customer: "Ann", CustomerID: "sub-ann"})
		cy := mustBook(t, m, slots.BookInput{SlotID: a.slots[2].ID, Customer: "Cy"})
		ann3 := mustBook(t, m, slots.BookInput{SlotID: b.slots[2].ID, Customer: "Ann"})
		if _, _, err := m.Cancel(ctx, admin, byID(cy.ID)); err != nil {
			t.Fatal(err)
		}
		ids := func(p *slots.BookingPage) []int64 {
			out := []int64{}
			for _, x := range p.Bookings {
				out = append(out, x.ID)
			}
			return out
		}
		confirmed, cancelled := models.BookingConfirmed, models.BookingCancelled
		ten := slots.PageRequest{First: ptr(10)}
		at10 := a.slots[1].StartTime
		for _, tc := range []struct {
			name string
			f    slots.BookingFilter
			want []int64
		}{
			{"no filter lists every booking in (startTime, id) order", slots.BookingFilter{}, []int64{ann1.ID, bob.ID, ann2.ID, cy.ID, ann3.ID}},
			{"by provider", slots.BookingFilter{ProviderID: &b.p.ID}, []int64{ann2.ID, ann3.ID}},
			{"by slot", slots.BookingFilter{SlotID: &a.slots[0].ID}, []int64{ann1.ID, bob.ID}},
			{"confirmed only", slots.BookingFilter{Status: &confirmed}, []int64{ann1.ID, bob.ID, ann2.ID, ann3.ID}},
			{"cancelled only", slots.BookingFilter{Status: &cancelled}, []int64{cy.ID}},
			{"from an instant on", slots.BookingFilter{From: &at10}, []int64{ann2.ID, cy.ID, ann3.ID}},
			{"before an instant", slots.BookingFilter{To: &at10}, []int64{ann1.ID, bob.ID}},
			{"by customer name", slots.BookingFilter{Customer: ptr(" Ann ")}, []int64{ann1.ID, ann2.ID, ann3.ID}},
			{"by owner", slots.BookingFilter{CustomerID: ptr("sub-ann")}, []int64{ann1.ID, ann2.ID}},
			{"conditions together", slots.BookingFilter{ProviderID: &a.p.ID, Customer: ptr("Ann"), Status: &confirmed}, []int64{ann1.ID}},
			{"nothing matches", slots.BookingFilter{Customer: ptr("Nobody")}, []int64{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p, err := m.ListBookings(ctx, tc.f, ten)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(p); fmt.Sprint(got) != fmt.Sprint(tc.want) || p.HasNextPage || p.HasPreviousPage {
					t.Fatalf("bookings %v (next %v, previous %v), want %v", got, p.HasNextPage, p.HasPreviousPage, tc.want)
				}
			})
		}
		t.Run("pages follow each other by cursor", func(t *testing.T) {
			var got []int64
			var after *string
			for range 10 {
				p, err := m.ListBookings(ctx, slots.BookingFilter{}, slots.PageRequest{First: ptr(2), After: after})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids(p)...)
				if p.HasPreviousPage != (after != nil) {
					t.Fatalf("page after %v: hasPreviousPage %v", after, p.HasPreviousPage)
				}
				if !p.HasNextPage {
					break
				}
				c := p.Cursor(len(p.Bookings) - 1)
				after = &c
			}
			if want := []int64{ann1.ID, bob.ID, ann2.ID, cy.ID, ann3.ID}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("paged %v, want %v", got, want)
			}
			p, err := m.ListBookings(ctx, slots.BookingFilter{}, slots.PageRequest{Last: ptr(2), Before: ptr(slots.EncodeBookingCursor(slots.SlotKey{Start: ann3.StartTime, ID: ann3.ID}))})
			if err != nil || fmt.Sprint(ids(p)) != fmt.Sprint([]int64{ann2.ID, cy.ID}) || !p.HasNextPage || !p.HasPreviousPage {
				t.Fatalf("backward page: %v, %+v", err, p)
			}
		})
		t.Run("bad filters and cursors name their argument", func(t *testing.T) {
			slotCursor := slots.EncodeSlotCursor(slots.SlotKey{Start: at10, ID: 1})
			status := models.BookingStatus("lost")
			for _, tc := range []struct {
				f     slots.BookingFilter
				req   slots.PageRequest
				field string
			}{
				{slots.BookingFilter{ProviderID: ptr(int64(0))}, ten, "providerId"},
				{slots.BookingFilter{SlotID: ptr(int64(-1))}, ten, "slotId"},
				{slots.BookingFilter{Status: &status}, ten, "status"},
				{slots.BookingFilter{From: &at10, To: &at10}, ten, "to"},
				{slots.BookingFilter{Customer: ptr(" ")}, ten, "customer"},
				{slots.BookingFilter{Customer: ptr(strings.Repeat("x", 201))}, ten, "customer"},
				{slots.BookingFilter{CustomerID: ptr("")}, ten, "customerId"},
				{slots.BookingFilter{}, slots.PageRequest{First: ptr(101)}, "first"},
				{slots.BookingFilter{}, slots.PageRequest{After: &slotCursor}, "after"},
			} {
				_, err := m.ListBookings(ctx, tc.f, tc.req)
				wantCode(t, err, apperr.BadUserInput, tc.field)
			}
		})
		t.Run("a customer lists only their own bookings", func(t *testing.T) {
			p, err := m.MyBookings(ctx, "sub-ann", slots.MyBookingsFilter{}, ten)
			if err != nil || fmt.Sprint(ids(p)) != fmt.Sprint([]int64{ann1.ID, ann2.ID}) {
				t.Fatalf("myBookings: %v, %v", err, p)
			}
			p, err = m.MyBookings(ctx, "sub-ann", slots.MyBookingsFilter{From: &at10, Status: &confirmed}, ten)
			if err != nil || fmt.Sprint(ids(p)) != fmt.Sprint([]int64{ann2.ID}) {
				t.Fatalf("myBookings from 10:00: %v, %v", err, p)
			}
			p, err = m.MyBookings(ctx, "sub-nobody", slots.MyBookingsFilter{}, ten)
			if err != nil || len(p.Bookings) != 0 {
				t.Fatalf("a customer without bookings: %v, %v", err, p)
			}
			_, err = m.MyBookings(ctx, "", slots.MyBookingsFilter{}, ten)
			wantCode(t, err, apperr.Unauthenticated, "")
		})
	})
}

func TestDeletingACustomersDataErasesOnlyTheirPersonalData(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 5, 0)
		ann1 := mustBook(t, m, slots.BookInput{SlotID: f.slots[0].ID, Customer: "Ann", CustomerID: "sub-ann", IdempotencyKey: "k1"})
		ann2 := mustBook(t, m, slots.BookInput{SlotID: f.slots[1].ID, Customer: "Ann B.", CustomerID: "sub-ann", IdempotencyKey: "k2"})
		bob := mustBook(t, m, slots.BookInput{SlotID: f.slots[0].ID, Customer: "Bob", IdempotencyKey: "k3"})
		ann3 := mustBook(t, m, slots.BookInput{SlotID: f.slots[2].ID, Customer: "Ann"})
		if _, _, err := m.Cancel(ctx, admin, byID(ann2.ID)); err != nil {
			t.Fatal(err)
		}
		seats := count(t, db, "SELECT SUM(booked_count) FROM time_slots")

		for _, tc := range []struct {
			name              string
			customerID, named *string
			field             string
		}{
			{"neither", nil, nil, "customerId"},
			{"both", ptr("sub-ann"), ptr("Ann"), "customer"},
			{"an empty customer id", ptr(""), nil, "customerId"},
			{"a blank name", nil, ptr("  "), "customer"},
		} {
			_, err := m.DeleteCustomerData(ctx, tc.customerID, tc.named)
			wantCode(t, err, apperr.BadUserInput, tc.field)
		}

		n, err := m.DeleteCustomerData(ctx, ptr("sub-ann"), nil)
		if err != nil || n != 2 {
			t.Fatalf("erase by owner: %d, %v; want 2", n, err)
		}
		for _, id := range []int64{ann1.ID, ann2.ID} {
			b, err := m.Booking(ctx, id)
			if err != nil || b.Customer != fmt.Sprintf("erased-%d", id) || b.CustomerID != nil || b.IdempotencyKey != nil {
				t.Fatalf("erased booking %+v, %v", b, err)
			}
		}
		if b, _ := m.Booking(ctx, ann1.ID); b.Status != models.BookingConfirmed || *b.SlotID != f.slots[0].ID || !b.StartTime.Equal(f.slots[0].StartTime) || b.Reference != ann1.Reference {
			t.Fatalf("erasing changed the booking itself: %+v", b)
		}
		n, err = m.DeleteCustomerData(ctx, nil, ptr(" Ann "))
		if err != nil || n != 1 {
			t.Fatalf("erase by name: %d, %v; want 1 (ann3)", n, err)
		}
		if b, _ := m.Booking(ctx, ann3.ID); b.Customer != fmt.Sprintf("erased-%d", ann3.ID) {
			t.Fatalf("booking %+v kept its name", b)
		}
		if b, _ := m.Booking(ctx, bob.ID); b.Customer != "Bob" || b.IdempotencyKey == nil {
			t.Fatalf("another customer's booking changed: %+v", b)
		}
		if n, err := m.DeleteCustomerData(ctx, ptr("sub-ann"), nil); err != nil || n != 0 {
			t.Fatalf("erasing again: %d, %v; want 0", n, err)
		}
		if got := count(t, db, "SELECT SUM(booked_count) FROM time_slots"); got != seats {
			t.Fatalf("seats went from %d to %d", seats, got)
		}
		if got := count(t, db, "SELECT COUNT(*) FROM bookings WHERE customer LIKE '%Ann%' OR customer_id = 'sub-ann'"); got != 0 {
			t.Fatalf("%d bookings still carry the customer's data", got)
		}
		wantConsistentSeats(t, db)
		// The erased owner's key is free again; the owner's new booking is new.
		again := mustBook(t, m, slots.BookInput{SlotID: f.slots[2].ID, Customer: "Ann", CustomerID: "sub-ann", IdempotencyKey: "k1"})
		if again.ID == ann1.ID {
			t.Fatal("the erased booking was replayed")
		}
	})
}

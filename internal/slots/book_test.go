package slots_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// bookingDay is the Monday the booking tests stand on: the clock reads 06:00
// UTC, and each provider has slots at 09:00, 10:00 and 11:00 UTC.
var bookingDay = time.Date(2030, 1, 7, 6, 0, 0, 0, time.UTC)

type bookingFixture struct {
	db    *database.DB
	m     *slots.Manager
	clk   *clock
	slots []models.TimeSlot // 09:00, 10:00, 11:00
	p     *models.Provider
}

func newBookingFixture(t testing.TB, db *database.DB, m *slots.Manager, clk *clock, capacity, minNotice int) *bookingFixture {
	t.Helper()
	p := mustProvider(t, m, models.ProviderInput{Name: fmt.Sprintf("Bookable cap %d", capacity), TimeZone: "UTC", SlotMinutes: 60,
		Capacity: ptr(capacity), MinNoticeMinutes: ptr(minNotice), WorkingHours: everyDay("09:00", "12:00")})
	mustGenerate(t, m, slots.GenerateInput{DaysAhead: 1, ProviderIDs: []int64{p.ID}})
	rows := providerSlots(t, db, p.ID)
	if len(rows) != 3 {
		t.Fatalf("fixture has %d slots, want 3", len(rows))
	}
	return &bookingFixture{db: db, m: m, clk: clk, slots: rows, p: p}
}

// slot re-reads a slot from the table.
func (f *bookingFixture) slot(t testing.TB, id int64) models.TimeSlot {
	t.Helper()
	var s models.TimeSlot
	if err := f.db.First(&s, id).Error; err != nil {
		t.Fatal(err)
	}
	return s
}

// wantSeats checks a slot's seat counts, status and version, and that the
// confirmed bookings in the table agree with them.
func (f *bookingFixture) wantSeats(t testing.TB, id int64, booked int, version int64) {
	t.Helper()
	s := f.slot(t, id)
	status := models.SlotAvailable
	if booked == s.Capacity {
		status = models.SlotBooked
	}
	if s.BookedCount != booked || s.Status != status || s.Version != version {
		t.Fatalf("slot %d: bookedCount %d, status %s, version %d; want %d, %s, %d",
			id, s.BookedCount, s.Status, s.Version, booked, status, version)
	}
	if n := count(t, f.db, "SELECT COUNT(*) FROM bookings WHERE slot_id = ? AND status = 'confirmed'", id); n != int64(booked) {
		t.Fatalf("slot %d has %d confirmed bookings, bookedCount says %d", id, n, booked)
	}
}

// together runs fn in n goroutines released at the same instant and
// answers their errors by index.
func together(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func TestConcurrentBookingsFillASlotExactlyToCapacity(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		for _, capacity := range []int{1, 5} {
			t.Run(fmt.Sprintf("200 customers racing for %d seats", capacity), func(t *testing.T) {
				var mu sync.Mutex
				outcomes := map[apperr.Code]int{}
				m, clk := newManager(db, bookingDay, slots.WithHooks(slots.Hooks{BookingOutcome: func(c apperr.Code) {
					mu.Lock()
					outcomes[c]++
					mu.Unlock()
				}}))
				f := newBookingFixture(t, db, m, clk, capacity, 0)
				if db.Dialect == database.Postgres {
					// The server's own pool size: the racers queue for
					// connections, and PostgreSQL's 100 are shared with the
					// other suites running beside this one.
					db.SQL().SetMaxOpenConns(20)
				}
				target := f.slots[1].ID
				const n = 200
				ids := make([]int64, n)
				errs := together(n, func(i int) error {
					b, s, err := m.Book(ctx, slots.BookInput{SlotID: target, Customer: fmt.Sprintf("racer-%03d", i)})
					if err == nil {
						ids[i] = b.ID
						if s == nil || s.ID != target || s.BookedCount < 1 || s.BookedCount > capacity {
							return fmt.Errorf("booking answered slot %+v", s)
						}
					}
					return err
				})
				won := map[int64]bool{}
				for i, err := range errs {
					switch code := apperr.ErrorCode(err); {
					case err == nil:
						won[ids[i]] = true
					case code == apperr.SlotUnavailable:
					default:
						t.Errorf("racer %d: %v (code %s)", i, err, code)
					}
					if err != nil && strings.Contains(strings.ToLower(err.Error()), "locked") {
						t.Errorf("racer %d saw the database locked: %v", i, err)
					}
				}
				if len(won) != capacity {
					t.Fatalf("%d distinct bookings succeeded, want exactly %d", len(won), capacity)
				}
				if outcomes[""] != capacity || outcomes[apperr.SlotUnavailable] != n-capacity || len(outcomes) != 2 {
					t.Fatalf("booking outcome hook saw %v, want %d successes and %d SLOT_UNAVAILABLE", outcomes, capacity, n-capacity)
				}
				f.wantSeats(t, target, capacity, int64(1+capacity))
				f.wantSeats(t, f.slots[0].ID, 0, 1) // neighbours untouched
				f.wantSeats(t, f.slots[2].ID, 0, 1)
			})
		}
	})
}

func TestBookingRefusesWithThePreciseReason(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		one := newBookingFixture(t, db, m, clk, 1, 0)
		notice := newBookingFixture(t, db, m, clk, 1, 120)
		if _, _, err := m.Book(ctx, slots.BookInput{SlotID: one.slots[0].ID, Customer: "first"}); err != nil {
			t.Fatalf("first booking: %v", err)
		}
		cases := []struct {
			name  string
			now   time.Time
			in    slots.BookInput
			code  apperr.Code
			field string
		}{
			{"a full slot is unavailable", bookingDay, slots.BookInput{SlotID: one.slots[0].ID, Customer: "second"}, apperr.SlotUnavailable, ""},
			{"a slot starting now is in the past", one.slots[1].StartTime, slots.BookInput{SlotID: one.slots[1].ID, Customer: "late"}, apperr.SlotInPast, ""},
			{"a slot that has ended is in the past", one.slots[1].EndTime.Add(time.Hour), slots.BookInput{SlotID: one.slots[1].ID, Customer: "late"}, apperr.SlotInPast, ""},
			{"a slot inside the minimum notice is too soon", notice.slots[0].StartTime.Add(-119 * time.Minute), slots.BookInput{SlotID: notice.slots[0].ID, Customer: "hasty"}, apperr.SlotTooSoon, ""},
			{"a missing slot is not found", bookingDay, slots.BookInput{SlotID: 987654321, Customer: "ghost"}, apperr.NotFound, ""},
			{"an empty customer is bad input", bookingDay, slots.BookInput{SlotID: one.slots[2].ID, Customer: "  "}, apperr.BadUserInput, "customer"},
			{"an overlong customer is bad input", bookingDay, slots.BookInput{SlotID: one.slots[2].ID, Customer: strings.Repeat("x", 201)}, apperr.BadUserInput, "customer"},
			{"a non-positive slot id is bad input", bookingDay, slots.BookInput{SlotID: 0, Customer: "zero"}, apperr.BadUserInput, "slotId"},
			{"an overlong idempotency key is bad input", bookingDay, slots.BookInput{SlotID: one.slots[2].ID, Customer: "k", IdempotencyKey: strings.Repeat("k", 201)}, apperr.BadUserInput, "idempotencyKey"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				clk.Set(tc.now)
				defer clk.Set(bookingDay)
				_, _, err := m.Book(ctx, tc.in)
				wantCode(t, err, tc.code, tc.field)
			})
		}
		one.wantSeats(t, one.slots[0].ID, 1, 2)
		one.wantSeats(t, one.slots[1].ID, 0, 1)
		one.wantSeats(t, one.slots[2].ID, 0, 1)
		notice.wantSeats(t, notice.slots[0].ID, 0, 1)

		t.Run("a slot exactly at the minimum notice can be booked", func(t *testing.T) {
			clk.Set(notice.slots[0].StartTime.Add(-120 * time.Minute))
			defer clk.Set(bookingDay)
			if _, _, err := m.Book(ctx, slots.BookInput{SlotID: notice.slots[0].ID, Customer: "punctual"}); err != nil {
				t.Fatal(err)
			}
			notice.wantSeats(t, notice.slots[0].ID, 1, 2)
		})
		t.Run("an inactive provider's slot is unavailable", func(t *testing.T) {
			in := models.ProviderInput{Name: one.p.Name, TimeZone: "UTC", SlotMinutes: 60, Active: ptr(false),
				WorkingHours: everyDay("09:00", "12:00")}
			if _, err := m.UpdateProvider(ctx, one.p.ID, in); err != nil {
				t.Fatal(err)
			}
			_, _, err := m.Book(ctx, slots.BookInput{SlotID: one.slots[2].ID, Customer: "closed"})
			wantCode(t, err, apperr.SlotUnavailable, "")
			one.wantSeats(t, one.slots[2].ID, 0, 1)
		})
	})
}

func TestOneCustomerHoldsAtMostOneSeatOfASlot(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 5, 0)
		t.Run("a second booking in turn is unavailable", func(t *testing.T) {
			id := f.slots[0].ID
			if _, _, err := m.Book(ctx, slots.BookInput{SlotID: id, Customer: "ada"}); err != nil {
				t.Fatal(err)
			}
			_, _, err := m.Book(ctx, slots.BookInput{SlotID: id, Customer: "ada"})
			wantCode(t, err, apperr.SlotUnavailable, "")
			_, _, err = m.Book(ctx, slots.BookInput{SlotID: id, Customer: "ada", IdempotencyKey: "ada-again"})
			wantCode(t, err, apperr.SlotUnavailable, "")
			f.wantSeats(t, id, 1, 2)
		})
		// One customer racing for a slot: one seat, every other attempt
		// SLOT_UNAVAILABLE, with or without an idempotency key of its own.
		for i, keyed := range []bool{false, true} {
			t.Run(fmt.Sprintf("twenty bookings at once (own keys: %v) give one seat", keyed), func(t *testing.T) {
				id := f.slots[1+i].ID
				errs := together(20, func(n int) error {
					in := slots.BookInput{SlotID: id, Customer: "grace"}
					if keyed {
						in.IdempotencyKey = fmt.Sprintf("grace-%d", n)
					}
					_, _, err := m.Book(ctx, in)
					return err
				})
				ok := 0
				for n, err := range errs {
					switch apperr.ErrorCode(err) {
					case "":
						ok++
					case apperr.SlotUnavailable:
					default:
						t.Errorf("attempt %d: %v", n, err)
					}
				}
				if ok != 1 {
					t.Fatalf("%d attempts succeeded, want 1", ok)
				}
				f.wantSeats(t, id, 1, 2)
			})
		}
	})
}

func TestAnIdempotencyKeyReplaysItsBooking(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		five := newBookingFixture(t, db, m, clk, 5, 0)
		one := newBookingFixture(t, db, m, clk, 1, 0)

		t.Run("the same key and input answer the same booking without a second seat", func(t *testing.T) {
			in := slots.BookInput{SlotID: five.slots[0].ID, Customer: "ada", IdempotencyKey: "req-1"}
			b1, _, err := m.Book(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			b2, s2, err := m.Book(ctx, in)
			if err != nil || b2.ID != b1.ID || s2 == nil || s2.BookedCount != 1 {
				t.Fatalf("replay: booking %+v, slot %+v, %v; want booking %d", b2, s2, err, b1.ID)
			}
			five.wantSeats(t, in.SlotID, 1, 2)
		})
		t.Run("the same key with another customer is a conflict", func(t *testing.T) {
			_, _, err := m.Book(ctx, slots.BookInput{SlotID: five.slots[0].ID, Customer: "mallory", IdempotencyKey: "req-1"})
			wantCode(t, err, apperr.IdempotencyConflict, "")
		})
		t.Run("the same key with another slot is a conflict", func(t *testing.T) {
			_, _, err := m.Book(ctx, slots.BookInput{SlotID: five.slots[1].ID, Customer: "ada", IdempotencyKey: "req-1"})
			wantCode(t, err, apperr.IdempotencyConflict, "")
			five.wantSeats(t, five.slots[1].ID, 0, 1)
		})
		t.Run("the replay of a full slot's booking still answers it", func(t *testing.T) {
			in := slots.BookInput{SlotID: one.slots[0].ID, Customer: "lin", IdempotencyKey: "req-full"}
			b1, _, err := m.Book(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			b2, _, err := m.Book(ctx, in)
			if err != nil || b2.ID != b1.ID {
				t.Fatalf("replay on a full slot: %+v, %v", b2, err)
			}
		})
		for _, fx := range []struct {
			name string
			f    *bookingFixture
		}{{"five seats", five}, {"one seat", one}} {
			t.Run("twenty attempts at once with one key create one booking on "+fx.name, func(t *testing.T) {
				in := slots.BookInput{SlotID: fx.f.slots[2].ID, Customer: "joan", IdempotencyKey: "req-race-" + fx.name}
				ids := make([]int64, 20)
				errs := together(20, func(i int) error {
					b, _, err := m.Book(ctx, in)
					if err == nil {
						ids[i] = b.ID
					}
					return err
				})
				for i, err := range errs {
					if err != nil {
						t.Errorf("attempt %d: %v", i, err)
					} else if ids[i] != ids[0] {
						t.Errorf("attempt %d answered booking %d, attempt 0 booking %d", i, ids[i], ids[0])
					}
				}
				if n := count(t, db, "SELECT COUNT(*) FROM bookings WHERE idempotency_key = ?", in.IdempotencyKey); n != 1 {
					t.Fatalf("%d bookings carry the key, want 1", n)
				}
				fx.f.wantSeats(t, in.SlotID, 1, 2)
			})
		}
	})
}

func TestCancellingFreesTheSeat(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 1, 0)
		id := f.slots[0].ID

		ada, _, err := m.Book(ctx, slots.BookInput{SlotID: id, Customer: "ada"})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = m.Book(ctx, slots.BookInput{SlotID: id, Customer: "grace"})
		wantCode(t, err, apperr.SlotUnavailable, "")

		cancelAt := bookingDay.Add(5 * time.Minute)
		clk.Set(cancelAt)
		b, s, err := m.Cancel(ctx, admin, byID(ada.ID))
		if err != nil {
			t.Fatalf("cancel: %v", err)
		}
		if b.Status != models.BookingCancelled || b.CancelledAt == nil || !b.CancelledAt.Equal(cancelAt) || s == nil || s.BookedCount != 0 {
			t.Fatalf("cancel answered booking %+v, slot %+v", b, s)
		}
		f.wantSeats(t, id, 0, 3)
		stored, err := m.Booking(ctx, ada.ID)
		if err != nil || stored.Status != models.BookingCancelled || stored.CancelledAt == nil || !stored.CancelledAt.Equal(cancelAt) {
			t.Fatalf("stored booking after cancel: %+v, %v", stored, err)
		}

		if _, _, err := m.Book(ctx, slots.BookInput{SlotID: id, Customer: "grace"}); err != nil {
			t.Fatalf("booking the freed seat: %v", err)
		}
		f.wantSeats(t, id, 1, 4)

		again, _, err := m.Cancel(ctx, admin, byID(ada.ID))
		if err != nil || again.Status != models.BookingCancelled || !again.CancelledAt.Equal(cancelAt) {
			t.Fatalf("second cancel: %+v, %v; want the cancelled booking unchanged", again, err)
		}
		f.wantSeats(t, id, 1, 4) // grace keeps her seat

		_, _, err = m.Cancel(ctx, admin, byID(987654321))
		wantCode(t, err, apperr.NotFound, "")
		_, _, err = m.Cancel(ctx, admin, byID(0))
		wantCode(t, err, apperr.BadUserInput, "bookingId")

		t.Run("a cancelled customer can book the slot again", func(t *testing.T) {
			two := newBookingFixture(t, db, m, clk, 2, 0)
			sid := two.slots[0].ID
			b, _, err := m.Book(ctx, slots.BookInput{SlotID: sid, Customer: "ada"})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.Cancel(ctx, admin, byID(b.ID)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.Book(ctx, slots.BookInput{SlotID: sid, Customer: "ada"}); err != nil {
				t.Fatalf("rebooking after cancelling: %v", err)
			}
			two.wantSeats(t, sid, 1, 4)
		})

		t.Run("a booking whose slot has started cannot be cancelled", func(t *testing.T) {
			late := f.slots[1].ID
			b, _, err := m.Book(ctx, slots.BookInput{SlotID: late, Customer: "lin"})
			if err != nil {
				t.Fatal(err)
			}
			clk.Set(f.slots[1].StartTime)
			defer clk.Set(bookingDay)
			_, _, err = m.Cancel(ctx, admin, byID(b.ID))
			wantCode(t, err, apperr.SlotInPast, "")
			f.wantSeats(t, late, 1, 2)
		})

		t.Run("twenty cancels at once free one seat", func(t *testing.T) {
			three := newBookingFixture(t, db, m, clk, 3, 0)
			sid := three.slots[0].ID
			var first int64
			for i := range 3 {
				b, _, err := m.Book(ctx, slots.BookInput{SlotID: sid, Customer: fmt.Sprintf("c%d", i)})
				if err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = b.ID
				}
			}
			for i, err := range together(20, func(int) error { _, _, err := m.Cancel(ctx, admin, byID(first)); return err }) {
				if err != nil {
					t.Errorf("cancel %d: %v", i, err)
				}
			}
			three.wantSeats(t, sid, 2, 5)
		})
	})
}

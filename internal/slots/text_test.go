package slots_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// hostileTexts are values no text input may store: PostgreSQL refuses the
// NUL byte and invalid UTF-8 (SQLSTATE 22021) where SQLite would store
// them, and control characters have no place in a name or key.
var hostileTexts = map[string]string{
	"a NUL byte":                 "ann\x00smith",
	"a lone NUL":                 "\x00",
	"an invalid byte":            "ann\xff",
	"a truncated UTF-8 sequence": "ann\xc3",
	"an overlong encoding":       "\xc0\xaf",
	"a surrogate half":           "\xed\xa0\x80",
	"an escape character":        "ann\x1b[31m",
	"a C1 control character":     "ann\u0085smith",
}

// Every text input of the manager, whichever edge sends it, refuses each
// hostile value with BAD_USER_INPUT naming its field, on both databases,
// and stores nothing.
func TestHostileTextIsRefusedNamingItsField(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, bookingDay)
		f := newBookingFixture(t, db, m, clk, 5, 0)
		slot := f.slots[0].ID
		provider := func(name, zone string) models.ProviderInput {
			return models.ProviderInput{Name: name, TimeZone: zone, SlotMinutes: 60, WorkingHours: everyDay("09:00", "12:00")}
		}
		inputs := []struct {
			field string
			call  func(v string) error
		}{
			{"customer", func(v string) error {
				_, _, err := m.Book(ctx, slots.BookInput{SlotID: slot, Customer: v})
				return err
			}},
			{"idempotencyKey", func(v string) error {
				_, _, err := m.Book(ctx, slots.BookInput{SlotID: slot, Customer: "ann", IdempotencyKey: v})
				return err
			}},
			{"customerId", func(v string) error {
				_, _, err := m.Book(ctx, slots.BookInput{SlotID: slot, Customer: "ann", CustomerID: v})
				return err
			}},
			{"name", func(v string) error { _, err := m.CreateProvider(ctx, provider(v, "UTC")); return err }},
			{"name", func(v string) error { _, err := m.UpdateProvider(ctx, f.p.ID, provider(v, "UTC")); return err }},
			{"timeZone", func(v string) error { _, err := m.CreateProvider(ctx, provider("Tz", "Europe/"+v)); return err }},
			{"reference", func(v string) error { _, err := m.FindBooking(ctx, slots.Actor{}, byRef("bk_"+v)); return err }},
			{"customer", func(v string) error {
				_, err := m.ListBookings(ctx, slots.BookingFilter{Customer: &v}, slots.PageRequest{})
				return err
			}},
			{"customerId", func(v string) error {
				_, err := m.ListBookings(ctx, slots.BookingFilter{CustomerID: &v}, slots.PageRequest{})
				return err
			}},
			{"customerId", func(v string) error {
				_, err := m.MyBookings(ctx, v, slots.MyBookingsFilter{}, slots.PageRequest{})
				return err
			}},
			{"customer", func(v string) error { _, err := m.DeleteCustomerData(ctx, nil, &v); return err }},
			{"customerId", func(v string) error { _, err := m.DeleteCustomerData(ctx, &v, nil); return err }},
		}
		for i, in := range inputs {
			for what, v := range hostileTexts {
				err := in.call(v)
				e, ok := apperr.As(err)
				if !ok || e.Code != apperr.BadUserInput || e.Field != in.field || !strings.Contains(e.Message, in.field) {
					t.Errorf("input %d (%s) with %s: %v, want BAD_USER_INPUT naming %s", i, in.field, what, err, in.field)
					continue
				}
				if strings.ContainsAny(e.Message, "\x00\x1b\u0085") || !utf8.ValidString(e.Message) {
					t.Errorf("input %d (%s) with %s: the message repeats the input: %q", i, in.field, what, e.Message)
				}
			}
		}
		if n := count(t, db, "SELECT COUNT(*) FROM bookings"); n != 0 {
			t.Errorf("%d bookings stored from hostile input", n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM providers"); n != 1 {
			t.Errorf("%d providers, want only the fixture's", n)
		}
		// Text that is merely unusual stays welcome.
		for _, name := range []string{"Zoë Ångström", "李小龍", "O'Brien \"Jr.\"", "emoji 📅"} {
			if _, _, err := m.Book(ctx, slots.BookInput{SlotID: slot, Customer: name}); err != nil {
				t.Errorf("book for %q: %v", name, err)
			}
		}
	})
}

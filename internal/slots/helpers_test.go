package slots_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/slots"
	"timeslots/models"
)

var ctx = context.Background()

// clock is a settable wall clock for slots.WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// newManager answers a manager over db whose clock starts at now.
func newManager(db *database.DB, now time.Time, opts ...slots.Option) (*slots.Manager, *clock) {
	c := &clock{t: now}
	return slots.New(db, append([]slots.Option{slots.WithClock(c.Now)}, opts...)...), c
}

// everyDay answers the same hours on all seven weekdays.
func everyDay(start, end string) []models.WorkingHours {
	out := make([]models.WorkingHours, 0, 7)
	for _, d := range models.AllWeekdays {
		out = append(out, models.WorkingHours{Weekday: d, Start: start, End: end})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func mustProvider(t testing.TB, m *slots.Manager, in models.ProviderInput) *models.Provider {
	t.Helper()
	p, err := m.CreateProvider(ctx, in)
	if err != nil {
		t.Fatalf("create provider %q: %v", in.Name, err)
	}
	return p
}

func mustGenerate(t testing.TB, m *slots.Manager, in slots.GenerateInput) slots.GenerateResult {
	t.Helper()
	res, err := m.Generate(ctx, in)
	if err != nil {
		t.Fatalf("generate %+v: %v", in, err)
	}
	return res
}

// providerSlots reads a provider's slots straight from the table, in start order.
func providerSlots(t testing.TB, db *database.DB, providerID int64) []models.TimeSlot {
	t.Helper()
	var rows []models.TimeSlot
	if err := db.Where("provider_id = ?", providerID).Order("start_time, id").Find(&rows).Error; err != nil {
		t.Fatalf("read slots of provider %d: %v", providerID, err)
	}
	return rows
}

func count(t testing.TB, db *database.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.Raw(q, args...).Scan(&n).Error; err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// overlaps counts pairs of one provider's slots that overlap, by a self-join
// in SQL, independent of the manager.
func overlaps(t testing.TB, db *database.DB) int64 {
	t.Helper()
	return count(t, db, `SELECT COUNT(*) FROM time_slots a JOIN time_slots b
		ON a.provider_id = b.provider_id AND a.id < b.id
		AND a.start_time < b.end_time AND b.start_time < a.end_time`)
}

// wantCode fails unless err carries code; for BAD_USER_INPUT it also wants
// the field named in the error and its message.
func wantCode(t testing.TB, err error, code apperr.Code, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if got := apperr.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %s, want %s", err, got, code)
	}
	if field == "" {
		return
	}
	var e *apperr.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *apperr.Error", err)
	}
	if e.Field != field || !strings.Contains(e.Message, field) {
		t.Fatalf("error %q names field %q, want %q named in field and message", e.Message, e.Field, field)
	}
}

// admin is an actor who passed the admin check.
var admin = slots.Actor{Admin: true}

// customer is the actor of a verified customer with id sub.
func customer(sub string) slots.Actor { return slots.Actor{CustomerID: sub} }

// byID names a booking by its id, as an admin or its owner may.
func byID(id int64) slots.BookingRef { return slots.BookingRef{ID: &id} }

// byRef names a booking by its reference.
func byRef(ref string) slots.BookingRef { return slots.BookingRef{Reference: &ref} }

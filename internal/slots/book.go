package slots

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/feed"
	"timeslots/models"
)

// Limits of booking input.
const (
	MaxCustomerLength       = 200
	MaxCustomerIDLength     = 200
	MaxIdempotencyKeyLength = 200
)

// BookInput asks for one seat in a slot.
type BookInput struct {
	SlotID   int64
	Customer string
	// CustomerID is the verified end user who books (a JWT's subject),
	// recorded as the booking's owner; "" for an anonymous booking.
	CustomerID     string
	IdempotencyKey string // optional; unique among its owner's bookings, or among anonymous ones
}

// errIdempotencyRace marks an attempt that lost the race to insert the same
// idempotency key; the next attempt replays the winner's booking.
var errIdempotencyRace = errors.New("idempotency key taken concurrently")

// Book takes one seat of a slot for a customer.
//
// The seat is claimed by a single conditional UPDATE (… WHERE booked_count <
// capacity AND start_time > now), which the database serialises per row: of
// any number of concurrent attempts on a slot exactly capacity succeed, on
// PostgreSQL by its row lock and on SQLite because every transaction takes
// the write lock at BEGIN. No FOR UPDATE is needed. The booking row is
// written in the same transaction; a customer's second confirmed booking of
// a slot is refused by a unique index, which undoes the claim with it. Only
// when nothing was booked does it read further, for the precise reason.
//
// Every booking gets a new reference (see newReference). A repeated call
// with the same idempotency key and input answers the original booking; the
// same key with other input is IDEMPOTENCY_CONFLICT. Keys are looked up
// within their owner's bookings (in.CustomerID), or among the anonymous
// bookings for an anonymous call, so one customer's key never tells
// another that it was used.
// A transient conflict (a deadlock, a busy SQLite) is retried a few times
// after a short wait, which ends early with ctx.
func (m *Manager) Book(ctx context.Context, in BookInput) (*models.Booking, *models.TimeSlot, error) {
	ctx = OnPrimary(ctx) // a mutation reads on the primary
	b, s, err := m.book(ctx, in)
	if m.hooks.BookingOutcome != nil {
		m.hooks.BookingOutcome(apperr.ErrorCode(err))
	}
	return b, s, err
}

func (m *Manager) book(ctx context.Context, in BookInput) (*models.Booking, *models.TimeSlot, error) {
	if in.SlotID < 1 {
		return nil, nil, apperr.Invalid("slotId", "slotId must be a positive id")
	}
	name, err := customerName(in.Customer)
	if err != nil {
		return nil, nil, err
	}
	in.Customer = name
	in.IdempotencyKey = strings.TrimSpace(in.IdempotencyKey)
	for _, f := range []struct {
		field, value string
		max          int
	}{
		{"idempotencyKey", in.IdempotencyKey, MaxIdempotencyKeyLength},
		{"customerId", in.CustomerID, MaxCustomerIDLength},
	} {
		if err := models.CheckText(f.field, f.value, f.max); err != nil {
			return nil, nil, err
		}
	}
	ref := newReference()
	for attempt := 0; ; attempt++ {
		b, s, err := m.bookOnce(ctx, in, ref)
		switch {
		case err == nil:
			return b, s, nil
		case errors.Is(err, errIdempotencyRace) && attempt < 3:
			continue // the winner has committed: the next attempt replays it
		case errors.Is(err, errRecounted) && attempt < 3:
			continue // the slot's holds were recounted: claim again
		case database.IsRetryable(err) && attempt < 3:
			if err := wait(ctx, m.retryDelay(attempt)); err != nil {
				return nil, nil, dbError("book slot", err)
			}
		default:
			return nil, nil, dbError("book slot", err)
		}
	}
}

// bookRetryDelay is how long the attempt-th retry of a booking waits after
// a transient conflict: a little longer each time, so that the conflicting
// transactions can finish.
func bookRetryDelay(attempt int) time.Duration {
	return time.Duration(attempt+1) * 5 * time.Millisecond
}

// wait waits for d, or until ctx ends, answering its error then.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// bookOnce is one booking attempt: the store claims the seat and writes the
// booking together, and only when it wrote nothing is anything read: the
// booking already made with the idempotency key, or the precise reason.
func (m *Manager) bookOnce(ctx context.Context, in BookInput, ref string) (*models.Booking, *models.TimeSlot, error) {
	now := m.Now()
	b, s, refused := m.store.bookSeat(ctx, in, ref, now, m.createdEvent(in, ref, now))
	switch {
	case refused == nil:
		m.publish(slotEvent(feed.Booked, s))
		return b, s, nil
	case errors.Is(refused, errNotClaimed), errors.Is(refused, errKeyTaken), errors.Is(refused, errSeatHeld):
	default:
		return nil, nil, refused
	}
	// With a key, the booking made with it answers: it may be what filled
	// the slot or took the key. It is visible by now: PostgreSQL raises a
	// unique violation only once the other booking has committed, and
	// SQLite's writers take turns.
	if in.IdempotencyKey != "" {
		if b, s, err := m.replay(ctx, in); err != nil || b != nil {
			return b, s, err
		}
		if errors.Is(refused, errKeyTaken) {
			return nil, nil, errIdempotencyRace
		}
	}
	if !errors.Is(refused, errNotClaimed) {
		return nil, nil, customerHolds(in.SlotID)
	}
	if err := m.recounted(ctx, in.SlotID, now); err != nil {
		return nil, nil, err
	}
	return nil, nil, m.unclaimed(ctx, in.SlotID, now)
}

// unclaimed gives the reason no seat of slot id could be claimed at now:
// the slot does not exist, cannot be booked (see refusal), or is full.
func (m *Manager) unclaimed(ctx context.Context, id int64, now time.Time) error {
	bk, err := m.store.bookability(ctx, id)
	if errors.Is(err, errNoRows) {
		return notFound("time slot", id)
	}
	if err != nil {
		return err
	}
	if err := refusal(id, bk, now); err != nil {
		return err
	}
	return apperr.E(apperr.SlotUnavailable, "time slot %d is fully booked", id)
}

// refusal gives the reason slot id cannot be booked at now, other than
// being full: past, inside the provider's minimum notice, or of a provider
// not taking bookings; nil when none applies.
func refusal(id int64, b bookability, now time.Time) error {
	switch {
	case !b.start.After(now):
		return apperr.E(apperr.SlotInPast, "time slot %d started at %s and can no longer be booked",
			id, b.start.UTC().Format(time.RFC3339))
	case b.start.Before(now.Add(time.Duration(b.minNotice) * time.Minute)):
		return apperr.E(apperr.SlotTooSoon, "time slot %d starts in less than the provider's minimum notice of %d minutes",
			id, b.minNotice)
	case !b.active:
		return apperr.E(apperr.SlotUnavailable, "the provider of time slot %d is not taking bookings", id)
	}
	return nil
}

// newBooking is the confirmed booking with reference ref of a just-claimed
// seat of slot.
func newBooking(slot *models.TimeSlot, in BookInput, ref string, now time.Time, id int64) *models.Booking {
	b := &models.Booking{
		ID: id, Reference: ref, SlotID: &slot.ID, ProviderID: slot.ProviderID,
		StartTime: slot.StartTime, EndTime: slot.EndTime,
		Customer: in.Customer, Status: models.BookingConfirmed, CreatedAt: now,
		CustomerID: optional(in.CustomerID), IdempotencyKey: optional(in.IdempotencyKey),
	}
	return b
}

// optional answers s, or nil when it is empty (a NULL column).
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func customerHolds(slotID int64) error {
	return apperr.E(apperr.SlotUnavailable, "customer already holds a booking for time slot %d", slotID)
}

// replay answers the booking already made with in's idempotency key and its
// slot as it is now, both nil when there is none, or IDEMPOTENCY_CONFLICT
// when it was made with other input.
func (m *Manager) replay(ctx context.Context, in BookInput) (*models.Booking, *models.TimeSlot, error) {
	prev, err := m.store.bookingByKey(ctx, in.IdempotencyKey, in.CustomerID)
	if errors.Is(err, errNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if prev.SlotID == nil || *prev.SlotID != in.SlotID || prev.Customer != in.Customer {
		return nil, nil, apperr.E(apperr.IdempotencyConflict,
			"idempotencyKey was already used for a booking with a different slotId or customer")
	}
	s, err := m.slotOf(ctx, prev)
	return prev, s, err
}

// slotOf answers a booking's slot as it is now, nil once cleaned up.
func (m *Manager) slotOf(ctx context.Context, b *models.Booking) (*models.TimeSlot, error) {
	if b.SlotID == nil {
		return nil, nil
	}
	s, err := m.Slot(ctx, *b.SlotID)
	if err != nil && apperr.ErrorCode(err) != apperr.NotFound {
		return nil, err
	}
	return s, nil
}

// Cancel cancels a confirmed booking of a future slot and frees its seat.
// The booking is named by ref, which a acts on as FindBooking allows.
// Cancelling an already cancelled booking answers it unchanged; a booking
// whose slot has started (or was cleaned up) is SLOT_IN_PAST. A booking
// cancelled or moved between its read and the cancellation is read again.
func (m *Manager) Cancel(ctx context.Context, a Actor, ref BookingRef) (*models.Booking, *models.TimeSlot, error) {
	ctx = OnPrimary(ctx) // a mutation reads on the primary
	b, err := m.FindBooking(ctx, a, ref)
	for attempt := 0; err == nil && b.Status != models.BookingCancelled; attempt++ {
		now := m.Now()
		if !b.StartTime.After(now) || b.SlotID == nil {
			return nil, nil, started(b.ID)
		}
		cancelled, freed, cerr := m.store.cancelBooking(ctx, b.ID, *b.SlotID, now, m.eventHook(BookingCancelled, b, now))
		switch {
		case cerr != nil:
			return nil, nil, dbError("cancel booking", cerr)
		case cancelled:
			b.Status, b.CancelledAt = models.BookingCancelled, &now
			if freed != nil {
				m.publish(slotEvent(feed.Cancelled, freed))
				return b, freed, nil
			}
			s, err := m.slotOf(ctx, b)
			return b, s, err
		case attempt == 3:
			return nil, nil, fmt.Errorf("cancel booking %d: it kept changing", b.ID)
		}
		b, err = m.Booking(ctx, b.ID)
	}
	if err != nil {
		return nil, nil, err
	}
	s, err := m.slotOf(ctx, b)
	if err != nil {
		return nil, nil, err
	}
	return b, s, nil
}

// started is the refusal to change booking id, whose slot has started.
func started(id int64) error {
	return apperr.E(apperr.SlotInPast, "booking %d is for a slot that has already started", id)
}

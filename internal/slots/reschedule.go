package slots

import (
	"context"
	"errors"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/feed"
	"timeslots/models"
)

// RescheduleInput asks to move a confirmed booking to another slot.
type RescheduleInput struct {
	Booking BookingRef
	SlotID  int64
}

// Rescheduled is the outcome of a reschedule: the booking in its new slot,
// the new slot and the slot it left, each as the move left them.
type Rescheduled struct {
	Booking  *models.Booking
	Slot     *models.TimeSlot
	Previous *models.TimeSlot
}

// Reschedule moves a confirmed booking of a future slot to another future
// slot, in one transaction: the new seat is claimed by the same conditional
// UPDATE as a booking's, the booking moves there keeping its id, reference
// and owner, the old seat is freed and the move is recorded (see
// BookingMoves). The booking is named by in.Booking, which a acts on as
// FindBooking allows.
//
// Nothing changes when it is refused: a cancelled booking is
// BAD_USER_INPUT naming the booking's argument, one whose slot has started
// SLOT_IN_PAST (as Cancel); the slot it is already in is BAD_USER_INPUT
// naming slotId; a new slot that is full, of an inactive provider, or where
// the customer already holds a seat is SLOT_UNAVAILABLE, one that started
// SLOT_IN_PAST, one inside the provider's minimum notice SLOT_TOO_SOON, a
// missing one NOT_FOUND. A booking cancelled or moved meanwhile is read
// again, and a transient conflict is retried, as Book does.
func (m *Manager) Reschedule(ctx context.Context, a Actor, in RescheduleInput) (*Rescheduled, error) {
	ctx = OnPrimary(ctx) // a mutation reads on the primary
	if in.SlotID < 1 {
		return nil, apperr.Invalid("slotId", "slotId must be a positive id")
	}
	for attempt := 0; ; attempt++ {
		out, err := m.rescheduleOnce(ctx, a, in)
		switch {
		case err == nil:
			return out, nil
		case (errors.Is(err, errBookingChanged) || errors.Is(err, errRecounted)) && attempt < 3:
			continue // the next attempt reads the booking (and the slot's holds) as they are now
		case database.IsRetryable(err) && attempt < 3:
			if err := wait(ctx, m.retryDelay(attempt)); err != nil {
				return nil, dbError("reschedule booking", err)
			}
		default:
			return nil, dbError("reschedule booking", err)
		}
	}
}

// rescheduleOnce is one attempt: it reads the booking, checks the rules
// that need no write, and has the store move it; only when the store moved
// nothing does it read the precise reason.
func (m *Manager) rescheduleOnce(ctx context.Context, a Actor, in RescheduleInput) (*Rescheduled, error) {
	b, err := m.FindBooking(ctx, a, in.Booking)
	if err != nil {
		return nil, err
	}
	if b.Status != models.BookingConfirmed {
		field := in.Booking.field()
		return nil, apperr.Invalid(field, "the booking named by %s is cancelled: only a confirmed booking can be rescheduled", field)
	}
	now := m.Now()
	if !b.StartTime.After(now) || b.SlotID == nil {
		return nil, started(b.ID)
	}
	if *b.SlotID == in.SlotID {
		return nil, apperr.Invalid("slotId", "slotId %d is the booking's slot already", in.SlotID)
	}
	slot, previous, refused := m.store.rescheduleSeat(ctx, b, in.SlotID, now, m.eventHook(BookingRescheduled, b, now))
	switch {
	case refused == nil:
		b.SlotID, b.ProviderID, b.StartTime, b.EndTime = &slot.ID, slot.ProviderID, slot.StartTime, slot.EndTime
		if previous != nil {
			m.publish(slotEvent(feed.Rescheduled, slot), slotEvent(feed.Rescheduled, previous))
		} else {
			m.publish(slotEvent(feed.Rescheduled, slot))
		}
		return &Rescheduled{Booking: b, Slot: slot, Previous: previous}, nil
	case errors.Is(refused, errSeatHeld):
		return nil, customerHolds(in.SlotID)
	case errors.Is(refused, errNotClaimed):
		if err := m.recounted(ctx, in.SlotID, now); err != nil {
			return nil, err
		}
		return nil, m.unclaimed(ctx, in.SlotID, now)
	default:
		return nil, refused
	}
}

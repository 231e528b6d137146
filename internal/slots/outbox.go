package slots

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"gorm.io/gorm"

	"timeslots/models"
)

// EventKind names a kind of booking or hold event that systems outside
// the server hear about (webhooks).
type EventKind string

// The booking events.
const (
	BookingCreated     EventKind = "booking.created"
	BookingCancelled   EventKind = "booking.cancelled"
	BookingRescheduled EventKind = "booking.rescheduled"
)

// The hold events. A hold's hold.expired is recorded with its
// hold.created, in the hold's transaction, for the hold's expiry (At): it
// is owed only if the hold is still held (neither released nor booked)
// when that time comes, which its recorder checks then.
const (
	HoldCreatedEvent  EventKind = "hold.created"
	HoldReleasedEvent EventKind = "hold.released"
	HoldExpiredEvent  EventKind = "hold.expired"
)

// EventKinds are the kinds of event there are, in the order they are
// documented.
var EventKinds = []EventKind{BookingCreated, BookingCancelled, BookingRescheduled, HoldCreatedEvent, HoldReleasedEvent, HoldExpiredEvent}

// Event is one change of a booking or a hold, as its transaction writes
// it.
type Event struct {
	Kind EventKind
	// At is when the change happened: for hold.expired, when it will.
	At      time.Time
	Booking models.Booking
	// Hold is the hold as the change left it, for the hold events; nil
	// for the booking events.
	Hold *models.Hold
	// Slot is the booking's slot as the change left it (the freed one for
	// a cancellation); nil when it no longer exists.
	Slot *models.TimeSlot
	// Previous is the slot a rescheduled booking left, as the move left
	// it; nil for the other kinds, or when it no longer exists.
	Previous *models.TimeSlot
}

// Outbox receives booking events inside the transaction that makes the
// change, so that an event is recorded exactly when its change commits:
// a refused or rolled-back change records none. An Enqueue error rolls
// the change back.
type Outbox interface {
	// Wants reports whether events of kind are to be recorded now. When
	// it answers false the change runs as it does without an outbox, with
	// no transaction of its own where it needs none.
	Wants(kind EventKind) bool
	// Enqueue records e in tx, the change's transaction.
	Enqueue(ctx context.Context, tx *sql.Tx, e Event) error
}

// StatementOutbox is an Outbox that can also record a booking.created
// event inside the booking's own statement on PostgreSQL, so that with the
// outbox a booking stays one statement, one round trip and one implicit
// transaction, as it is without; the record still commits or fails with
// the booking. Other changes, and every change on SQLite, go through
// Enqueue.
type StatementOutbox interface {
	Outbox
	// BookedSQL answers a data-modifying statement for the booking's WITH
	// clause that records e, whose booking id and slot the statement
	// makes itself: it reads them from the CTEs claimed (the slot as
	// claimed: id, provider_id, start_time, end_time, capacity,
	// booked_count) and booked (id). Its parameters are args, numbered
	// from $first. ok is false when there is nothing to record.
	BookedSQL(first int, e Event) (query string, args []any, ok bool, err error)
}

// WithOutbox has the manager hand each booking event to o, in the
// transaction of its change.
func WithOutbox(o Outbox) Option { return func(m *Manager) { m.outbox = o } }

// txChange is what a store's write changed, as it hands it to a txHook:
// each field is set where the write has it.
type txChange struct {
	changed        bool // the write changed something: the hook has an event to record
	booking        *models.Booking
	hold           *models.Hold
	slot, previous *models.TimeSlot
}

// txHook runs inside a store's write transaction, after the write and
// before the commit; its error rolls the write back. A nil txHook is
// none, and the write runs as it would without.
type txHook func(ctx context.Context, tx *sql.Tx, ch txChange) error

// eventHook answers the txHook that records an event of kind about
// booking b (nil: the store's own booking) in the outbox, or nil when no
// outbox wants such events.
func (m *Manager) eventHook(kind EventKind, b *models.Booking, now time.Time) txHook {
	if m.outbox == nil || !m.outbox.Wants(kind) {
		return nil
	}
	return func(ctx context.Context, tx *sql.Tx, ch txChange) error {
		e := Event{Kind: kind, At: now, Slot: ch.slot, Previous: ch.previous}
		switch {
		case ch.booking != nil:
			e.Booking = *ch.booking
		case b != nil:
			e.Booking = *b
		}
		switch kind {
		case BookingCancelled:
			e.Booking.Status, e.Booking.CancelledAt = models.BookingCancelled, &now
		case BookingRescheduled:
			if s := ch.slot; s != nil {
				e.Booking.SlotID, e.Booking.ProviderID, e.Booking.StartTime, e.Booking.EndTime = &s.ID, s.ProviderID, s.StartTime, s.EndTime
			}
		}
		return m.outbox.Enqueue(ctx, tx, e)
	}
}

// bookEvent is how a booking records its booking.created event: hook,
// in the booking's transaction, or inline, inside the booking's own
// statement (StatementOutbox) on PostgreSQL. Both nil: no event.
type bookEvent struct {
	hook   txHook
	inline func(first int) (query string, args []any, ok bool, err error)
}

// createdEvent answers how the booking of in with reference ref at now
// records its booking.created event.
func (m *Manager) createdEvent(in BookInput, ref string, now time.Time) bookEvent {
	hook := m.eventHook(BookingCreated, nil, now)
	so, ok := m.outbox.(StatementOutbox)
	if hook == nil || !ok {
		return bookEvent{hook: hook}
	}
	return bookEvent{hook: hook, inline: func(first int) (string, []any, bool, error) {
		// The statement fills in the booking's id and its slot.
		b := newBooking(&models.TimeSlot{ID: in.SlotID}, in, ref, now, 0)
		return so.BookedSQL(first, Event{Kind: BookingCreated, At: now, Booking: *b})
	}}
}

// holdCreatedHook answers the txHook that records a new hold's
// hold.created and, for its expiry, its hold.expired (see HoldExpiredEvent),
// each if the outbox wants it; nil when it wants neither. hold.expired
// tells the hold as it will be then, without the slot: what the slot
// offers by then is the slot's to tell.
func (m *Manager) holdCreatedHook(now time.Time) txHook {
	created := m.holdHook(HoldCreatedEvent, nil, now)
	if m.outbox == nil || !m.outbox.Wants(HoldExpiredEvent) {
		return created
	}
	return func(ctx context.Context, tx *sql.Tx, ch txChange) error {
		if created != nil {
			if err := created(ctx, tx, ch); err != nil {
				return err
			}
		}
		if ch.hold == nil {
			return nil
		}
		expired := *ch.hold
		expired.Status = models.HoldExpired
		return m.outbox.Enqueue(ctx, tx, Event{Kind: HoldExpiredEvent, At: expired.ExpiresAt, Hold: &expired})
	}
}

// holdHook answers the txHook that records an event of kind about hold h
// (nil: the store's own hold) in the outbox, or nil when no outbox wants
// such events.
func (m *Manager) holdHook(kind EventKind, h *models.Hold, now time.Time) txHook {
	if m.outbox == nil || !m.outbox.Wants(kind) {
		return nil
	}
	return func(ctx context.Context, tx *sql.Tx, ch txChange) error {
		e := Event{Kind: kind, At: now, Slot: ch.slot}
		switch {
		case ch.hold != nil:
			e.Hold = ch.hold
		case h != nil:
			released := *h
			released.Status, released.EndedAt = models.HoldReleased, &now
			e.Hold = &released
		}
		return m.outbox.Enqueue(ctx, tx, e)
	}
}

// gormTx answers the database/sql transaction behind tx, a GORM handle
// inside Transaction.
func gormTx(tx *gorm.DB) (*sql.Tx, error) {
	sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
	if !ok {
		return nil, fmt.Errorf("the GORM transaction runs on a %T, not a *sql.Tx", tx.Statement.ConnPool)
	}
	return sqlTx, nil
}

// runGORM calls h inside GORM transaction tx, if there is one.
func (h txHook) runGORM(ctx context.Context, tx *gorm.DB, ch txChange) error {
	if h == nil {
		return nil
	}
	sqlTx, err := gormTx(tx)
	if err != nil {
		return err
	}
	return h(ctx, sqlTx, ch)
}

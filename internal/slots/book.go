package slots

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/models"
)

// Limits of booking input.
const (
	MaxCustomerLength       = 200
	MaxIdempotencyKeyLength = 200
)

// BookInput asks for one seat in a slot.
type BookInput struct {
	SlotID         int64
	Customer       string
	IdempotencyKey string // optional
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
// a slot is refused by a unique index, which undoes the claim with it.
//
// A repeated call with the same idempotency key and input answers the
// original booking; the same key with other input is IDEMPOTENCY_CONFLICT.
func (m *Manager) Book(ctx context.Context, in BookInput) (*models.Booking, *models.TimeSlot, error) {
	b, s, err := m.book(ctx, in)
	if m.hooks.BookingOutcome != nil {
		m.hooks.BookingOutcome(apperr.ErrorCode(err))
	}
	return b, s, err
}

func (m *Manager) book(ctx context.Context, in BookInput) (*models.Booking, *models.TimeSlot, error) {
	in.Customer = strings.TrimSpace(in.Customer)
	in.IdempotencyKey = strings.TrimSpace(in.IdempotencyKey)
	switch {
	case in.SlotID < 1:
		return nil, nil, apperr.Invalid("slotId", "slotId must be a positive id")
	case in.Customer == "":
		return nil, nil, apperr.Invalid("customer", "customer must not be empty")
	case len(in.Customer) > MaxCustomerLength:
		return nil, nil, apperr.Invalid("customer", "customer must be at most %d bytes", MaxCustomerLength)
	case len(in.IdempotencyKey) > MaxIdempotencyKeyLength:
		return nil, nil, apperr.Invalid("idempotencyKey", "idempotencyKey must be at most %d bytes", MaxIdempotencyKeyLength)
	}
	attemptOnce := m.bookInTransaction
	if m.dialect == database.Postgres {
		attemptOnce = m.bookInOneStatement
	}
	for attempt := 0; ; attempt++ {
		b, s, err := attemptOnce(ctx, in)
		switch {
		case err == nil:
			return b, s, nil
		case errors.Is(err, errIdempotencyRace) && attempt < 3:
			continue // the winner has committed: the next attempt replays it
		case database.IsRetryable(err) && attempt < 3 && ctx.Err() == nil:
			time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
			continue
		default:
			return nil, nil, dbError("book slot", err)
		}
	}
}

// bookStatement claims a seat and records the booking in one PostgreSQL
// statement, so a booking costs one round trip and one implicit
// transaction: the conditional UPDATE (joined with the provider for its
// active flag and minimum notice) and the INSERT of the booking commit or
// fail together. It answers the slot as updated (the columns a listing
// reads) and the booking's id, or no row when the slot cannot be claimed.
// Its SET is seatChange(+1) written out. It is sent (and logged) as one
// line; its parameters are $1 now, $2 the slot, $3 the customer, $4 the
// booking's status and $5 the idempotency key (NULL for none).
var bookStatement = strings.Join(strings.Fields(`WITH claimed AS (
	UPDATE time_slots AS s
	   SET booked_count = s.booked_count + 1, version = s.version + 1, updated_at = $1
	  FROM providers AS p
	 WHERE s.id = $2 AND p.id = s.provider_id AND p.active
	   AND s.booked_count < s.capacity AND s.start_time > $1
	   AND s.start_time - make_interval(mins => p.min_notice_minutes) >= $1
	RETURNING s.`+strings.ReplaceAll(slotColumns, ", ", ", s.")+`
), booked AS (
	INSERT INTO bookings (slot_id, provider_id, start_time, end_time, customer, status, idempotency_key, created_at)
	SELECT id, provider_id, start_time, end_time, $3, $4, $5, $1 FROM claimed
	RETURNING id
)
SELECT claimed.*, booked.id FROM claimed, booked`), " ")

// bookInOneStatement is one booking attempt on PostgreSQL. Only when the
// statement books nothing does it read further: the booking already made
// with the idempotency key, or the precise reason the slot was refused.
func (m *Manager) bookInOneStatement(ctx context.Context, in BookInput) (*models.Booking, *models.TimeSlot, error) {
	db := m.db.WithContext(ctx)
	now := m.Now()
	var key *string
	if in.IdempotencyKey != "" {
		k := in.IdempotencyKey
		key = &k
	}
	// One row through pgx itself, scanned as a listing's slots are (the
	// hottest write path; GORM's statement building and database/sql's
	// conversions were a tenth of a booking's CPU): the slot as the answer
	// shows it, then the booking's id.
	var slot models.TimeSlot
	var bookingID int64
	err := withPgConn(ctx, m.sqlDB, func(c *pgx.Conn) error {
		return scanSlot(c.QueryRow(ctx, bookStatement, now, in.SlotID, in.Customer,
			string(models.BookingConfirmed), key), &slot, &bookingID)
	})
	switch {
	case err == nil:
		return newBooking(&slot, in, now, bookingID), &slot, nil
	case errors.Is(err, pgx.ErrNoRows):
		// Nothing claimed: read on below.
	default:
		constraint, unique := database.IsUniqueViolation(err)
		if !unique {
			return nil, nil, err
		}
		// The key or the customer's seat is taken. PostgreSQL raises the
		// violation only once the other booking has committed, so with a
		// key the booking made with it (if that is the clash) is visible.
		if in.IdempotencyKey != "" {
			if b, s, err := m.replayNow(ctx, db, in); err != nil || b != nil {
				return b, s, err
			}
			if strings.Contains(constraint, "idempotency") {
				return nil, nil, errIdempotencyRace
			}
		}
		return nil, nil, customerHolds(in)
	}
	// Nothing claimed. With a key, a booking made with it answers (it may
	// be what filled the slot); otherwise say why the slot was refused.
	if in.IdempotencyKey != "" {
		if b, s, err := m.replayNow(ctx, db, in); err != nil || b != nil {
			return b, s, err
		}
	}
	if err := m.checkBookable(db, in, now); err != nil {
		return nil, nil, err
	}
	return nil, nil, fullyBooked(in)
}

// bookInTransaction is one booking attempt on SQLite, where every statement
// is local and the transaction holds the write lock from BEGIN: the key is
// looked up, the slot checked, the seat claimed and the booking written in
// turn, with nothing interleaving.
func (m *Manager) bookInTransaction(ctx context.Context, in BookInput) (*models.Booking, *models.TimeSlot, error) {
	var booking *models.Booking
	var slot models.TimeSlot
	err := m.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if in.IdempotencyKey != "" {
			prev, err := m.replay(tx, in)
			if err != nil || prev != nil {
				booking = prev
				return err
			}
		}
		now := m.Now()
		if err := m.checkBookable(tx, in, now); err != nil {
			return err
		}
		claim := tx.Model(&slot).Clauses(clause.Returning{}).
			Where("id = ? AND booked_count < capacity AND start_time > ?", in.SlotID, now).
			Updates(seatChange(+1, now))
		if claim.Error != nil {
			return claim.Error
		}
		if claim.RowsAffected == 0 {
			return fullyBooked(in)
		}
		booking = newBooking(&slot, in, now, 0)
		if err := tx.Create(booking).Error; err != nil {
			if constraint, ok := database.IsUniqueViolation(err); ok {
				if strings.Contains(constraint, "idempotency") {
					return errIdempotencyRace
				}
				return customerHolds(in)
			}
			return err
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, nil, err
	case slot.ID == 0: // replayed: answer the slot as it is now
		s, err := m.slotOf(ctx, booking)
		return booking, s, err
	}
	return booking, &slot, nil
}

// newBooking is the confirmed booking of a just-claimed seat of slot.
func newBooking(slot *models.TimeSlot, in BookInput, now time.Time, id int64) *models.Booking {
	b := &models.Booking{
		ID: id, SlotID: &slot.ID, ProviderID: slot.ProviderID,
		StartTime: slot.StartTime, EndTime: slot.EndTime,
		Customer: in.Customer, Status: models.BookingConfirmed, CreatedAt: now,
	}
	if in.IdempotencyKey != "" {
		key := in.IdempotencyKey
		b.IdempotencyKey = &key
	}
	return b
}

func fullyBooked(in BookInput) error {
	return apperr.E(apperr.SlotUnavailable, "time slot %d is fully booked", in.SlotID)
}

func customerHolds(in BookInput) error {
	return apperr.E(apperr.SlotUnavailable, "customer already holds a booking for time slot %d", in.SlotID)
}

// replay answers the booking already made with in's idempotency key, nil
// when there is none, or IDEMPOTENCY_CONFLICT when it was made with other
// input.
func (m *Manager) replay(tx *gorm.DB, in BookInput) (*models.Booking, error) {
	var prev models.Booking
	err := tx.Where("idempotency_key = ?", in.IdempotencyKey).Take(&prev).Error
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if prev.SlotID == nil || *prev.SlotID != in.SlotID || prev.Customer != in.Customer {
		return nil, apperr.E(apperr.IdempotencyConflict,
			"idempotencyKey was already used for a booking with a different slotId or customer")
	}
	return &prev, nil
}

// replayNow is replay outside a transaction, with the booking's slot as it
// is now; both nil when no booking was made with the key.
func (m *Manager) replayNow(ctx context.Context, db *gorm.DB, in BookInput) (*models.Booking, *models.TimeSlot, error) {
	prev, err := m.replay(db, in)
	if err != nil || prev == nil {
		return nil, nil, err
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

// checkBookable gives the precise reason a slot cannot be booked: missing,
// past, inside the provider's minimum notice, or of a provider not taking
// bookings. The claim itself is still the conditional UPDATE.
func (m *Manager) checkBookable(tx *gorm.DB, in BookInput, now time.Time) error {
	var row struct {
		StartTime        time.Time
		MinNoticeMinutes int
		Active           bool
	}
	err := tx.Table("time_slots").
		Select("time_slots.start_time, providers.min_notice_minutes, providers.active").
		Joins("JOIN providers ON providers.id = time_slots.provider_id").
		Where("time_slots.id = ?", in.SlotID).Take(&row).Error
	if isNotFound(err) {
		return notFound("time slot", in.SlotID)
	}
	if err != nil {
		return err
	}
	switch {
	case !row.StartTime.After(now):
		return apperr.E(apperr.SlotInPast, "time slot %d started at %s and can no longer be booked",
			in.SlotID, row.StartTime.UTC().Format(time.RFC3339))
	case row.StartTime.Before(now.Add(time.Duration(row.MinNoticeMinutes) * time.Minute)):
		return apperr.E(apperr.SlotTooSoon, "time slot %d starts in less than the provider's minimum notice of %d minutes",
			in.SlotID, row.MinNoticeMinutes)
	case !row.Active:
		return apperr.E(apperr.SlotUnavailable, "the provider of time slot %d is not taking bookings", in.SlotID)
	}
	return nil
}

// Cancel cancels a confirmed booking of a future slot and frees its seat.
// Cancelling an already cancelled booking answers it unchanged; a booking
// whose slot has started (or was cleaned up) is SLOT_IN_PAST.
func (m *Manager) Cancel(ctx context.Context, bookingID int64) (*models.Booking, *models.TimeSlot, error) {
	if bookingID < 1 {
		return nil, nil, apperr.Invalid("bookingId", "bookingId must be a positive id")
	}
	var booking models.Booking
	var slot *models.TimeSlot
	err := m.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.First(&booking, bookingID).Error; err != nil {
			if isNotFound(err) {
				return notFound("booking", bookingID)
			}
			return err
		}
		now := m.Now()
		if booking.Status == models.BookingCancelled {
			return nil
		}
		if !booking.StartTime.After(now) || booking.SlotID == nil {
			return apperr.E(apperr.SlotInPast, "booking %d is for a slot that has already started", bookingID)
		}
		upd := tx.Model(&models.Booking{}).
			Where("id = ? AND status = ?", bookingID, models.BookingConfirmed).
			Updates(map[string]any{"status": models.BookingCancelled, "cancelled_at": now})
		if upd.Error != nil {
			return upd.Error
		}
		if upd.RowsAffected == 0 { // cancelled concurrently
			return tx.First(&booking, bookingID).Error
		}
		// The freed slot comes back from the UPDATE itself, as a claimed one
		// does when booking.
		var s models.TimeSlot
		free := tx.Model(&s).Clauses(clause.Returning{}).
			Where("id = ? AND booked_count > 0", *booking.SlotID).
			Updates(seatChange(-1, now))
		if free.Error != nil {
			return free.Error
		}
		booking.Status, booking.CancelledAt = models.BookingCancelled, &now
		if free.RowsAffected == 1 {
			slot = &s
		}
		return nil
	})
	if err != nil {
		return nil, nil, dbError("cancel booking", err)
	}
	if slot == nil {
		if slot, err = m.slotOf(ctx, &booking); err != nil {
			return nil, nil, err
		}
	}
	return &booking, slot, nil
}

// seatChange is the column update of taking (+1) or freeing (-1) one seat:
// the count, the row's version and its update time move together.
func seatChange(delta int, now time.Time) map[string]any {
	return map[string]any{
		"booked_count": gorm.Expr("booked_count + ?", delta),
		"version":      gorm.Expr("version + 1"),
		"updated_at":   now,
	}
}

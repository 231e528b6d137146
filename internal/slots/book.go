package slots

import (
	"context"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"

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

// errIdempotencyRace marks a transaction that lost the race to insert the
// same idempotency key; the winner's booking is then replayed.
var errIdempotencyRace = errors.New("idempotency key taken concurrently")

// Book takes one seat of a slot for a customer.
//
// Inside one transaction the seat is claimed by a single conditional UPDATE
// (… WHERE booked_count < capacity AND start_time > now), which the database
// serialises per row: of any number of concurrent attempts on a slot exactly
// capacity succeed, on PostgreSQL by its row lock and on SQLite because
// every transaction takes the write lock at BEGIN. No FOR UPDATE is needed.
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
	for attempt := 0; ; attempt++ {
		var booking models.Booking
		var slot models.TimeSlot
		err := m.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if in.IdempotencyKey != "" {
				replayed, err := m.replay(tx, in)
				if err != nil || replayed != nil {
					if replayed != nil {
						booking = *replayed
					}
					return err
				}
			}
			now := m.Now()
			if err := m.checkBookable(tx, in, now); err != nil {
				return m.replayInstead(tx, in, &booking, err)
			}
			claim := tx.Model(&models.TimeSlot{}).
				Where("id = ? AND booked_count < capacity AND start_time > ?", in.SlotID, now).
				Updates(seatChange(+1, now))
			if claim.Error != nil {
				return claim.Error
			}
			if claim.RowsAffected == 0 {
				return m.replayInstead(tx, in, &booking,
					apperr.E(apperr.SlotUnavailable, "time slot %d is fully booked", in.SlotID))
			}
			if err := tx.First(&slot, in.SlotID).Error; err != nil {
				return err
			}
			booking = models.Booking{
				SlotID: &slot.ID, ProviderID: slot.ProviderID,
				StartTime: slot.StartTime, EndTime: slot.EndTime,
				Customer: in.Customer, Status: models.BookingConfirmed, CreatedAt: now,
			}
			if in.IdempotencyKey != "" {
				key := in.IdempotencyKey
				booking.IdempotencyKey = &key
			}
			if err := tx.Create(&booking).Error; err != nil {
				if c, ok := database.IsUniqueViolation(err); ok {
					// With a key, the clash may be a concurrent attempt with
					// the same key (on the key, or on the customer's seat):
					// the retry replays it, or finds the real reason.
					if in.IdempotencyKey != "" || strings.Contains(c, "idempotency") {
						return errIdempotencyRace
					}
					return apperr.E(apperr.SlotUnavailable, "customer already holds a booking for time slot %d", in.SlotID)
				}
				return err
			}
			return nil
		})
		switch {
		case err == nil:
			if slot.ID == 0 { // replayed: answer the slot as it is now
				if booking.SlotID != nil {
					s, err := m.Slot(ctx, *booking.SlotID)
					if err != nil && apperr.ErrorCode(err) != apperr.NotFound {
						return nil, nil, err
					}
					return &booking, s, nil
				}
				return &booking, nil, nil
			}
			return &booking, &slot, nil
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

// replayInstead answers the booking made with in's idempotency key when err
// says the seat is taken: on PostgreSQL a concurrent attempt with the same
// key may have committed after this transaction's first look (its UPDATE
// waited for that commit), and a retry with the same key must answer that
// booking, not SLOT_UNAVAILABLE. Any other error is answered as it is.
func (m *Manager) replayInstead(tx *gorm.DB, in BookInput, booking *models.Booking, err error) error {
	if in.IdempotencyKey == "" || apperr.ErrorCode(err) != apperr.SlotUnavailable {
		return err
	}
	prev, rerr := m.replay(tx, in)
	if rerr != nil {
		return rerr
	}
	if prev == nil {
		return err
	}
	*booking = *prev
	return nil
}

// checkBookable gives the precise reason a slot cannot be booked: missing,
// past, inside the provider's minimum notice, or already held by the
// customer. The claim itself is still the conditional UPDATE.
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
	var held int64
	if err := tx.Model(&models.Booking{}).
		Where("slot_id = ? AND customer = ? AND status = ?", in.SlotID, in.Customer, models.BookingConfirmed).
		Count(&held).Error; err != nil {
		return err
	}
	if held > 0 {
		return apperr.E(apperr.SlotUnavailable, "customer already holds a booking for time slot %d", in.SlotID)
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
		free := tx.Model(&models.TimeSlot{}).
			Where("id = ? AND booked_count > 0", *booking.SlotID).
			Updates(seatChange(-1, now))
		if free.Error != nil {
			return free.Error
		}
		booking.Status, booking.CancelledAt = models.BookingCancelled, &now
		var s models.TimeSlot
		if err := tx.First(&s, *booking.SlotID).Error; err != nil {
			return err
		}
		slot = &s
		return nil
	})
	if err != nil {
		return nil, nil, dbError("cancel booking", err)
	}
	if slot == nil && booking.SlotID != nil {
		s, err := m.Slot(ctx, *booking.SlotID)
		if err != nil && apperr.ErrorCode(err) != apperr.NotFound {
			return nil, nil, err
		}
		slot = s
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

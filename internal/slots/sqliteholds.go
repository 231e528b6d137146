package slots

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"timeslots/internal/database"
	"timeslots/models"
)

// holdSeat claims the seat as sqliteClaimSeat does, in one transaction
// that holds the write lock throughout, then adds the hold to the slot's
// summary and writes it.
func (s *sqliteStore) holdSeat(ctx context.Context, in HoldInput, ref string, now, expires time.Time, hook txHook) (*models.Hold, *models.TimeSlot, error) {
	var hold *models.Hold
	var slot *models.TimeSlot
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		b, err := sqliteBookability(tx, in.SlotID)
		if errors.Is(err, errNoRows) || err == nil && refusal(in.SlotID, b, now) != nil {
			return errNotClaimed
		}
		if err != nil {
			return err
		}
		upd := tx.Exec(`UPDATE time_slots
			SET held_count = (CASE WHEN held_until > ? THEN held_count ELSE 0 END) + 1,
			    held_first = CASE WHEN held_until > ? THEN min(held_first, ?) ELSE ? END,
			    held_until = CASE WHEN held_until > ? THEN max(held_until, ?) ELSE ? END,
			    version = version + 1, updated_at = ?
			WHERE id = ? AND booked_count + `+sqliteClaimHeld+` < capacity AND start_time > ?`,
			now, now, expires, expires, now, expires, expires, now, in.SlotID, now, now, now)
		if upd.Error != nil {
			return upd.Error
		}
		if upd.RowsAffected == 0 {
			return errNotClaimed
		}
		hold = newHold(0, ref, in, now, expires)
		if err := tx.Create(hold).Error; err != nil {
			if index, ok := database.IsUniqueViolation(err); ok && (index == database.UniqueHoldKey || index == database.UniqueOwnerHoldKey) {
				return errKeyTaken
			}
			return err
		}
		if slot, err = sqliteChangedAt(tx, in.SlotID, now); err != nil {
			return err
		}
		return hook.runGORM(ctx, tx, txChange{hold: hold, slot: slot})
	})
	if err != nil {
		return nil, nil, err
	}
	return hold, slot, nil
}

// recountHolds needs no lock of its own: the transaction holds the write
// lock from its BEGIN.
func (s *sqliteStore) recountHolds(ctx context.Context, id int64, now time.Time) (*models.TimeSlot, error) {
	var recounted *models.TimeSlot
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		upd := tx.Exec(`UPDATE time_slots
			SET (held_count, held_first, held_until) = (SELECT count(*), min(expires_at), max(expires_at) FROM slot_holds
			                                             WHERE slot_id = ? AND status = 'held' AND expires_at > ?),
			    version = version + 1, updated_at = ?
			WHERE id = ? AND held_count > 0 AND held_first <= ?`, id, now, now, id, now)
		if upd.Error != nil || upd.RowsAffected == 0 {
			return upd.Error
		}
		var err error
		recounted, err = sqliteChangedAt(tx, id, now)
		return err
	})
	return recounted, err
}

func (s *sqliteStore) expiredHoldSlots(ctx context.Context, since, now time.Time, after int64, limit int) ([]int64, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Model(&models.Hold{}).Distinct("slot_id").
		Where("status = ? AND expires_at > ? AND expires_at <= ? AND slot_id > ?", models.HoldHeld, since, now, after).
		Order("slot_id").Limit(limit).Pluck("slot_id", &ids).Error
	return ids, err
}

func (s *sqliteStore) hold(ctx context.Context, ref string) (*models.Hold, error) {
	return sqliteTake[models.Hold](s.db.WithContext(ctx).Where("reference = ?", ref))
}

func (s *sqliteStore) holdByKey(ctx context.Context, key, customerID string) (*models.Hold, error) {
	db := s.db.WithContext(ctx).Where("idempotency_key = ?", key)
	if customerID == "" {
		db = db.Where("customer_id IS NULL")
	} else {
		db = db.Where("customer_id = ?", customerID)
	}
	return sqliteTake[models.Hold](db)
}

// sqliteEndHold ends live hold ref at now in transaction tx, setting its
// status and, for a booked hold, the booking's reference: it answers the
// hold's slot, or errNotClaimed when the hold is not live (or, with
// notStarted, its slot has started). The slot's summary loses the hold.
func sqliteEndHold(tx *gorm.DB, ref string, status models.HoldStatus, bookingRef *string, now time.Time, notStarted bool) (int64, error) {
	var h models.Hold
	err := tx.Where("reference = ? AND status = ? AND expires_at > ?", ref, models.HoldHeld, now).Take(&h).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, errNotClaimed
	}
	if err != nil {
		return 0, err
	}
	if notStarted {
		b, err := sqliteBookability(tx, h.SlotID)
		if err != nil {
			return 0, err
		}
		if !b.start.After(now) {
			return 0, errNotClaimed
		}
	}
	if err := tx.Model(&h).Updates(map[string]any{"status": status, "ended_at": now, "booking_reference": bookingRef}).Error; err != nil {
		return 0, err
	}
	err = tx.Exec(`UPDATE time_slots
		SET held_count = held_count - 1,
		    held_first = CASE WHEN held_count > 1 THEN held_first END,
		    held_until = CASE WHEN held_count > 1 THEN held_until END,
		    version = version + 1, updated_at = ?
		WHERE id = ?`, now, h.SlotID).Error
	return h.SlotID, err
}

func (s *sqliteStore) releaseHold(ctx context.Context, ref string, now time.Time, hook txHook) (*models.TimeSlot, error) {
	var slot *models.TimeSlot
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		id, err := sqliteEndHold(tx, ref, models.HoldReleased, nil, now, false)
		if err != nil {
			return err
		}
		if slot, err = sqliteChangedAt(tx, id, now); err != nil {
			return err
		}
		return hook.runGORM(ctx, tx, txChange{slot: slot})
	})
	return slot, err
}

// sqliteChangedAt reads slot id as a change left it, its version
// included, with its live holds at now, in transaction tx.
func sqliteChangedAt(tx *gorm.DB, id int64, now time.Time) (*models.TimeSlot, error) {
	return sqliteChanged(tx.Raw("SELECT "+sqliteChangedColumns+" FROM time_slots WHERE id = ?", append(heldAt(now, 3), id)...))
}

func (s *sqliteStore) bookHold(ctx context.Context, h *models.Hold, in BookInput, bookingRef string, now time.Time, hook txHook) (*models.Booking, *models.TimeSlot, error) {
	var booking *models.Booking
	var slot *models.TimeSlot
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		id, err := sqliteEndHold(tx, h.Reference, models.HoldBooked, &bookingRef, now, true)
		if err != nil {
			return err
		}
		// The version goes up by two in all, one for each of the change's
		// events (the hold released, the slot booked).
		if err := tx.Exec("UPDATE time_slots SET booked_count = booked_count + 1, version = version + 1 WHERE id = ?", id).Error; err != nil {
			return err
		}
		if slot, err = sqliteChangedAt(tx, id, now); err != nil {
			return err
		}
		booking = newBooking(slot, in, bookingRef, now, 0)
		if err := tx.Create(booking).Error; err != nil {
			return uniqueRefusal(err)
		}
		return hook.runGORM(ctx, tx, txChange{booking: booking, slot: slot})
	})
	if err != nil {
		return nil, nil, err
	}
	return booking, slot, nil
}

func (s *sqliteStore) deleteEndedHolds(ctx context.Context, cutoff time.Time, limit int) (deleted, expired int, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var ids []int64
		var n int64
		if err := tx.Model(&models.Hold{}).Where("expires_at < ?", cutoff).Order("expires_at").Limit(limit).Pluck("id", &ids).Error; err != nil || len(ids) == 0 {
			return err
		}
		if err := tx.Model(&models.Hold{}).Where("id IN ? AND status = ?", ids, models.HoldHeld).Count(&n).Error; err != nil {
			return err
		}
		del := tx.Where("id IN ?", ids).Delete(&models.Hold{})
		deleted, expired = int(del.RowsAffected), int(n)
		return del.Error
	})
	return deleted, expired, err
}

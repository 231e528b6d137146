package slots

import (
	"context"
	"time"

	"timeslots/internal/apperr"
	"timeslots/models"
)

// Limits of a cleanup request (DESIGN.md section 4).
const (
	MinDaysOld = 0
	MaxDaysOld = 3650
)

// cleanupBatch bounds the rows one DELETE removes, so no statement holds
// its locks for long while reads and bookings go on.
const cleanupBatch = 1000

// CleanupResult sums up one cleanup.
type CleanupResult struct {
	Deleted  int
	Batches  int
	Duration time.Duration
}

// Cleanup deletes the slots that ended more than daysOld days ago, in
// bounded batches. Bookings are never deleted: their slot_id becomes NULL
// (ON DELETE SET NULL) and their snapshot of provider, start, end and
// customer stays readable. Progress, if set, gets the running total.
func (m *Manager) Cleanup(ctx context.Context, daysOld int, progress func(deleted int)) (CleanupResult, error) {
	if daysOld < MinDaysOld || daysOld > MaxDaysOld {
		return CleanupResult{}, apperr.Invalid("daysOld", "daysOld must be between %d and %d", MinDaysOld, MaxDaysOld)
	}
	started := time.Now()
	cutoff := m.Now().AddDate(0, 0, -daysOld)
	var res CleanupResult
	for {
		// end_time < cutoff implies start_time < cutoff: the start bound
		// lets the (start_time, id) index find the batch.
		sub := m.db.Model(&models.TimeSlot{}).Select("id").
			Where("start_time < ? AND end_time < ?", cutoff, cutoff).
			Order("start_time, id").Limit(cleanupBatch)
		del := m.db.WithContext(ctx).Where("id IN (?)", sub).Delete(&models.TimeSlot{})
		if del.Error != nil {
			res.Duration = time.Since(started)
			return res, dbError("clean up slots", del.Error)
		}
		res.Deleted += int(del.RowsAffected)
		res.Batches++
		if progress != nil && del.RowsAffected > 0 {
			progress(res.Deleted)
		}
		if del.RowsAffected < cleanupBatch {
			break
		}
	}
	res.Duration = time.Since(started)
	if m.hooks.Deleted != nil {
		m.hooks.Deleted(res.Deleted)
	}
	return res, nil
}

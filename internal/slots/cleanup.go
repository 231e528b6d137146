package slots

import (
	"context"
	"time"

	"timeslots/internal/apperr"
)

// Limits of a cleanup request.
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
		n, err := m.store.deleteEndedSlots(ctx, cutoff, cleanupBatch)
		if err != nil {
			res.Duration = time.Since(started)
			return res, dbError("clean up slots", err)
		}
		res.Deleted += n
		res.Batches++
		if progress != nil && n > 0 {
			progress(res.Deleted)
		}
		if n < cleanupBatch {
			break
		}
	}
	res.Duration = time.Since(started)
	if m.hooks.Deleted != nil {
		m.hooks.Deleted(res.Deleted)
	}
	return res, nil
}

package slots

import (
	"context"
	"errors"
	"fmt"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/feed"
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
//
// Each batch is a statement of its own, committed when it returns. The
// context is checked between batches, and a batch once sent is not
// interrupted (PostgreSQL's statement_timeout still bounds it), so the
// result always counts exactly what is committed: when the context's
// deadline ends the cleanup, the error is DEADLINE_EXCEEDED with the
// figures of the result in its details, and the result is returned too.
func (m *Manager) Cleanup(ctx context.Context, daysOld int, progress func(deleted int)) (CleanupResult, error) {
	ctx = OnPrimary(ctx) // a mutation reads on the primary
	if daysOld < MinDaysOld || daysOld > MaxDaysOld {
		return CleanupResult{}, apperr.Invalid("daysOld", "daysOld must be between %d and %d", MinDaysOld, MaxDaysOld)
	}
	started := time.Now()
	cutoff := m.Now().AddDate(0, 0, -daysOld)
	var res CleanupResult
	var err error
	for {
		if err = ctx.Err(); err != nil {
			err = fmt.Errorf("clean up slots: stopped after %d deleted: %w", res.Deleted, err)
			break
		}
		var deleted []slotRange
		deleted, err = m.store.deleteEndedSlots(context.WithoutCancel(ctx), cutoff, cleanupBatch)
		if err != nil {
			err = dbError("clean up slots", err)
			break
		}
		m.publish(bulkEvents(feed.CleanedUp, deleted)...)
		n := total(deleted)
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
	if m.hooks.Deleted != nil && res.Deleted > 0 {
		m.hooks.Deleted(res.Deleted)
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return res, outOfTime("cleanup", fmt.Sprintf("%d slots deleted in %d batches", res.Deleted, res.Batches),
			map[string]any{"deleted": res.Deleted, "batches": res.Batches, "durationMs": res.Duration.Milliseconds()})
	}
	return res, err
}

// outOfTime is the error of work that the context's deadline stopped
// part way: what it had done, committed, is in done and details.
func outOfTime(what, done string, details map[string]any) error {
	return &apperr.Error{
		Code: apperr.DeadlineExceeded,
		Message: fmt.Sprintf("the %s ran out of time (REQUEST_TIMEOUT) after %s, which stay committed; run it again to go on "+
			"(it is idempotent), or from the command line, which has no deadline", what, done),
		Details: details,
	}
}

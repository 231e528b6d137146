package slots

import (
	"context"
	"errors"
	"time"

	"timeslots/internal/apperr"
	"timeslots/models"
)

// maxJobError bounds the error text kept with a failed run.
const maxJobError = 2000

// ErrRunNotRunning answers the renewal or the end of a run that is no
// longer running: its lease lapsed and it was recorded as interrupted, so
// the tick belongs to another attempt now.
var ErrRunNotRunning = errors.New("job run is no longer running: its lease lapsed")

// ClaimJobRun records the start of job's run for the scheduled tick, with
// a lease of the given length, and answers the new row, or nil when
// another process already claimed that tick. The claim is one INSERT … ON
// CONFLICT DO NOTHING of the tick's first attempt on the unique (job,
// tick, attempt), so of any number of replicas firing the same tick
// exactly one gets the row.
func (m *Manager) ClaimJobRun(ctx context.Context, job string, tick time.Time, instance string, lease time.Duration) (*models.JobRun, error) {
	return m.claimAttempt(ctx, job, tick, 1, instance, lease)
}

// TakeOverJobRun claims the next attempt at the tick of prev, an
// interrupted run, with a lease of the given length, and answers it, or
// nil when another process took it over first (the same claim as
// ClaimJobRun's, on the next attempt).
func (m *Manager) TakeOverJobRun(ctx context.Context, prev models.JobRun, instance string, lease time.Duration) (*models.JobRun, error) {
	if prev.Outcome != models.JobInterrupted {
		return nil, apperr.Invalid("outcome", "only an interrupted run is taken over")
	}
	return m.claimAttempt(ctx, prev.Job, prev.Tick, prev.Attempt+1, instance, lease)
}

func (m *Manager) claimAttempt(ctx context.Context, job string, tick time.Time, attempt int, instance string, lease time.Duration) (*models.JobRun, error) {
	if job == "" || len(job) > 64 {
		return nil, apperr.Invalid("job", "job must be 1 to 64 characters")
	}
	if lease <= 0 {
		return nil, apperr.Invalid("lease", "lease must be positive")
	}
	now := m.Now()
	run := models.JobRun{
		Job: job, Tick: tick.UTC(), Attempt: attempt, Instance: instance,
		StartedAt: now, LeaseUntil: now.Add(lease), Outcome: models.JobRunning,
	}
	claimed, err := m.store.claimJobRun(ctx, &run)
	if err != nil || !claimed {
		return nil, dbError("claim job run", err)
	}
	return &run, nil
}

// RenewJobRun extends the lease of running run id to lease from now. It
// answers ErrRunNotRunning when the run's lease had lapsed and the run was
// recorded as interrupted: its runner must stop.
func (m *Manager) RenewJobRun(ctx context.Context, id int64, lease time.Duration) (time.Time, error) {
	until := m.Now().Add(lease)
	ok, err := m.store.renewJobRun(ctx, id, until)
	if err != nil {
		return time.Time{}, dbError("renew job run", err)
	}
	if !ok {
		return time.Time{}, ErrRunNotRunning
	}
	return until, nil
}

// InterruptLapsedJobRuns records every running run whose lease has lapsed
// (its runner died or stopped renewing) as interrupted, and answers how
// many; an interrupted run's tick can then be taken over.
func (m *Manager) InterruptLapsedJobRuns(ctx context.Context) (int, error) {
	n, err := m.store.interruptLapsedJobRuns(ctx, m.Now(), "lease lapsed: the run's process stopped renewing it")
	if err != nil {
		return 0, dbError("interrupt lapsed job runs", err)
	}
	return n, nil
}

// FinishJobRun records how a claimed run ended: its outcome, a short
// summary of its figures, and the error text of a failure. It answers
// ErrRunNotRunning when the run no longer holds its tick (its lease
// lapsed), and records nothing then.
func (m *Manager) FinishJobRun(ctx context.Context, id int64, outcome models.JobOutcome, details string, runErr error) error {
	switch outcome {
	case models.JobSucceeded, models.JobFailed, models.JobInterrupted:
	default:
		return apperr.Invalid("outcome", "outcome must be succeeded, failed or interrupted")
	}
	errText := ""
	if runErr != nil {
		errText = runErr.Error()
		if len(errText) > maxJobError {
			errText = errText[:maxJobError]
		}
	}
	found, err := m.store.finishJobRun(ctx, id, m.Now(), outcome, details, errText)
	if err != nil {
		return dbError("finish job run", err)
	}
	if !found {
		return ErrRunNotRunning
	}
	return nil
}

// LastJobRuns answers the latest run of every job that has run, by job name.
func (m *Manager) LastJobRuns(ctx context.Context) ([]models.JobRun, error) {
	runs, err := m.store.lastJobRuns(ctx)
	if err != nil {
		return nil, dbError("load last job runs", err)
	}
	return runs, nil
}

// MaxRecentJobRuns bounds RecentJobRuns.
const MaxRecentJobRuns = 100

// RecentJobRuns answers the latest runs of every job, newest first (by
// start, then claim), at most limit of them (1 to MaxRecentJobRuns): the
// admin console's list of maintenance runs.
func (m *Manager) RecentJobRuns(ctx context.Context, limit int) ([]models.JobRun, error) {
	if limit < 1 || limit > MaxRecentJobRuns {
		return nil, apperr.Invalid("limit", "limit must be between 1 and %d", MaxRecentJobRuns)
	}
	runs, err := m.store.recentJobRuns(ctx, limit)
	if err != nil {
		return nil, dbError("load recent job runs", err)
	}
	return runs, nil
}

// LastSucceededJobTick answers the tick of job's latest successful run,
// by any replica, or the zero time when it has none.
func (m *Manager) LastSucceededJobTick(ctx context.Context, job string) (time.Time, error) {
	tick, err := m.store.lastSucceededTick(ctx, job)
	if errors.Is(err, errNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, dbError("load last successful job run", err)
	}
	return tick.UTC(), nil
}

// PruneJobRuns deletes the run records started longer ago than keep, so a
// short schedule cannot grow the table without bound.
func (m *Manager) PruneJobRuns(ctx context.Context, keep time.Duration) (int, error) {
	n, err := m.store.pruneJobRuns(ctx, m.Now().Add(-keep))
	if err != nil {
		return 0, dbError("prune job runs", err)
	}
	return n, nil
}

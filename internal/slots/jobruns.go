package slots

import (
	"context"
	"time"

	"timeslots/internal/apperr"
	"timeslots/models"
)

// maxJobError bounds the error text kept with a failed run.
const maxJobError = 2000

// ClaimJobRun records the start of job's run for the scheduled tick and
// answers the new row, or nil when another process already claimed that
// tick. The claim is one INSERT … ON CONFLICT DO NOTHING on the unique
// (job, tick) pair, so of any number of replicas firing the same tick
// exactly one gets the row.
func (m *Manager) ClaimJobRun(ctx context.Context, job string, tick time.Time, instance string) (*models.JobRun, error) {
	if job == "" || len(job) > 64 {
		return nil, apperr.Invalid("job", "job must be 1 to 64 characters")
	}
	run := models.JobRun{
		Job: job, Tick: tick.UTC(), Instance: instance,
		StartedAt: m.Now(), Outcome: models.JobRunning,
	}
	claimed, err := m.store.claimJobRun(ctx, &run)
	if err != nil || !claimed {
		return nil, dbError("claim job run", err)
	}
	return &run, nil
}

// FinishJobRun records how a claimed run ended: its outcome, a short
// summary of its figures, and the error text of a failure.
func (m *Manager) FinishJobRun(ctx context.Context, id int64, outcome models.JobOutcome, details string, runErr error) error {
	if outcome != models.JobSucceeded && outcome != models.JobFailed {
		return apperr.Invalid("outcome", "outcome must be succeeded or failed")
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
		return notFound("job run", id)
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

// PruneJobRuns deletes the run records started longer ago than keep, so a
// short schedule cannot grow the table without bound.
func (m *Manager) PruneJobRuns(ctx context.Context, keep time.Duration) (int, error) {
	n, err := m.store.pruneJobRuns(ctx, m.Now().Add(-keep))
	if err != nil {
		return 0, dbError("prune job runs", err)
	}
	return n, nil
}

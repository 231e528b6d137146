package slots

import (
	"context"
	"time"

	"gorm.io/gorm/clause"

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
	res := m.db.WithContext(ctx).
		Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "job"}, {Name: "tick"}}, DoNothing: true}).
		Create(&run)
	if res.Error != nil {
		return nil, dbError("claim job run", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, nil
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
	now := m.Now()
	res := m.db.WithContext(ctx).Model(&models.JobRun{}).Where("id = ?", id).
		Updates(map[string]any{"finished_at": now, "outcome": outcome, "details": details, "error": errText})
	if res.Error != nil {
		return dbError("finish job run", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("job run", id)
	}
	return nil
}

// LastJobRuns answers the latest run of every job that has run, by job name.
func (m *Manager) LastJobRuns(ctx context.Context) ([]models.JobRun, error) {
	var runs []models.JobRun
	latest := m.db.Model(&models.JobRun{}).Select("MAX(id)").Group("job")
	if err := m.db.WithContext(ctx).Where("id IN (?)", latest).Order("job").Find(&runs).Error; err != nil {
		return nil, dbError("load last job runs", err)
	}
	return runs, nil
}

// PruneJobRuns deletes the run records started longer ago than keep, so a
// short schedule cannot grow the table without bound.
func (m *Manager) PruneJobRuns(ctx context.Context, keep time.Duration) (int, error) {
	res := m.db.WithContext(ctx).Where("started_at < ?", m.Now().Add(-keep)).Delete(&models.JobRun{})
	if res.Error != nil {
		return 0, dbError("prune job runs", res.Error)
	}
	return int(res.RowsAffected), nil
}

package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/jobs"
	"timeslots/internal/schedule"
	"timeslots/internal/slots"
	"timeslots/models"
)

// A job's standing follows its latest successful run, whichever replica
// ran it: later failed and unfinished runs leave it where it was, and a job
// that never succeeded has none.
func TestStandingsFollowTheLatestSuccess(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		mgr := slots.New(db)
		m := jobs.Maintenance{Slots: mgr, Plan: jobs.Plan{
			Generate: schedule.MustParse("0 2 * * *"), Cleanup: schedule.MustParse("0 3 * * 0"),
		}}
		standings := func() map[string]jobs.Standing {
			t.Helper()
			got, err := m.Standings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]jobs.Standing{}
			for _, s := range got {
				out[s.Job] = s
			}
			return out
		}
		if got := standings(); len(got) != 0 {
			t.Fatalf("standings without runs = %+v, want none", got)
		}

		day := 24 * time.Hour
		t1 := time.Date(2026, 1, 5, 2, 0, 0, 0, time.UTC)
		run := func(tick time.Time, instance string, outcome models.JobOutcome) *models.JobRun {
			t.Helper()
			r, err := mgr.ClaimJobRun(ctx, jobs.GenerateJob, tick, instance, time.Minute)
			if err != nil || r == nil {
				t.Fatalf("claim %v: %v %v", tick, r, err)
			}
			if outcome != models.JobRunning {
				var runErr error
				if outcome == models.JobFailed {
					runErr = errors.New("the database went away")
				}
				if err := mgr.FinishJobRun(ctx, r.ID, outcome, "{}", runErr); err != nil {
					t.Fatal(err)
				}
			}
			return r
		}
		run(t1, "replica-a", models.JobSucceeded)
		run(t1.Add(day), "replica-b", models.JobFailed)
		running := run(t1.Add(2*day), "replica-a", models.JobRunning)

		got := standings()
		want := jobs.Standing{Job: jobs.GenerateJob, LastSuccess: t1, Due: t1.Add(day)}
		if len(got) != 1 || !got[jobs.GenerateJob].LastSuccess.Equal(want.LastSuccess) || !got[jobs.GenerateJob].Due.Equal(want.Due) {
			t.Fatalf("standings after a success, a failure and a running tick = %+v, want only %+v", got, want)
		}

		if err := mgr.FinishJobRun(ctx, running.ID, models.JobSucceeded, "{}", nil); err != nil {
			t.Fatal(err)
		}
		got = standings()
		if s := got[jobs.GenerateJob]; !s.LastSuccess.Equal(t1.Add(2*day)) || !s.Due.Equal(t1.Add(3*day)) {
			t.Fatalf("standing once the running tick succeeded = %+v, want its tick and the next day's", s)
		}
		if _, ok := got[jobs.CleanupJob]; ok {
			t.Fatalf("cleanup never ran but has a standing: %+v", got[jobs.CleanupJob])
		}
	})
}

package slots_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/models"
)

// TestRecentJobRunsAreNewestFirst: the runs of every job, by start, newest
// first, cut at the limit, with their outcomes and errors; a limit out of
// range is refused.
func TestRecentJobRunsAreNewestFirst(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		start := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
		m, clk := newManager(db, start)
		type run struct {
			job     string
			outcome models.JobOutcome
			err     error
		}
		for i, r := range []run{
			{"generate", models.JobSucceeded, nil},
			{"cleanup", models.JobFailed, errors.New("disk full")},
			{"generate", models.JobSucceeded, nil},
			{"generate", models.JobRunning, nil},
		} {
			clk.Set(start.Add(time.Duration(i) * time.Hour))
			claimed, err := m.ClaimJobRun(ctx, r.job, start.Add(time.Duration(i)*time.Hour), "test", time.Hour)
			if err != nil || claimed == nil {
				t.Fatalf("claim %d: %v %v", i, claimed, err)
			}
			if r.outcome != models.JobRunning {
				if err := m.FinishJobRun(ctx, claimed.ID, r.outcome, "", r.err); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, err := m.RecentJobRuns(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		for _, r := range got {
			seen = append(seen, fmt.Sprintf("%s %s %s %q", r.Job, r.StartedAt.UTC().Format("15:04"), r.Outcome, r.Error))
		}
		want := []string{`generate 05:00 running ""`, `generate 04:00 succeeded ""`, `cleanup 03:00 failed "disk full"`}
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Errorf("recent runs\n  %q\nwant\n  %q", seen, want)
		}
		for _, limit := range []int{0, 101} {
			if _, err := m.RecentJobRuns(ctx, limit); apperr.ErrorCode(err) != apperr.BadUserInput {
				t.Errorf("limit %d: %v, want BAD_USER_INPUT", limit, err)
			}
		}
	})
}

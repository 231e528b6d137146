package jobs_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/jobs"
	"timeslots/internal/schedule"
	"timeslots/internal/slots"
	"timeslots/models"
)

var quiet = slog.New(slog.NewJSONHandler(io.Discard, nil))

func demoProvider(t *testing.T, mgr *slots.Manager) {
	t.Helper()
	_, err := mgr.CreateProvider(context.Background(), models.ProviderInput{
		Name: "Clinic", TimeZone: "UTC", SlotMinutes: 60,
		WorkingHours: []models.WorkingHours{
			{Weekday: models.Monday, Start: "09:00", End: "17:00"},
			{Weekday: models.Wednesday, Start: "09:00", End: "17:00"},
			{Weekday: models.Friday, Start: "09:00", End: "17:00"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func newScheduler(t *testing.T, mgr *slots.Manager, opt jobs.Options) *jobs.Scheduler {
	t.Helper()
	if opt.Generate.IsZero() {
		opt.Generate = schedule.MustParse("0 2 * * *")
	}
	if opt.Cleanup.IsZero() {
		opt.Cleanup = schedule.MustParse("0 3 * * 0")
	}
	if opt.Logger == nil {
		opt.Logger = quiet
	}
	s, err := jobs.New(mgr, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunTickRecordsEveryRun(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		mgr := slots.New(db)
		demoProvider(t, mgr)
		s := newScheduler(t, mgr, jobs.Options{Plan: jobs.Plan{GenerateDays: 14, CleanupDaysOld: 30}, Instance: "test"})
		tick := time.Date(2026, 1, 5, 2, 0, 0, 0, time.UTC)

		ran, err := s.RunTick(ctx, jobs.GenerateJob, tick)
		if err != nil || !ran {
			t.Fatalf("first generate tick: ran=%v err=%v", ran, err)
		}
		ran, err = s.RunTick(ctx, jobs.GenerateJob, tick)
		if err != nil || ran {
			t.Fatalf("same tick again: ran=%v err=%v, want not run", ran, err)
		}
		if _, err := s.RunTick(ctx, jobs.CleanupJob, tick); err != nil {
			t.Fatalf("cleanup tick: %v", err)
		}

		last, err := mgr.LastJobRuns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(last) != 2 || last[0].Job != jobs.CleanupJob || last[1].Job != jobs.GenerateJob {
			t.Fatalf("last runs = %+v, want cleanup and generate", last)
		}
		gen := last[1]
		if gen.Outcome != models.JobSucceeded || gen.FinishedAt == nil || gen.Instance != "test" || !gen.Tick.Equal(tick) {
			t.Errorf("generate run = %+v", gen)
		}
		var figures struct{ Created, DaysAhead int }
		if err := json.Unmarshal([]byte(gen.Details), &figures); err != nil {
			t.Fatalf("details %q: %v", gen.Details, err)
		}
		if figures.Created == 0 || figures.DaysAhead != 14 {
			t.Errorf("generate figures = %+v, want slots created for 14 days", figures)
		}
	})
}

// A failing run is recorded as failed with its error, and the next tick
// runs again: nothing is left locked or stuck.
func TestFailedRunIsRecordedAndRetriedAtNextTick(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		mgr := slots.New(db)
		// daysOld outside 0..3650 makes the manager refuse the cleanup.
		s := newScheduler(t, mgr, jobs.Options{Plan: jobs.Plan{GenerateDays: 1, CleanupDaysOld: -1}})
		tick := time.Date(2026, 1, 4, 3, 0, 0, 0, time.UTC)
		for i := range 2 {
			ran, err := s.RunTick(ctx, jobs.CleanupJob, tick.Add(time.Duration(i)*7*24*time.Hour))
			if !ran || err == nil {
				t.Fatalf("tick %d: ran=%v err=%v, want a failed run", i, ran, err)
			}
		}
		last, err := mgr.LastJobRuns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(last) != 1 || last[0].Outcome != models.JobFailed || !strings.Contains(last[0].Error, "daysOld") ||
			!last[0].Tick.Equal(tick.Add(7*24*time.Hour)) || last[0].FinishedAt == nil {
			t.Fatalf("last runs = %+v, want the second tick failed with the daysOld error", last)
		}
	})
}

// Of many processes claiming one tick at the same instant, exactly one wins.
func TestClaimJobRunExactlyOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		mgr := slots.New(db)
		tick := time.Date(2026, 2, 1, 2, 0, 0, 0, time.UTC)
		const n = 16
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			mu     sync.Mutex
			claims int
			errs   []error
		)
		for range n {
			wg.Go(func() {
				<-start
				run, err := mgr.ClaimJobRun(context.Background(), "generate", tick, "x")
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				} else if run != nil {
					claims++
				}
			})
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 || claims != 1 {
			t.Fatalf("claims = %d, errors = %v; want exactly one claim and no error", claims, errs)
		}
	})
}

// Three replicas, each with its own connection pool, run the real gocron
// schedule ("@every 1s") on one PostgreSQL database: every tick that all
// three fired ran exactly once, the other two saw it claimed, and each run
// is recorded as succeeded.
func TestThreeReplicasRunEachTickOnce(t *testing.T) {
	target := dbtest.Target(t, database.Postgres)
	ctx := context.Background()
	type key struct {
		job  string
		tick time.Time
	}
	var (
		mu     sync.Mutex
		events = map[key][]models.JobOutcome{}
	)
	observe := func(job string, tick time.Time, outcome models.JobOutcome, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		k := key{job, tick.UTC()}
		events[k] = append(events[k], outcome)
	}
	var scheds []*jobs.Scheduler
	var firstDB *database.DB
	for i := range 3 {
		db, err := database.Open(ctx, target, database.Options{MaxOpenConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		mgr := slots.New(db)
		if i == 0 {
			firstDB = db
			demoProvider(t, mgr)
		}
		scheds = append(scheds, newScheduler(t, mgr, jobs.Options{
			Plan: jobs.Plan{
				Generate: schedule.MustParse("@every 1s"), GenerateDays: 7,
				Cleanup: schedule.MustParse("@every 1s"), CleanupDaysOld: 30,
			},
			Instance: string(rune('a' + i)), Observe: observe,
		}))
	}
	for _, s := range scheds {
		s.Start()
	}
	// Wait (bounded) until four generate ticks were fired by all three.
	complete := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for k, v := range events {
			if k.job == jobs.GenerateJob && len(v) == 3 {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for complete() < 4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// The outcomes are judged as they stood before the schedulers stop: a
	// run that Stop cancels ends failed, which says nothing about the
	// claims.
	mu.Lock()
	before := make(map[key][]models.JobOutcome, len(events))
	for k, v := range events {
		before[k] = slices.Clone(v)
	}
	mu.Unlock()
	for _, s := range scheds {
		if err := s.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	if n := complete(); n < 4 {
		t.Fatalf("only %d generate ticks fired by all three replicas within 20s", n)
	}

	ran := map[key]bool{}
	for k, outcomes := range before {
		succeeded, skipped := 0, 0
		for _, o := range outcomes {
			switch o {
			case models.JobSucceeded:
				succeeded++
			case jobs.Skipped:
				skipped++
			default:
				t.Errorf("%s tick %v: outcome %q", k.job, k.tick, o)
			}
		}
		if succeeded > 1 {
			t.Errorf("%s tick %v ran %d times", k.job, k.tick, succeeded)
		}
		if len(outcomes) == 3 && (succeeded != 1 || skipped != 2) {
			t.Errorf("%s tick %v: outcomes %v, want one run and two skips", k.job, k.tick, outcomes)
		}
		if succeeded == 1 {
			ran[k] = true
		}
	}
	var rows []models.JobRun
	if err := firstDB.Order("job, tick").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d ticks ran once each; %d tick firings observed across three replicas", len(ran), len(events)*3)
	stoppedRuns := 0
	for _, r := range rows {
		k := key{r.Job, r.Tick.UTC()}
		if !ran[k] && r.Outcome == models.JobFailed && strings.Contains(r.Error, "context canceled") {
			stoppedRuns++ // claimed once, then cancelled by Stop
			continue
		}
		if !ran[k] || r.Outcome != models.JobSucceeded || r.FinishedAt == nil {
			t.Errorf("job_runs row %+v does not match a single successful run", r)
		}
	}
	if len(rows)-stoppedRuns != len(ran) {
		t.Errorf("job_runs has %d rows (%d cancelled by Stop), the replicas ran %d ticks", len(rows), stoppedRuns, len(ran))
	}
}

// CatchUp runs a job's latest tick when the job has run before but missed
// that tick (downtime over the scheduled instant), once across replicas;
// a job that never ran is left to its schedule, so a new database keeps
// exactly what its seed made.
func TestCatchUpRunsAMissedTickOnceAndLeavesNewDatabasesAlone(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		mgr := slots.New(db)
		demoProvider(t, mgr)
		countSlots := func() int64 {
			var n int64
			if err := db.Model(&models.TimeSlot{}).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		s := newScheduler(t, mgr, jobs.Options{Plan: jobs.Plan{GenerateDays: 3, CleanupDaysOld: 30}})
		now := time.Now()
		if ran, err := s.CatchUp(context.Background(), now); err != nil || len(ran) != 0 || countSlots() != 0 {
			t.Fatalf("fresh database: CatchUp ran %v (%v) and made %d slots, want nothing", ran, err, countSlots())
		}

		// Both jobs ran at some earlier tick, then every replica was down
		// over the latest one.
		gen, clean := schedule.MustParse("0 2 * * *"), schedule.MustParse("0 3 * * 0")
		for job, tick := range map[string]time.Time{
			jobs.GenerateJob: gen.Previous(gen.Previous(now).Add(-time.Minute)),
			jobs.CleanupJob:  clean.Previous(clean.Previous(now).Add(-time.Minute)),
		} {
			run, err := mgr.ClaimJobRun(context.Background(), job, tick, "earlier")
			if err != nil || run == nil {
				t.Fatalf("record an earlier %s run: %v", job, err)
			}
			if err := mgr.FinishJobRun(context.Background(), run.ID, models.JobSucceeded, "", nil); err != nil {
				t.Fatal(err)
			}
		}
		ran, err := s.CatchUp(context.Background(), now)
		if err != nil || len(ran) != 2 || countSlots() == 0 {
			t.Fatalf("after downtime: CatchUp ran %v (%v), %d slots; want both jobs and slots", ran, err, countSlots())
		}
		other := newScheduler(t, mgr, jobs.Options{Plan: jobs.Plan{GenerateDays: 3, CleanupDaysOld: 30}})
		if ran, err := other.CatchUp(context.Background(), now); err != nil || len(ran) != 0 {
			t.Fatalf("second replica: CatchUp ran %v (%v), want the ticks left as already run", ran, err)
		}
	})
}

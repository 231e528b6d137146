package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
				run, err := mgr.ClaimJobRun(context.Background(), "generate", tick, "x", time.Minute)
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
	for _, s := range scheds {
		if err := s.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	if n := complete(); n < 4 {
		t.Fatalf("only %d generate ticks fired by all three replicas within 20s", n)
	}

	// The outcomes are judged once every scheduler has stopped, so no run
	// ends between reading the events and reading the rows. A run that
	// Stop cancelled ends interrupted, which says nothing about the claims
	// (a replica still up may take its tick over as a second attempt).
	var rows []models.JobRun
	if err := firstDB.Order("job, tick, attempt").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	attempts := map[key][]models.JobRun{}
	for _, r := range rows {
		k := key{r.Job, r.Tick.UTC()}
		attempts[k] = append(attempts[k], r)
	}
	mu.Lock()
	defer mu.Unlock()
	ranOnce, stopped := 0, 0
	for k, outcomes := range events {
		var ran []models.JobOutcome
		for _, o := range outcomes {
			if o != jobs.Skipped {
				ran = append(ran, o)
			}
		}
		var recorded []models.JobOutcome
		for i, r := range attempts[k] {
			recorded = append(recorded, r.Outcome)
			if r.Attempt != i+1 || r.FinishedAt == nil {
				t.Errorf("%s tick %v: attempt %d recorded as %+v", k.job, k.tick, i+1, r)
			}
			switch {
			case r.Outcome == models.JobSucceeded && i == len(attempts[k])-1:
				ranOnce++
			case r.Outcome == models.JobInterrupted && strings.Contains(r.Error, "context canceled"):
				stopped++
			default:
				t.Errorf("%s tick %v: attempt %+v neither succeeded last nor was cancelled by Stop", k.job, k.tick, r)
			}
		}
		slices.Sort(ran)
		slices.Sort(recorded)
		if !slices.Equal(ran, recorded) {
			t.Errorf("%s tick %v: the replicas ran %v (of %v), job_runs records %v", k.job, k.tick, ran, outcomes, recorded)
		}
		if len(outcomes) == 3 && len(ran) != 1 {
			t.Errorf("%s tick %v: outcomes %v, want one run and two skips", k.job, k.tick, outcomes)
		}
	}
	for k, rs := range attempts {
		if _, ok := events[k]; !ok {
			t.Errorf("job_runs rows %+v were claimed by no replica's run", rs)
		}
	}
	if ranOnce < 4 {
		t.Errorf("%d ticks succeeded, want at least the 4 fired by every replica", ranOnce)
	}
	t.Logf("%d ticks ran once each, %d runs interrupted by Stop; %d tick firings observed across three replicas", ranOnce, stopped, len(events)*3)
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
		now := time.Now()
		clock := func() time.Time { return now }
		s := newScheduler(t, mgr, jobs.Options{Plan: jobs.Plan{GenerateDays: 3, CleanupDaysOld: 30}, Now: clock})
		if ran, err := s.CatchUp(context.Background()); err != nil || len(ran) != 0 || countSlots() != 0 {
			t.Fatalf("fresh database: CatchUp ran %v (%v) and made %d slots, want nothing", ran, err, countSlots())
		}

		// Both jobs ran at some earlier tick, then every replica was down
		// over the latest one.
		gen, clean := schedule.MustParse("0 2 * * *"), schedule.MustParse("0 3 * * 0")
		for job, tick := range map[string]time.Time{
			jobs.GenerateJob: gen.Previous(gen.Previous(now).Add(-time.Minute)),
			jobs.CleanupJob:  clean.Previous(clean.Previous(now).Add(-time.Minute)),
		} {
			run, err := mgr.ClaimJobRun(context.Background(), job, tick, "earlier", time.Minute)
			if err != nil || run == nil {
				t.Fatalf("record an earlier %s run: %v", job, err)
			}
			if err := mgr.FinishJobRun(context.Background(), run.ID, models.JobSucceeded, "", nil); err != nil {
				t.Fatal(err)
			}
		}
		ran, err := s.CatchUp(context.Background())
		if err != nil || len(ran) != 2 || countSlots() == 0 {
			t.Fatalf("after downtime: CatchUp ran %v (%v), %d slots; want both jobs and slots", ran, err, countSlots())
		}
		other := newScheduler(t, mgr, jobs.Options{Plan: jobs.Plan{GenerateDays: 3, CleanupDaysOld: 30}, Now: clock})
		if ran, err := other.CatchUp(context.Background()); err != nil || len(ran) != 0 {
			t.Fatalf("second replica: CatchUp ran %v (%v), want the ticks left as already run", ran, err)
		}
	})
}

// On a new database, replica A claims tick T of generation while replica B
// starts and reads the past runs. B must not take A's claim for a run
// "before" and catch up T's predecessor, a tick from before any replica
// existed, beside A's run: whether B's clock has moved past T by the time
// it looks (it reads the clock after the runs), or lags behind A's.
func TestCatchUpIgnoresARunClaimedWhileItReads(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		for _, tc := range []struct {
			name string
			// clock is B's clock, from T, once the runs are read.
			clock time.Duration
		}{
			{"the clock passes the tick during the read", time.Millisecond},
			{"the clock lags behind the claiming replica's", -time.Millisecond},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				mgr := slots.New(db)
				if err := db.Exec("DELETE FROM job_runs").Error; err != nil {
					t.Fatal(err)
				}
				tick := time.Date(2026, 1, 5, 2, 0, 0, 0, time.UTC) // of "0 2 * * *"
				var mu sync.Mutex
				now := tick.Add(-time.Millisecond)
				b := newScheduler(t, mgr, jobs.Options{
					Plan: jobs.Plan{GenerateDays: 3, CleanupDaysOld: 30}, Instance: "b",
					Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
				})
				jobs.SetReading(b, func() {
					// Replica A fires T and claims it; B's clock moves on.
					if run, err := mgr.ClaimJobRun(ctx, jobs.GenerateJob, tick, "a", time.Minute); err != nil || run == nil {
						t.Errorf("replica A's claim of %v: %v", tick, err)
					}
					mu.Lock()
					now = tick.Add(tc.clock)
					mu.Unlock()
				})
				ran, err := b.CatchUp(ctx)
				if err != nil || len(ran) != 0 {
					t.Errorf("CatchUp ran %v (%v), want nothing", ran, err)
				}
				var rows []models.JobRun
				if err := db.Order("id").Find(&rows).Error; err != nil {
					t.Fatal(err)
				}
				if len(rows) != 1 || rows[0].Instance != "a" || !rows[0].Tick.Equal(tick) {
					t.Errorf("job_runs = %+v, want only replica A's claim of %v", rows, tick)
				}
			})
		}
	})
}

// The runs of one job in one process never overlap: a scheduled tick that
// fires while the catch-up runs the same job waits for it to end, as
// gocron's singleton mode makes scheduled runs wait for each other.
func TestCatchUpAndAScheduledRunOfOneJobDoNotOverlap(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		mgr := slots.New(db)
		demoProvider(t, mgr)
		gen := schedule.MustParse("0 2 * * *")
		now := time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC)
		caughtUp, scheduled := gen.Previous(now), gen.Previous(now).Add(24*time.Hour)
		// Generation ran the day before, so the catch-up runs today's tick.
		earlier, err := mgr.ClaimJobRun(ctx, jobs.GenerateJob, caughtUp.Add(-24*time.Hour), "earlier", time.Minute)
		if err != nil || earlier == nil {
			t.Fatalf("record an earlier run: %v", err)
		}
		if err := mgr.FinishJobRun(ctx, earlier.ID, models.JobSucceeded, "", nil); err != nil {
			t.Fatal(err)
		}
		s := newScheduler(t, mgr, jobs.Options{Plan: jobs.Plan{GenerateDays: 2, CleanupDaysOld: 30}, Now: func() time.Time { return now }})
		entered := make(chan time.Time, 2)
		release := make(chan struct{})
		jobs.SetBeforeRun(s, func(_ context.Context, job string, tick time.Time) {
			entered <- tick
			if tick.Equal(caughtUp) {
				<-release
			}
		})
		catchUp := make(chan error, 1)
		go func() {
			_, err := s.CatchUp(ctx)
			catchUp <- err
		}()
		if got := <-entered; !got.Equal(caughtUp) {
			t.Fatalf("the catch-up ran tick %v, want %v", got, caughtUp)
		}
		fired := make(chan error, 1)
		go func() {
			_, err := s.RunTick(ctx, jobs.GenerateJob, scheduled)
			fired <- err
		}()
		// The scheduled run must not begin while the catch-up runs. Waiting
		// longer only makes an overlap likelier to show, never a false
		// failure.
		select {
		case tick := <-entered:
			t.Errorf("tick %v began while the catch-up ran %v", tick, caughtUp)
		case <-time.After(500 * time.Millisecond):
		}
		close(release)
		if err := <-catchUp; err != nil {
			t.Fatal(err)
		}
		if err := <-fired; err != nil {
			t.Fatal(err)
		}
		if len(entered) != 1 {
			t.Fatalf("the scheduled tick did not run after the catch-up")
		}
	})
}

// settableClock is a wall clock that tests move by hand, for the
// managers' leases.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A run whose process died keeps its claim only until its lease lapses:
// then the run is recorded as interrupted and exactly one of many replicas
// looking at once takes the tick over as attempt 2 and runs it to the end.
// A tick interrupted MaxAttempts times is left alone.
func TestALapsedLeaseIsTakenOverOnceAndTheTickRedone(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		clock := &settableClock{now: time.Now().UTC()}
		mgr := slots.New(db, slots.WithClock(clock.Now))
		demoProvider(t, mgr)
		tick := schedule.MustParse("0 2 * * *").Previous(clock.Now())
		// The dead replica's claim: nobody renews it.
		dead, err := mgr.ClaimJobRun(ctx, jobs.GenerateJob, tick, "dead", time.Minute)
		if err != nil || dead == nil {
			t.Fatalf("claim: %v", err)
		}
		const replicas = 8
		var scheds []*jobs.Scheduler
		for i := range replicas {
			scheds = append(scheds, newScheduler(t, mgr, jobs.Options{
				Plan: jobs.Plan{GenerateDays: 7, CleanupDaysOld: 30}, Instance: fmt.Sprintf("r%d", i), Lease: time.Minute,
			}))
		}
		// Within the lease, nobody takes it over.
		clock.Add(59 * time.Second)
		if ran, err := scheds[0].TakeOver(ctx); err != nil || len(ran) != 0 {
			t.Fatalf("TakeOver within the lease ran %v (%v), want nothing", ran, err)
		}

		clock.Add(2 * time.Second)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			mu    sync.Mutex
			took  []string
		)
		for _, s := range scheds {
			wg.Go(func() {
				<-start
				ran, err := s.TakeOver(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("TakeOver: %v", err)
				}
				took = append(took, ran...)
			})
		}
		close(start)
		wg.Wait()
		if !slices.Equal(took, []string{jobs.GenerateJob}) {
			t.Fatalf("the replicas took over %v, want generation once", took)
		}
		var rows []models.JobRun
		if err := db.Order("attempt").Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[0].Outcome != models.JobInterrupted || rows[0].Instance != "dead" || rows[0].FinishedAt == nil ||
			!strings.Contains(rows[0].Error, "lease lapsed") ||
			rows[1].Attempt != 2 || rows[1].Outcome != models.JobSucceeded || rows[1].Instance == "dead" || !rows[1].Tick.Equal(tick) {
			t.Fatalf("job_runs = %+v, want attempt 1 interrupted and attempt 2 succeeded", rows)
		}
		var figures struct{ Created int }
		if err := json.Unmarshal([]byte(rows[1].Details), &figures); err != nil || figures.Created == 0 {
			t.Errorf("attempt 2 figures %q (%v), want slots created", rows[1].Details, err)
		}

		// A tick interrupted MaxAttempts times stays as it is.
		clock.Add(24 * time.Hour)
		next := tick.Add(24 * time.Hour)
		run, err := mgr.ClaimJobRun(ctx, jobs.GenerateJob, next, "dead", time.Minute)
		if err != nil || run == nil {
			t.Fatal(err)
		}
		for attempt := 2; attempt <= jobs.MaxAttempts; attempt++ {
			clock.Add(2 * time.Minute)
			if n, err := mgr.InterruptLapsedJobRuns(ctx); err != nil || n != 1 {
				t.Fatalf("interrupt attempt %d: %d, %v", attempt-1, n, err)
			}
			prev := *run
			prev.Outcome = models.JobInterrupted
			if run, err = mgr.TakeOverJobRun(ctx, prev, "dead", time.Minute); err != nil || run == nil {
				t.Fatalf("attempt %d: %v", attempt, err)
			}
		}
		clock.Add(2 * time.Minute)
		if ran, err := scheds[0].TakeOver(ctx); err != nil || len(ran) != 0 {
			t.Fatalf("TakeOver after %d attempts ran %v (%v), want nothing", jobs.MaxAttempts, ran, err)
		}
	})
}

// A running run renews its lease, so no replica takes it over however long
// it runs; a run whose lease another replica found lapsed (its process
// stalled) is stopped and leaves the interrupted record as it is; a run
// cancelled by shutdown is recorded as interrupted.
func TestARunRenewsItsLeaseAndStopsWhenItLosesIt(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		mgr := slots.New(db)
		demoProvider(t, mgr)
		const lease = 300 * time.Millisecond
		s := newScheduler(t, mgr, jobs.Options{Plan: jobs.Plan{GenerateDays: 2, CleanupDaysOld: 30}, Instance: "live", Lease: lease})
		holding := make(chan struct{}, 1)
		jobs.SetBeforeRun(s, func(ctx context.Context, job string, tick time.Time) {
			holding <- struct{}{}
			<-ctx.Done() // runs until the run is cancelled
		})
		leaseOf := func(tick time.Time) (r models.JobRun) {
			t.Helper()
			if err := db.Where("tick = ?", tick).Order("attempt DESC").First(&r).Error; err != nil {
				t.Fatal(err)
			}
			return r
		}

		// Renewal: the lease moves on while the run holds.
		tick := time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := s.RunTick(runCtx, jobs.GenerateJob, tick)
			done <- err
		}()
		<-holding
		first := leaseOf(tick).LeaseUntil
		for deadline := time.Now().Add(30 * time.Second); !leaseOf(tick).LeaseUntil.After(first.Add(lease / 2)); {
			if time.Now().After(deadline) {
				t.Fatalf("the lease was not renewed within 30s: %v", leaseOf(tick))
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Shutdown: the cancelled run is recorded as interrupted.
		stop()
		if err := <-done; err == nil {
			t.Errorf("a cancelled run answered no error")
		}
		if r := leaseOf(tick); r.Outcome != models.JobInterrupted || r.FinishedAt == nil || !strings.Contains(r.Error, "context canceled") {
			t.Errorf("the run cancelled by shutdown is recorded as %+v, want interrupted", r)
		}

		// A lost lease: another replica, whose clock is past the lease,
		// records the run as interrupted; the run stops on its next renewal.
		tick = tick.Add(24 * time.Hour)
		go func() {
			_, err := s.RunTick(ctx, jobs.GenerateJob, tick)
			done <- err
		}()
		<-holding
		ahead := slots.New(db, slots.WithClock(func() time.Time { return time.Now().Add(time.Hour) }))
		if n, err := ahead.InterruptLapsedJobRuns(ctx); err != nil || n != 1 {
			t.Fatalf("interrupt: %d, %v", n, err)
		}
		if err := <-done; !errors.Is(err, jobs.ErrLeaseLost) {
			t.Errorf("the run that lost its lease answered %v, want %v", err, jobs.ErrLeaseLost)
		}
		if r := leaseOf(tick); r.Outcome != models.JobInterrupted || !strings.Contains(r.Error, "lease lapsed") {
			t.Errorf("the run that lost its lease is recorded as %+v, want interrupted by the lapse", r)
		}
	})
}

// Package jobs runs the maintenance jobs (daily generation, weekly cleanup)
// on a gocron scheduler in every replica, and makes each scheduled tick run
// exactly once across replicas: before running, a replica claims the tick
// with one INSERT of (job, tick, attempt 1) into job_runs, which a unique
// constraint lets only one replica win. The claim is a lease that the
// runner renews while it runs; a run whose lease lapses (its process died)
// is recorded as interrupted, and a replica takes the tick over as the
// next attempt, claimed the same way. The same row then records the run's
// end, outcome and figures, which the admin stats show under
// "maintenance".
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"

	"timeslots/internal/schedule"
	"timeslots/internal/slots"
	"timeslots/models"
)

// The job names, as recorded in job_runs and shown in stats and metrics.
const (
	GenerateJob = "generate"
	CleanupJob  = "cleanup"
)

// Skipped is the outcome reported to Observe when another replica had
// already claimed the tick.
const Skipped models.JobOutcome = "skipped"

// jobRunsKept is how long run records are kept; the cleanup job prunes
// older ones.
const jobRunsKept = 90 * 24 * time.Hour

// recordTimeout bounds the write of a run's end, which must happen even
// when the run was cancelled by shutdown.
const recordTimeout = 5 * time.Second

// DefaultLease is how long a claimed run holds its tick without renewing.
const DefaultLease = time.Minute

// MaxAttempts bounds the attempts at one tick: a tick whose runs keep
// dying (a process killed by every attempt) is left to the next tick.
const MaxAttempts = 3

// ErrLeaseLost is the error of a run stopped because its lease lapsed:
// another replica may take its tick over.
var ErrLeaseLost = errors.New("the run's lease lapsed")

// Plan is what the maintenance jobs do and when. The composition root
// fills it once from the configuration: the scheduler runs it, and the
// admin stats report it (Maintenance).
type Plan struct {
	Generate       schedule.Schedule
	GenerateDays   int
	Cleanup        schedule.Schedule
	CleanupDaysOld int

	// GenerateMaxDays is the ceiling of each provider's demand-driven
	// horizon (slots.HorizonDays), GenerateDays its floor.
	GenerateMaxDays int
}

// scheduled is one job of the plan and its schedule.
type scheduled struct {
	name  string
	sched schedule.Schedule
}

// jobs answers the plan's jobs with their schedules, in a fixed order.
func (p Plan) jobs() []scheduled {
	return []scheduled{{GenerateJob, p.Generate}, {CleanupJob, p.Cleanup}}
}

// Options configure the scheduler.
type Options struct {
	Plan
	// Instance names this process in job_runs (host and pid).
	Instance string
	Logger   *slog.Logger
	// CatchUp makes Start also run Scheduler.CatchUp, so a tick missed
	// while no replica was up is done at once; the tick claim keeps it to
	// one run if it did happen.
	CatchUp bool
	// Observe, if set, learns every tick's outcome and the run's duration,
	// for metrics.
	Observe func(job string, tick time.Time, outcome models.JobOutcome, d time.Duration)
	// Now is the clock of the catch-up (time.Now when nil), so tests can
	// stand anywhere around a tick.
	Now func() time.Time
	// Lease is how long a claimed run holds its tick unless its runner
	// renews it (DefaultLease when 0). The runner renews it every third of
	// it; every replica looks for lapsed leases every half of it, records
	// their runs as interrupted and takes their ticks over.
	Lease time.Duration
}

// Scheduler runs the maintenance jobs of one process.
type Scheduler struct {
	mgr  *slots.Manager
	opt  Options
	cron gocron.Scheduler

	ctx     context.Context // ends on Stop; bounds the catch-up and takeover runs
	cancel  context.CancelFunc
	catchUp sync.WaitGroup // the catch-up and the lease watcher
	// running holds one token per job: a run of the job holds it, so the
	// runs of one job in this process (scheduled, caught up) never
	// overlap, whichever started them.
	running map[string]chan struct{}

	// Test hooks: reading runs as CatchUp reads the past runs (to let
	// another replica act while it reads), beforeRun when a claimed run
	// begins.
	reading   func()
	beforeRun func(ctx context.Context, job string, tick time.Time)
}

// New builds a scheduler; Start starts it.
func New(mgr *slots.Manager, opt Options) (*Scheduler, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Generate.IsZero() || opt.Cleanup.IsZero() {
		return nil, errors.New("jobs: both schedules are required")
	}
	c, err := gocron.NewScheduler(gocron.WithLocation(time.UTC), gocron.WithStopTimeout(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("jobs: new scheduler: %w", err)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Lease <= 0 {
		opt.Lease = DefaultLease
	}
	s := &Scheduler{mgr: mgr, opt: opt, cron: c, running: map[string]chan struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	now := time.Now()
	for _, j := range opt.jobs() {
		s.running[j.name] = make(chan struct{}, 1)
		def, opts := definition(j.sched, now)
		opts = append(opts, gocron.WithName(j.name), gocron.WithSingletonMode(gocron.LimitModeReschedule))
		name, sched := j.name, j.sched
		task := gocron.NewTask(func(ctx context.Context) {
			_, _ = s.RunTick(ctx, name, sched.Tick(time.Now()))
		})
		if _, err := c.NewJob(def, task, opts...); err != nil {
			_ = c.Shutdown()
			return nil, fmt.Errorf("jobs: schedule %s (%s): %w", j.name, j.sched, err)
		}
	}
	return s, nil
}

// Start begins firing the jobs on their schedules, and watching for lapsed
// leases (TakeOver) at once and then every half lease.
func (s *Scheduler) Start() {
	s.opt.Logger.Info("scheduler started",
		slog.String("generate_schedule", s.opt.Generate.String()), slog.Int("generate_days_ahead", s.opt.GenerateDays),
		slog.String("cleanup_schedule", s.opt.Cleanup.String()), slog.Int("cleanup_days_old", s.opt.CleanupDaysOld),
		slog.Duration("lease", s.opt.Lease))
	s.cron.Start()
	s.catchUp.Go(func() {
		if s.opt.CatchUp {
			if _, err := s.CatchUp(s.ctx); err != nil && s.ctx.Err() == nil {
				s.opt.Logger.Error("catch-up not done", slog.String("error", err.Error()))
			}
		}
		watch := time.NewTicker(s.opt.Lease / 2)
		defer watch.Stop()
		for {
			if _, err := s.TakeOver(s.ctx); err != nil && s.ctx.Err() == nil {
				s.opt.Logger.Error("lapsed job runs not taken over", slog.String("error", err.Error()))
			}
			select {
			case <-s.ctx.Done():
				return
			case <-watch.C:
			}
		}
	})
}

// CatchUp runs each job's latest scheduled tick unless some replica
// already claimed it, so a tick missed while no replica was up is done at
// start. A job that has never run is left to its schedule: on a new
// database a missed tick had nothing to do (production starts without
// providers; the demo seed has generated its own days). It answers the jobs
// it ran.
//
// The clock is read after the past runs: a run that another replica
// claimed while they were read is then at or before the clock's latest
// tick, so it is seen as that tick's run and never taken for a run "before"
// an older tick (which would run a tick from before any replica existed).
// A job whose latest recorded tick is at or after the tick to catch up is
// left alone.
func (s *Scheduler) CatchUp(ctx context.Context) ([]string, error) {
	if s.reading != nil {
		s.reading()
	}
	last, err := s.mgr.LastJobRuns(ctx)
	if err != nil {
		return nil, err
	}
	now := s.opt.Now()
	latest := map[string]time.Time{}
	for _, r := range last {
		latest[r.Job] = r.Tick
	}
	var ran []string
	for _, j := range s.opt.jobs() {
		tick := j.sched.Previous(now)
		prev, hasRun := latest[j.name]
		if !hasRun || tick.IsZero() || !prev.Before(tick) || ctx.Err() != nil {
			continue
		}
		ok, err := s.RunTick(ctx, j.name, tick)
		if err != nil {
			return ran, err
		}
		if ok {
			ran = append(ran, j.name)
		}
	}
	return ran, nil
}

// TakeOver records every run whose lease has lapsed as interrupted, then
// takes over the latest tick of each job whose latest attempt was
// interrupted (by a lapsed lease or a shutdown) and runs it again, unless
// it had MaxAttempts already or another replica takes it first. It answers
// the jobs it ran. (An interrupted tick that a later tick has followed is
// left alone: the later run did the work, which does not depend on the
// tick.)
func (s *Scheduler) TakeOver(ctx context.Context) ([]string, error) {
	n, err := s.mgr.InterruptLapsedJobRuns(ctx)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		s.opt.Logger.Warn("job runs interrupted: their leases lapsed", slog.Int("runs", n))
	}
	last, err := s.mgr.LastJobRuns(ctx)
	if err != nil {
		return nil, err
	}
	var ran []string
	for _, prev := range last {
		if prev.Outcome != models.JobInterrupted || prev.Attempt >= MaxAttempts || ctx.Err() != nil {
			continue
		}
		if _, ok := s.running[prev.Job]; !ok {
			continue // a job this version does not run
		}
		ok, err := s.run(ctx, prev.Job, prev.Tick, func() (*models.JobRun, error) {
			return s.mgr.TakeOverJobRun(ctx, prev, s.opt.Instance, s.opt.Lease)
		})
		if err != nil {
			return ran, err
		}
		if ok {
			ran = append(ran, prev.Job)
		}
	}
	return ran, nil
}

// Stop stops firing and cancels a running job (generation and cleanup stop
// at their next batch; the run is recorded as interrupted, and a replica
// that is still up, or the next to start, takes its tick over: the work is
// idempotent), waiting for it to return.
func (s *Scheduler) Stop() error {
	s.cancel()
	s.catchUp.Wait()
	err := s.cron.Shutdown()
	s.opt.Logger.Info("scheduler stopped")
	return err
}

// RunTick claims job's tick and, if this process won the claim, runs the
// job and records its end. It answers whether this process ran it. A
// failed run is logged and recorded; it never panics out, and the next tick
// simply tries again.
func (s *Scheduler) RunTick(ctx context.Context, job string, tick time.Time) (ran bool, err error) {
	return s.run(ctx, job, tick, func() (*models.JobRun, error) {
		return s.mgr.ClaimJobRun(ctx, job, tick, s.opt.Instance, s.opt.Lease)
	})
}

// run claims an attempt at job's tick with claim and, if this process won
// it, runs the job while renewing the lease, and records its end. The
// job's token keeps its runs in this process one at a time.
func (s *Scheduler) run(ctx context.Context, job string, tick time.Time, claim func() (*models.JobRun, error)) (ran bool, err error) {
	log := s.opt.Logger.With(slog.String("job", job), slog.Time("tick", tick))
	token, ok := s.running[job]
	if !ok {
		return false, fmt.Errorf("unknown job %q", job)
	}
	select {
	case token <- struct{}{}:
		defer func() { <-token }()
	case <-ctx.Done():
		return false, ctx.Err()
	}
	run, err := claim()
	if err != nil && ctx.Err() != nil {
		// Stopped before the claim was made: nothing ran, nothing failed.
		log.Debug("job not started: the scheduler is stopping")
		return false, err
	}
	if err != nil {
		log.Error("job not started: cannot claim its tick", slog.String("error", err.Error()))
		s.observe(job, tick, models.JobFailed, 0)
		return false, err
	}
	if run == nil {
		log.Debug("job tick claimed by another instance")
		s.observe(job, tick, Skipped, 0)
		return false, nil
	}
	log = log.With(slog.Int64("run_id", run.ID))
	if run.Attempt > 1 {
		log = log.With(slog.Int("attempt", run.Attempt))
		log.Warn("job taken over: its previous attempt was interrupted")
	}
	log.Info("job started")
	started := time.Now()
	runCtx, cancelRun := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		s.renew(runCtx, cancelRun, run, log)
	}()
	if s.beforeRun != nil {
		s.beforeRun(runCtx, job, tick)
	}
	details, err := s.execute(runCtx, job, log)
	lost := errors.Is(context.Cause(runCtx), ErrLeaseLost)
	cancelRun(nil)
	<-renewed
	took := time.Since(started)
	outcome := models.JobSucceeded
	switch {
	case err != nil && (lost || ctx.Err() != nil):
		outcome = models.JobInterrupted
		if lost {
			err = fmt.Errorf("%w: %w", ErrLeaseLost, err)
		}
		log.Warn("job interrupted", slog.String("error", err.Error()), slog.Duration("duration", took))
	case err != nil:
		outcome = models.JobFailed
		log.Error("job failed", slog.String("error", err.Error()), slog.Duration("duration", took))
	default:
		log.Info("job finished", slog.String("details", details), slog.Duration("duration", took))
	}
	recCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if ferr := s.mgr.FinishJobRun(recCtx, run.ID, outcome, details, err); ferr != nil {
		// A run whose lease lapsed was recorded as interrupted by the
		// replica that found it; its tick is another attempt's now.
		log.Error("job run not recorded", slog.String("error", ferr.Error()))
		if err == nil {
			err = ferr
		}
		outcome = models.JobInterrupted
	}
	s.observe(job, tick, outcome, took)
	return true, err
}

// renew renews run's lease every third of a lease until ctx ends. When the
// lease is found lapsed (another replica recorded the run as interrupted),
// or no renewal has succeeded for a whole lease, the tick is no longer
// this run's: it cancels the run with ErrLeaseLost.
func (s *Scheduler) renew(ctx context.Context, cancel context.CancelCauseFunc, run *models.JobRun, log *slog.Logger) {
	every := s.opt.Lease / 3
	until := run.LeaseUntil
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next, err := s.mgr.RenewJobRun(ctx, run.ID, s.opt.Lease)
		switch {
		case err == nil:
			until = next
		case ctx.Err() != nil:
			return
		case errors.Is(err, slots.ErrRunNotRunning):
			log.Error("job lease lost: the run was recorded as interrupted")
			cancel(ErrLeaseLost)
			return
		default:
			log.Warn("job lease not renewed", slog.String("error", err.Error()))
			if !s.mgr.Now().Before(until) {
				log.Error("job lease lapsed: stopping the run")
				cancel(ErrLeaseLost)
				return
			}
		}
	}
}

// execute runs the job itself and answers its figures as JSON.
func (s *Scheduler) execute(ctx context.Context, job string, log *slog.Logger) (details string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("job panicked: %v", p)
		}
	}()
	var figures any
	switch job {
	case GenerateJob:
		res, gerr := s.mgr.Generate(ctx, slots.GenerateInput{DaysAhead: s.opt.GenerateDays, MaxDaysAhead: s.opt.GenerateMaxDays})
		err = gerr
		figures = map[string]any{
			"daysAhead": s.opt.GenerateDays, "maxDaysAhead": s.opt.GenerateMaxDays, "maxDays": res.MaxDays, "extended": res.Extended,
			"created": res.Created, "skipped": res.Skipped,
			"providers": res.Providers, "batches": res.Batches, "durationMs": res.Duration.Milliseconds(),
		}
	case CleanupJob:
		res, cerr := s.mgr.Cleanup(ctx, s.opt.CleanupDaysOld, nil)
		err = cerr
		pruned, holds := 0, 0
		if err == nil {
			pruned, err = s.mgr.PruneJobRuns(ctx, jobRunsKept)
		}
		if err == nil {
			holds, err = s.mgr.PruneHolds(ctx)
		}
		figures = map[string]any{
			"daysOld": s.opt.CleanupDaysOld, "deleted": res.Deleted, "batches": res.Batches,
			"durationMs": res.Duration.Milliseconds(), "jobRunsPruned": pruned, "holdsPruned": holds,
		}
	default:
		return "", fmt.Errorf("unknown job %q", job)
	}
	b, _ := json.Marshal(figures)
	return string(b), err
}

// definition answers the gocron job definition of a schedule and the
// options that align it: an "@every d" job first fires at the next
// multiple of d, so replicas started at different moments fire for the
// same ticks.
func definition(s schedule.Schedule, now time.Time) (gocron.JobDefinition, []gocron.JobOption) {
	if every := s.Every(); every > 0 {
		first := now.UTC().Truncate(every).Add(every)
		return gocron.DurationJob(every), []gocron.JobOption{gocron.WithStartAt(gocron.WithStartDateTime(first))}
	}
	return gocron.CronJob(s.String(), false), nil
}

func (s *Scheduler) observe(job string, tick time.Time, outcome models.JobOutcome, d time.Duration) {
	if s.opt.Observe != nil {
		s.opt.Observe(job, tick, outcome, d)
	}
}

// Maintenance answers the "maintenance" object of the admin stats: each
// job's schedule and its last run, read from job_runs, so every replica
// reports the same runs whichever replica executed them.
type Maintenance struct {
	Slots            *slots.Manager
	SchedulerEnabled bool // in this replica
	Plan             Plan
}

// MaintenanceReport implements the REST edge's MaintenanceReporter.
func (m Maintenance) MaintenanceReport(ctx context.Context) (any, error) {
	runs, err := m.Slots.LastJobRuns(ctx)
	if err != nil {
		return nil, err
	}
	last := map[string]*RunReport{}
	for _, r := range runs {
		last[r.Job] = newRunReport(r)
	}
	return MaintenanceReport{
		SchedulerEnabled: m.SchedulerEnabled,
		Jobs: map[string]JobReport{
			GenerateJob: {Schedule: m.Plan.Generate.String(), DaysAhead: m.Plan.GenerateDays, MaxDaysAhead: m.Plan.GenerateMaxDays, LastRun: last[GenerateJob]},
			CleanupJob:  {Schedule: m.Plan.Cleanup.String(), DaysOld: m.Plan.CleanupDaysOld, LastRun: last[CleanupJob]},
		},
	}, nil
}

// MaintenanceReport is the JSON shape of the "maintenance" object.
type MaintenanceReport struct {
	SchedulerEnabled bool                 `json:"schedulerEnabled"`
	Jobs             map[string]JobReport `json:"jobs"`
}

// JobReport is one job's schedule and last run (null before its first).
type JobReport struct {
	Schedule  string     `json:"schedule"`
	DaysAhead int        `json:"daysAhead,omitempty"`
	DaysOld   int        `json:"daysOld,omitempty"`
	LastRun   *RunReport `json:"lastRun"`

	// MaxDaysAhead is the ceiling of the demand-driven horizon.
	MaxDaysAhead int `json:"maxDaysAhead,omitempty"`
}

// RunReport is one recorded run.
type RunReport struct {
	Tick       time.Time       `json:"tick"`
	Attempt    int             `json:"attempt"`
	StartedAt  time.Time       `json:"startedAt"`
	FinishedAt *time.Time      `json:"finishedAt"`
	Outcome    string          `json:"outcome"`
	Instance   string          `json:"instance"`
	Figures    json.RawMessage `json:"figures,omitempty"`
	Error      string          `json:"error,omitempty"`
}

func newRunReport(r models.JobRun) *RunReport {
	out := &RunReport{
		Tick: r.Tick.UTC(), Attempt: r.Attempt, StartedAt: r.StartedAt.UTC(), Outcome: string(r.Outcome),
		Instance: r.Instance, Error: r.Error,
	}
	if r.FinishedAt != nil {
		f := r.FinishedAt.UTC()
		out.FinishedAt = &f
	}
	if json.Valid([]byte(r.Details)) {
		out.Figures = json.RawMessage(r.Details)
	}
	return out
}

// Command timeslots serves the timeslots GraphQL API, its REST shims and its
// maintenance jobs, and offers one-shot subcommands for operators.
//
//	timeslots [serve]               run the server (default)
//	timeslots migrate               apply pending migrations
//	timeslots seed                  seed demo data into an empty database
//	timeslots generate --days N     generate the next N days of slots (more where demand asks)
//	timeslots cleanup --days-old N  delete slots that ended more than N days ago
//	timeslots stats                 print slot statistics and the last job runs as JSON
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"
	_ "time/tzdata" // providers' time zones must resolve on machines without zoneinfo

	"github.com/redis/go-redis/v9"

	"timeslots/internal/auth"
	"timeslots/internal/auth/verifier"
	"timeslots/internal/config"
	"timeslots/internal/database"
	"timeslots/internal/feed"
	"timeslots/internal/httpx"
	"timeslots/internal/jobs"
	"timeslots/internal/metrics"
	"timeslots/internal/ratelimit"
	"timeslots/internal/readcache"
	"timeslots/internal/slots"
	"timeslots/internal/webhooks"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "timeslots:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode answers the process status of run's error: 0 for none, the
// error's own code (2 for usage errors), else 1.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

// exitCoder lets a subcommand choose its exit status (2 for usage errors).
type exitCoder interface{ ExitCode() int }

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }
func (u usageError) ExitCode() int { return 2 }

// run is the whole program: tests call it with their own arguments,
// environment and output, and cancel ctx to stop it. Standard output
// carries only what was asked for (a command's JSON answer, help); the
// logs go to standard error, so `timeslots stats | jq` reads the answer
// alone.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if err := checkURLs(cfg); err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	cmd, rest := "serve", []string{}
	if len(args) > 1 {
		cmd, rest = args[1], args[2:]
	}
	switch cmd {
	case "serve":
		switch {
		case len(rest) == 1 && (rest[0] == "-h" || rest[0] == "--help" || rest[0] == "-help"):
			fmt.Fprint(stdout, serveUsage)
			return nil
		case len(rest) > 0:
			return usageError{fmt.Sprintf("serve takes no arguments, got %q\n%s", rest, serveUsage)}
		}
		tuneGC(getenv, true, cfg.CacheMaxBytes)
		return serve(ctx, cfg, logger)
	case "migrate", "seed", "generate", "cleanup", "stats":
		tuneGC(getenv, false, 0)
		return runCommand(ctx, cmd, rest, cfg, logger, stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown command %q\n%s", cmd, usage)}
	}
}

const usage = `usage: timeslots [command] [flags]

commands:
  serve                      run the HTTP server and scheduler (default)
  migrate                    apply pending database migrations
  seed                       seed demo providers and slots into an empty database
  generate --days N          generate slots for the next N days, more where demand asks
                             [--max-days M] [--providers 1,2,3]
  cleanup --days-old N       delete slots that ended more than N days ago
  stats                      print slot statistics and the last job runs as JSON

each command takes --help. Exit status: 0 done, 1 failure, 2 usage error.
configuration comes from environment variables; see README.md.
`

const serveUsage = `usage: timeslots [serve]

Run the HTTP server (GraphQL, REST, health, metrics) and, unless
SCHEDULER_ENABLED=false, the maintenance jobs, until SIGINT or SIGTERM.
Configuration comes from environment variables; see README.md.
`

// errRedisURL names REDIS_URL without quoting it: it may hold a password.
var errRedisURL = errors.New("REDIS_URL must be a redis:// or rediss:// URL")

// checkURLs reads DATABASE_URL and REDIS_URL with the parsers of the
// packages that connect to them, before anything starts, so a bad URL stops
// every command as a bad setting does.
func checkURLs(cfg *config.Config) error {
	if _, _, err := storeTargets(cfg); err != nil {
		return err
	}
	if cfg.RedisURL != "" {
		if _, err := redis.ParseURL(cfg.RedisURL); err != nil {
			return errRedisURL
		}
	}
	return nil
}

// maintenance maps the configuration onto the maintenance jobs, once: the
// server's scheduler runs its Plan, and the admin stats of REST and the
// CLI report it.
func maintenance(cfg *config.Config, mgr *slots.Manager) jobs.Maintenance {
	return jobs.Maintenance{
		Slots: mgr, SchedulerEnabled: cfg.SchedulerEnabled,
		Plan: jobs.Plan{
			Generate: cfg.GenerateSchedule, GenerateDays: cfg.GenerateDays,
			Cleanup: cfg.CleanupSchedule, CleanupDaysOld: cfg.CleanupDaysOld,
			GenerateMaxDays: cfg.GenerateMaxDays,
		},
	}
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// storeTargets reads DATABASE_URL with DATABASE_DIRECT_URL, and
// DATABASE_REPLICA_URLS.
func storeTargets(cfg *config.Config) (database.Target, []database.Target, error) {
	target, err := database.ParseURL(cfg.DatabaseURL)
	if err != nil {
		return database.Target{}, nil, err
	}
	if target, err = target.WithDirect(cfg.DatabaseDirectURL); err != nil {
		return database.Target{}, nil, err
	}
	replicas, err := database.ParseReplicaURLs(target, cfg.DatabaseReplicaURLs)
	if err != nil {
		return database.Target{}, nil, err
	}
	return target, replicas, nil
}

// openStore opens and migrates the configured database. The server passes
// its request timeout as PostgreSQL's statement_timeout; the one-shot
// commands pass 0 (no limit), so `timeslots migrate` can apply a long
// migration.
func openStore(ctx context.Context, cfg *config.Config, logger *slog.Logger, statementTimeout time.Duration) (db *database.DB, applied int, err error) {
	target, replicas, err := storeTargets(cfg)
	if err != nil {
		return nil, 0, err
	}
	db, err = database.Open(ctx, target, database.Options{
		MaxOpenConns: cfg.DBMaxConns, StatementTimeout: statementTimeout,
		Replicas: replicas, ReplicaMaxLag: cfg.ReplicaMaxLag,
	})
	if err != nil {
		return nil, 0, err
	}
	n, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, 0, err
	}
	logger.Info("database ready", slog.String("dialect", string(db.Dialect)), slog.Int("migrations_applied", n))
	return db, n, nil
}

// openFeed answers the change feed of db: on PostgreSQL one whose
// listener hears the other replicas' changes, on SQLite an in-process one
// (one process owns the file).
// holdSweepInterval is how often each replica looks for holds that
// expired (slots.Manager.SweepExpiredHolds): EXPIRED reaches subscribers
// within about this long of an expiry whichever replica is running.
const holdSweepInterval = 5 * time.Second

func openFeed(ctx context.Context, cfg *config.Config, db *database.DB, logger *slog.Logger) (*feed.Feed, error) {
	if db.Dialect != database.Postgres {
		return feed.NewLocal(), nil
	}
	// LISTEN holds a session: the listener connects straight to the
	// primary (DATABASE_DIRECT_URL), never through a transaction pooler.
	target, err := database.ParseURL(cfg.DirectURL())
	if err != nil {
		return nil, err
	}
	return feed.NewPostgres(ctx, target.DSN, logger)
}

// The server's garbage collector settings unless GOGC or GOMEMLIMIT say
// otherwise. Nearly everything a request allocates is garbage when it
// ends, and the live heap stays a few MiB, so Go's default (GOGC=100)
// collects after every few MiB of requests; GOGC=400 collects a quarter as
// often. The memory limit caps what that may cost where the live heap is
// largest, during a large generation, so peak RSS stays within the
// benchmark's bound (bench/README.md); the server's limit grows by twice
// the read cache's budget (CACHE_MAX_BYTES), which the cache's live
// answers may fill for good, so that a full cache does not keep the
// collector running.
const (
	serverGCPercent   = 400
	serverMemoryLimit = 32 << 20
)

// tuneGC applies the garbage collector settings where the environment sets
// none (the runtime has read GOGC and GOMEMLIMIT itself): the memory limit
// for every command, so a one-shot generation of millions of slots stays
// within the same bound as the server, and GOGC=400 for the server only.
// cacheBytes is the read cache's budget, which the limit adds twice.
func tuneGC(getenv func(string) string, server bool, cacheBytes int64) {
	if server && getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serverMemoryLimit + 2*cacheBytes)
	}
}

// listenedKey carries a channel that serve sends its base URL to once it
// accepts requests: the tests start the server on port 0 at any log level,
// the listening line included.
type listenedKey struct{}

// serve listens first (a port in use is reported before the database is
// touched), then opens and migrates the database, and serves until ctx is
// cancelled, then shuts down in order:
// answer /readyz 503 for SHUTDOWN_DRAIN while serving everything else,
// stop accepting and let in-flight requests finish (for at most
// SHUTDOWN_TIMEOUT), stop the webhook deliveries (those running may
// finish within SHUTDOWN_TIMEOUT; the others are retried later), stop the
// scheduler, stop refreshing the key set of end-user tokens, close Redis,
// close the pool. Once open, each of these
// is released on every way out, a shutdown that runs out of time included
// (serve then reports it).
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
	}
	defer ln.Close() // on the early returns; Serve owns it after
	db, _, err := openStore(ctx, cfg, logger, cfg.RequestTimeout)
	if err != nil {
		return err
	}
	defer db.Close()
	changes, err := openFeed(ctx, cfg, db, logger)
	if err != nil {
		return err
	}
	defer changes.Close() // on the early returns; app.stop closes it first
	// The feed's listener is the first to see PostgreSQL go away (and
	// come back): the pool then pings each connection before lending it
	// again, so a restart costs no request a dead connection.
	changes.Observe(feed.Observer{Health: func(bool) { db.CheckConnections() }})
	met := metrics.New(db.SQL())
	met.WatchReplicas(db.Replicas())
	hooks, err := webhooks.New(db, webhookOptions(cfg, logger, met))
	if err != nil {
		return err
	}
	if err := hooks.Load(ctx); err != nil {
		return fmt.Errorf("read webhook endpoints: %w", err)
	}
	met.WatchWebhookEndpoints(hooks.Endpoints)
	mgr := slots.New(db, slots.WithHooks(met.SlotHooks()), slots.WithReadConcurrency(cfg.DBReadConcurrency),
		slots.WithHorizon(cfg.GenerateDays, cfg.GenerateMaxDays), slots.WithFeed(changes), slots.WithOutbox(hooks),
		slots.WithHoldTTL(cfg.HoldTTL))
	met.WatchHorizons(mgr.Horizons)
	met.WatchFeed(changes)
	met.WatchJobs(maintenance(cfg, mgr).Standings)
	if cfg.SeedDemo {
		res, err := mgr.SeedDemo(ctx)
		if err != nil {
			return fmt.Errorf("seed demo data: %w", err)
		}
		if res.Seeded {
			logger.Info("seeded demo data", slog.Int("providers", res.Providers), slog.Int("slots", res.Generate.Created))
		} else {
			logger.Info("demo data not seeded: " + notSeeded)
		}
	}
	if cfg.AdminToken == "" {
		logger.Warn("ADMIN_TOKEN is not set: admin operations are open to loopback clients only")
	}

	app := &application{cfg: cfg, logger: logger, db: db, slots: mgr, feed: changes, metrics: met, webhooks: hooks}
	// The read cache expires answers by the manager's clock and drops
	// them by the feed's events before the change's method returns.
	app.answers = readcache.New(readcache.Options{MaxBytes: cfg.CacheMaxBytes, MaxAge: cfg.CacheMaxAge, Now: mgr.Now})
	app.answers.Follow(changes)
	met.WatchAnswers(app.answers)
	if err := app.start(); err != nil {
		return err
	}
	defer app.stop() // on the early returns below; after the shutdown it has already run
	handler, err := app.routes()
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// The write deadline outlasts the per-request deadline, so a request
		// that runs out of time still gets its answer written.
		WriteTimeout: max(60*time.Second, cfg.RequestTimeout+10*time.Second),
		IdleTimeout:  120 * time.Second,
		// Above httpx.MaxHeaderBytes, so that httpx.LimitHeaders answers
		// oversized headers in the endpoint's error shape; net/http answers
		// only those over this limit, in plain text.
		MaxHeaderBytes: httpx.ServerMaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// Shutdown does not wait for websockets (hijacked connections): they
	// are closed with 1001 as it starts, before the feed is closed.
	srv.RegisterOnShutdown(app.live.Close)
	base := "http://" + ln.Addr().String()
	logger.Info("listening", slog.String("url", base), slog.String("graphql", base+graphQLPath),
		slog.String("playground", base+playgroundPath), slog.String("rest", base+"/api/time-slots"),
		slog.String("health", base+"/healthz"))
	if ch, ok := ctx.Value(listenedKey{}).(chan<- string); ok {
		ch <- base
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// Every replica sweeps for holds that expired, so that EXPIRED is
	// published (once, by whichever replica recounts the slot first) even
	// when the replica that took a hold, whose timer would have, is gone.
	sweepCtx, stopSweep := context.WithCancel(ctx)
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		mgr.SweepExpiredHolds(sweepCtx, holdSweepInterval, func(err error) {
			logger.Warn("hold expiry sweep failed", slog.String("error", err.Error()))
		})
	}()
	defer func() { stopSweep(); <-swept }() // before the pool closes
	if app.jobs != nil {
		app.jobs.Start()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Drain: /readyz answers 503 so that load balancers stop sending new
	// requests, while everything is still served; then stop accepting.
	app.draining.Store(true)
	logger.Info("shutting down", slog.Duration("drain", cfg.ShutdownDrain), slog.Duration("timeout", cfg.ShutdownGrace))
	if cfg.ShutdownDrain > 0 {
		drained := time.NewTimer(cfg.ShutdownDrain)
		select {
		case <-drained.C:
		case err := <-errc:
			drained.Stop()
			app.stop()
			return fmt.Errorf("serve: %w", err)
		}
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	err = srv.Shutdown(shutCtx)
	if err != nil {
		// Requests still running after SHUTDOWN_TIMEOUT lose their
		// connections, as they would when the process exits.
		_ = srv.Close()
	}
	app.stop()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// start opens what the application runs beside the pool: the verifier of
// end users' tokens (AUTH_JWKS_URL or AUTH_JWT_SECRET), the Redis client
// of the rate limits (REDIS_URL) and the maintenance scheduler
// (SCHEDULER_ENABLED), and starts the webhook deliveries. When it fails,
// it closes what it had opened.
func (a *application) start() error {
	if o := authOptions(a.cfg); o.Enabled() {
		// The verifier lives until stop closes it, not until serve's
		// context ends: requests still in flight during a shutdown keep a
		// key set that can pick up a rotated key.
		v, err := verifier.New(context.Background(), o, a.logger)
		if err != nil {
			return err
		}
		a.customers = v
	}
	logAuthMode(a.logger, a.cfg)
	if a.cfg.RedisURL != "" {
		opt, err := redis.ParseURL(a.cfg.RedisURL)
		if err != nil {
			return errRedisURL
		}
		ratelimit.UseLogger(a.logger)
		a.redis = ratelimit.NewRedisClient(opt, a.cfg.RedisTimeout)
	}
	if a.cfg.SchedulerEnabled {
		s, err := jobs.New(a.slots, jobs.Options{
			Plan:     maintenance(a.cfg, a.slots).Plan,
			Instance: instanceName(), Logger: a.logger, Observe: a.metrics.ObserveJob, CatchUp: true,
			Lease: a.cfg.JobLease,
		})
		if err != nil {
			a.stop()
			return err
		}
		a.jobs = s
	}
	if err := a.webhooks.Start(context.Background()); err != nil {
		a.stop()
		return err
	}
	return nil
}

// stop stops the webhook deliveries (running ones may finish within
// SHUTDOWN_TIMEOUT), stops the scheduler, then closes the change feed
// (which sends the events still queued for other replicas, including
// those of the scheduler's last run, and ends its subscriptions and
// connections), then stops the key set refresh of the verifier, then
// closes Redis, once however often it is called, and leaves the pool to
// its owner.
func (a *application) stop() {
	a.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownGrace)
		if err := a.webhooks.Stop(ctx); err != nil {
			a.logger.Error("webhook deliveries stop", slog.String("error", err.Error()))
		}
		cancel()
		if a.jobs != nil {
			if err := a.jobs.Stop(); err != nil {
				a.logger.Error("scheduler stop", slog.String("error", err.Error()))
			}
		}
		a.feed.Close()
		a.customers.Close() // a nil verifier closes nothing
		if a.redis != nil {
			_ = a.redis.Close()
		}
	})
}

// webhookOptions maps the WEBHOOK_* configuration onto the deliveries'
// options.
func webhookOptions(cfg *config.Config, logger *slog.Logger, met *metrics.Metrics) webhooks.Options {
	return webhooks.Options{
		MaxAttempts: cfg.WebhookMaxAttempts, Timeout: cfg.WebhookTimeout, Backoff: cfg.WebhookBackoff,
		AllowPrivate: cfg.WebhookAllowPrivate, Workers: cfg.WebhookWorkers, Refresh: cfg.WebhookRefresh,
		Poll: cfg.WebhookPoll, Observe: met.ObserveWebhook, Logger: logger,
	}
}

// authOptions maps the AUTH_* configuration onto the verifier's options.
func authOptions(cfg *config.Config) auth.Options {
	return auth.Options{
		JWKSURL: cfg.AuthJWKSURL, JWTSecret: cfg.AuthJWTSecret,
		Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience, Required: cfg.AuthRequired,
	}
}

// logAuthMode logs which end-user authentication is on: the key source
// (the JWKS URL without credentials or query, never the secret), issuer,
// audience and whether customer operations require a token.
func logAuthMode(logger *slog.Logger, cfg *config.Config) {
	attrs := []any{slog.Bool("required", cfg.AuthRequired)}
	switch {
	case cfg.AuthJWKSURL != "":
		shown := "(unparsable)"
		if u, err := url.Parse(cfg.AuthJWKSURL); err == nil {
			shown = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
		}
		attrs = append(attrs, slog.String("mode", "jwks"), slog.String("jwks_url", shown))
	case cfg.AuthJWTSecret != "":
		attrs = append(attrs, slog.String("mode", "hs256"))
	default:
		logger.Info("end-user authentication off: no request is a customer's")
		return
	}
	attrs = append(attrs, slog.String("issuer", cfg.AuthIssuer), slog.String("audience", cfg.AuthAudience))
	logger.Info("end-user authentication on", attrs...)
}

// instanceName names this process in job_runs: host and pid.
func instanceName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// Command bench measures timeslots on PostgreSQL and, in the same run, what
// PostgreSQL itself can do on the same machine (COPY for generation,
// pgbench for reads and bookings), so each figure comes with its ceiling
// and their ratio even on a noisy shared machine. It builds and starts the
// real server binary on a 127.0.0.1 port, over a database it creates and
// drops. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings of one run.
type options struct {
	adminURL        string
	size            int
	with10M         bool
	smoke           bool
	runs            int
	duration        time.Duration
	warmup          time.Duration
	scalingDur      time.Duration
	conns           int
	bookings        int
	hotSlots        int
	hotAttempts     int
	cleanupReadRate int
	cacheBytes      int64
	invalidations   int
	subscribers     int
	subBookings     int
	subBurst        int
	pgLog           string
	profileDir      string
	serverEnv       []string
	readme          string
	chart           string
	only            map[string]bool
	// The topology phase's PgBouncer (host:port, and its pid file, for its
	// CPU) and streaming replica (host:port) of the bench's PostgreSQL.
	pgbouncer, pgbouncerPID, replica string
}

func (o *options) wants(phase string) bool { return len(o.only) == 0 || o.only[phase] }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func defaultAdminURL() string {
	for _, k := range []string{"BENCH_DATABASE_URL", "DATABASE_URL", "TEST_DATABASE_URL"} {
		if v := os.Getenv(k); strings.HasPrefix(v, "postgres") {
			return v
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func parseOptions(args []string) (*options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o := &options{}
	var size, only string
	fs.StringVar(&o.adminURL, "db", defaultAdminURL(), "PostgreSQL URL used to create and drop the bench database")
	fs.StringVar(&size, "size", "1m", "largest slot count: reads, bookings and cleanup run at it; scaling steps 10k, 100k, 1m up to it")
	fs.BoolVar(&o.with10M, "10m", false, "add the 10M-slot scaling step")
	fs.BoolVar(&o.smoke, "smoke", false, "tiny sizes and short runs (CI): fails on errors, never on timing")
	fs.IntVar(&o.runs, "runs", 3, "generation runs per size below 1M (the median is reported)")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured time of each read load")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "warm-up before each read load")
	fs.DurationVar(&o.scalingDur, "scaling-duration", 10*time.Second, "measured time of the read load at each scaling step")
	fs.IntVar(&o.conns, "conns", 32, "concurrent connections of the read and booking loads (and pgbench clients)")
	fs.IntVar(&o.bookings, "bookings", 10000, "distinct slots booked over GraphQL")
	fs.IntVar(&o.hotSlots, "hot-slots", 10, "hot slots for the contention check")
	fs.IntVar(&o.hotAttempts, "hot-attempts", 1000, "concurrent booking attempts on the hot slots")
	fs.IntVar(&o.cleanupReadRate, "cleanup-read-rate", 500, "GraphQL reads per second during the cleanup phase")
	fs.IntVar(&o.subscribers, "subscribers", 1000, "websocket subscribers of the subscriptions phase")
	fs.IntVar(&o.subBookings, "sub-bookings", 100, "bookings made one at a time in the subscriptions phase (each timed to every subscriber)")
	fs.IntVar(&o.subBurst, "sub-burst", 200, "bookings made at once in the subscriptions phase (changes fanned out per second); above SUBSCRIPTION_BUFFER (256) slow subscribers may be ended")
	fs.IntVar(&cliAbove, "cli-above", cliAbove, "generations of more slots than this use the one-shot `timeslots generate` (one GraphQL request would outlast the server's write timeout)")
	fs.StringVar(&o.pgLog, "pg-log", "", "PostgreSQL server log file, to capture the SQL the server sends (default: found)")
	fs.StringVar(&o.profileDir, "profile", "", "also record CPU profiles of the server under each read load into this directory (a separate pass with a benchpprof build)")
	var serverEnv string
	fs.StringVar(&serverEnv, "server-env", "", "extra environment of the measured server, comma-separated (e.g. GOGC=400,DB_MAX_CONNS=32)")
	fs.StringVar(&o.readme, "readme", "", "write the results into this README (between its result markers)")
	fs.StringVar(&o.chart, "chart", "", "write the scaling chart (PNG) here")
	fs.StringVar(&only, "only", "", "comma-separated phases: sqlite,generation,reads,cache,bookings,webhooks,subscriptions,cleanup; topology and holds run only when named here")
	fs.StringVar(&o.pgbouncer, "pgbouncer", "", "host:port of a PgBouncer in transaction mode in front of the bench's PostgreSQL (topology phase)")
	fs.StringVar(&o.pgbouncerPID, "pgbouncer-pidfile", "", "PgBouncer's pid file, to measure its CPU (topology phase)")
	fs.StringVar(&o.replica, "replica", "", "host:port of a streaming replica of the bench's PostgreSQL (topology phase)")
	fs.Int64Var(&o.cacheBytes, "cache-bytes", 256<<20, "CACHE_MAX_BYTES of the cache phase's servers (the default holds every read of 1M slots)")
	fs.IntVar(&o.invalidations, "invalidations", 300, "bookings timed from one server's answer to the other's cache")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if serverEnv != "" {
		o.serverEnv = strings.Split(serverEnv, ",")
	}
	n, err := parseSize(size)
	if err != nil {
		return nil, err
	}
	o.size = n
	if only != "" {
		o.only = map[string]bool{}
		for _, p := range strings.Split(only, ",") {
			o.only[strings.TrimSpace(p)] = true
		}
	}
	if o.smoke {
		o.size = min(o.size, 10000)
		o.runs = 1
		o.duration, o.warmup, o.scalingDur = 2*time.Second, 500*time.Millisecond, 2*time.Second
		o.bookings = min(o.bookings, 500)
		o.cleanupReadRate = min(o.cleanupReadRate, 200)
		o.invalidations = min(o.invalidations, 20)
		o.subscribers, o.subBookings, o.subBurst = min(o.subscribers, 50), min(o.subBookings, 5), min(o.subBurst, 20)
	}
	return o, nil
}

// parseSize reads 14400, 10k, 1m, 1.5M.
func parseSize(s string) (int, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1e3, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1e6, strings.TrimSuffix(s, "m")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f*mult < 1000 {
		return 0, fmt.Errorf("-size %q: want a slot count of at least 1000 such as 100k or 1m", s)
	}
	return int(f * mult), nil
}

// scalingSizes answers the scaling steps up to the largest size.
func (o *options) scalingSizes() []int {
	var out []int
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		if n < o.size {
			out = append(out, n)
		}
	}
	out = append(out, o.size)
	if o.with10M && !slices.Contains(out, 10_000_000) {
		out = append(out, 10_000_000)
	}
	return out
}

func run(ctx context.Context, args []string) error {
	o, err := parseOptions(args)
	if err != nil {
		return err
	}
	started := time.Now()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "timeslots-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Println("building the server…")
	bin, err := buildServer(ctx, root, tmp)
	if err != nil {
		return err
	}
	b, err := createBenchDB(ctx, o.adminURL)
	if err != nil {
		return err
	}
	defer b.drop()
	rep := &report{opts: o, machine: readMachine(ctx, b)}
	fmt.Println(rep.machine.String())

	failures := rep.runAll(ctx, o, b, root, bin, tmp)
	rep.elapsed = time.Since(started)
	rep.machine.LoadEnd = loadAvg()
	fmt.Println()
	fmt.Print(rep.text())
	if o.chart != "" && len(rep.scaling) > 0 {
		if err := writeChart(o.chart, rep.scaling); err != nil {
			failures = append(failures, fmt.Errorf("chart: %w", err))
		}
	}
	if o.readme != "" && len(failures) == 0 {
		if err := rep.writeReadme(o.readme); err != nil {
			failures = append(failures, err)
		}
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d failure(s):\n%w", len(failures), errors.Join(failures...))
	}
	fmt.Printf("bench: all checks passed in %s\n", rep.elapsed.Round(time.Second))
	return nil
}

// runAll runs every wanted phase and answers what failed; a failed phase
// does not stop the others.
// hotCapacity is the capacity of the hot slots: several winners per slot,
// so the check is about counting, not only about one winner.
const hotCapacity = 5

func (r *report) runAll(ctx context.Context, o *options, b *benchDB, root, bin, tmp string) []error {
	var failures []error
	fail := func(phase string, err error) {
		fmt.Printf("FAIL %s: %v\n", phase, err)
		failures = append(failures, fmt.Errorf("%s: %w", phase, err))
	}
	if o.wants("sqlite") {
		fmt.Println("\n== SQLite default: the seed workload")
		f, err := measureSQLite(ctx, bin, tmp, o.runs)
		if err != nil {
			fail("sqlite", err)
		} else {
			r.sqlite = &f
		}
	}
	if ctx.Err() != nil {
		return append(failures, ctx.Err())
	}
	s, err := startServer(ctx, bin, b.url, o.serverEnv...)
	if err != nil {
		return append(failures, err)
	}
	defer func() { s.stop() }()

	if o.wants("generation") {
		fmt.Println("\n== Generation: the seed workload on PostgreSQL")
		ds, err := setupProviders(ctx, b, seedWorkload(), 1)
		if err == nil {
			var f genFigure
			f, err = measureGeneration(ctx, b, bin, o.serverEnv, ds, max(o.runs, 1))
			if err == nil {
				r.seed = &f
			}
		}
		if err != nil {
			fail("generation (seed)", err)
		}
	}
	for _, n := range o.scalingSizes() {
		if ctx.Err() != nil {
			return append(failures, ctx.Err())
		}
		w := sizeWorkload(n)
		fmt.Printf("\n== %s slots (%d providers × %d days × %d slots)\n", humanCount(w.Slots()), w.Providers, w.Days, w.perDay())
		ds, err := setupProviders(ctx, b, w, 1)
		if err != nil {
			fail("setup "+w.Name, err)
			continue
		}
		pt := scalingPoint{Slots: w.Slots()}
		if o.wants("generation") {
			runs := o.runs
			if n >= 1_000_000 {
				runs = 1
			}
			f, err := measureGeneration(ctx, b, bin, o.serverEnv, ds, runs)
			if err != nil {
				fail("generation "+w.Name, err)
				continue
			}
			r.gens = append(r.gens, f)
			pt.GenRowsPerSec, pt.CopyRowsPerSec = f.oursRate(), f.copyRate()
			fmt.Println(f.line())
		} else if _, _, err := copySlots(ctx, b, ds, sameDays); err != nil {
			fail("load "+w.Name, err)
			continue
		}
		if err := b.exec(ctx, "VACUUM ANALYZE time_slots"); err != nil {
			fail("vacuum", err)
			continue
		}
		if n == o.size && o.wants("reads") {
			for _, api := range []readAPI{graphqlRead, restRead} {
				fmt.Printf("-- reads: %s, %d connections, %s after %s warm-up, beside pgbench\n", api.Name, o.conns, o.duration, o.warmup)
				f, err := measureRead(ctx, b, s, bin, tmp, o, ds, api)
				fmt.Println(f.line())
				if err != nil {
					fail("reads "+api.Name, err)
					continue
				}
				r.reads = append(r.reads, f)
				if api.Name == graphqlRead.Name {
					pt.ReadP50, pt.ReadP99 = msf(f.Load.P50), msf(f.Load.P99)
				}
			}
			fmt.Printf("-- reads, for scale: GET /healthz (no database), %d connections, %s after %s warm-up\n", o.conns, o.duration, o.warmup)
			if l, err := healthLoad(ctx, s, o); err != nil {
				fail("reads /healthz", err)
			} else {
				fmt.Println(l.line())
				r.health = &l
			}
			if o.profileDir != "" {
				if err := profileReads(ctx, root, tmp, o.profileDir, b, ds, o); err != nil {
					fail("profile", err)
				}
			}
		} else if o.wants("reads") {
			fmt.Printf("-- reads (scaling): %s, %d connections, %s\n", graphqlRead.Name, o.conns, o.scalingDur)
			l, err := readLoad(ctx, s, ds, graphqlRead, o, o.scalingDur)
			fmt.Println(l.line())
			if err != nil {
				fail("reads "+w.Name, err)
			} else if l.Errors > 0 {
				fail("reads "+w.Name, fmt.Errorf("%d of %d requests failed; first: %s", l.Errors, l.Requests, l.FirstError))
			}
			pt.ReadP50, pt.ReadP99 = msf(l.P50), msf(l.P99)
		}
		r.scaling = append(r.scaling, pt)
		if n == o.size && o.wants("cache") {
			fmt.Println("-- the read cache")
			f, err := measureCache(ctx, b, bin, tmp, o, ds)
			if err != nil {
				fail("cache", err)
			} else {
				r.cache = &f
			}
			// Its bookings are spread over the read windows; the phases
			// after it book runs of ids and count on every slot being free.
			if err := reloadSlots(ctx, b, ds); err != nil {
				fail("reload after the cache", err)
				continue
			}
		}
		if n == o.size && o.wants("bookings") {
			fmt.Printf("-- bookings: %d clients booking %d distinct slots over GraphQL, beside pgbench\n", o.conns, o.bookings)
			f, err := measureBookings(ctx, b, s, bin, tmp, o, ds)
			fmt.Println(f.line())
			if err != nil {
				fail("bookings", err)
			} else {
				r.bookings = &f
			}
			fmt.Printf("-- hot slots: %d attempts released together on %d slots of capacity %d\n", o.hotAttempts, o.hotSlots, hotCapacity)
			hf, err := measureHotSlots(ctx, b, s, o, hotCapacity)
			if hf != nil {
				fmt.Println(hf.line())
			}
			if err != nil {
				fail("hot slots", err)
			} else {
				r.hot = hf
			}
		}
		if n == o.size && o.wants("webhooks") {
			fmt.Printf("-- webhooks: %d clients booking %d distinct slots, %d rounds without and with a webhook; then the backlog's drain and one round beside it\n", o.conns, o.bookings, webhookRounds)
			f, err := measureWebhooks(ctx, b, s, bin, o)
			fmt.Println(f.line())
			if err != nil {
				fail("webhooks", err)
			} else {
				r.webhooks = &f
			}
		}
		if n == o.size && o.only["topology"] {
			fmt.Println("-- topology: PgBouncer and one streaming replica")
			f, err := measureTopology(ctx, b, bin, o, ds)
			r.topology = f
			if err != nil {
				fail("topology", err)
			}
		}
		if n == o.size && o.only["holds"] {
			fmt.Printf("-- holds: GraphQL reads (%d connections, %s) without holds, with every other slot of the read windows booked, then held instead, then with those holds' summaries outdated; then %d rounds of bookSlot and of holdSlot + bookSlot by %d clients\n",
				o.conns, o.duration, holdRounds, o.conns)
			f, err := measureHolds(ctx, b, s, bin, o, ds)
			fmt.Println(f.line())
			if err != nil {
				fail("holds", err)
			} else {
				r.holds = &f
			}
		}
		if n == o.size && o.wants("subscriptions") {
			fmt.Printf("-- subscriptions: %d websocket subscribers to one provider; %d bookings one at a time with them on the booking's server, %d with them on a second server; a burst of %d\n",
				o.subscribers, o.subBookings, o.subBookings, o.subBurst)
			f, err := measureSubscriptions(ctx, b, s, bin, o)
			fmt.Println(f.line())
			if err != nil {
				fail("subscriptions", err)
			} else {
				r.subs = &f
			}
		}
		if n == o.size && o.wants("cleanup") {
			fmt.Printf("-- cleanup: cleanupSlots(daysOld: %d) deleting the oldest 30%% of %s slots while %d GraphQL reads/s go on\n", cleanupDaysOld, humanCount(w.Slots()), o.cleanupReadRate)
			f, err := measureCleanup(ctx, b, s, o, ds)
			fmt.Println(f.line())
			if err != nil {
				fail("cleanup", err)
			} else {
				r.cleanup = &f
			}
		}
	}
	return failures
}

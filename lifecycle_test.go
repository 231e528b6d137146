package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"timeslots/internal/config"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/feed"
	"timeslots/internal/jobs"
	"timeslots/internal/metrics"
	"timeslots/internal/schedule"
	"timeslots/internal/slots"
	"timeslots/models"
)

// relay passes TCP connections through to a real server (Redis,
// PostgreSQL) and counts those still open, so a test sees whether the
// program closed its clients.
type relay struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	accepted int
	open     int
	changed  chan struct{} // signalled when a relayed connection ends
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target, changed: make(chan struct{}, 1)}
	t.Cleanup(func() { _ = ln.Close() })
	go r.serve()
	return r
}

func (r *relay) Addr() string { return r.ln.Addr().String() }

func (r *relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		r.mu.Lock()
		r.accepted++
		r.open++
		r.mu.Unlock()
		go func() {
			_, _ = io.Copy(c, up)
			_ = c.Close()
		}()
		go func() {
			// Until the program closes its end (or the server closes
			// the other, which closes the program's end above).
			_, _ = io.Copy(up, c)
			_ = up.Close()
			_ = c.Close()
			r.mu.Lock()
			r.open--
			r.mu.Unlock()
			select {
			case r.changed <- struct{}{}:
			default:
			}
		}()
	}
}

func (r *relay) counts() (accepted, open int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted, r.open
}

// waitAllClosed fails the test unless every relayed connection ends
// within the timeout.
func (r *relay) waitAllClosed(t *testing.T, what string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		accepted, open := r.counts()
		if open == 0 {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Errorf("%d of the program's %d %s connections are still open %s after run returned", open, accepted, what, timeout)
			return
		}
	}
}

// redisTarget answers the address of TEST_REDIS_URL's server, skipping the
// test without one (failing it when REQUIRE_POSTGRES=1, as CI demands
// every service).
func redisTarget(t *testing.T) string {
	t.Helper()
	raw := os.Getenv("TEST_REDIS_URL")
	if raw == "" {
		if os.Getenv("REQUIRE_POSTGRES") == "1" {
			t.Fatal("TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
		}
		t.Skip("set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run this test")
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	return opt.Addr
}

// SIGTERM while a request outlives SHUTDOWN_TIMEOUT and a scheduled
// generation runs: the shutdown runs out of time, and still the scheduler
// stops (the generation is recorded as interrupted, for another replica to
// take over), and Redis and the pool are closed before run reports the
// error.
func TestShutdownThatRunsOutOfTimeStillStopsEverything(t *testing.T) {
	t.Parallel()
	redisAddr := redisTarget(t)
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			redisRelay := startRelay(t, redisAddr)
			dbURL := dbtest.URL(t, d)
			// The test's own connections go around the relay.
			db := openDatabase(t, dbURL)
			var pgRelay *relay
			if d == database.Postgres {
				u, err := url.Parse(dbURL)
				if err != nil {
					t.Fatal(err)
				}
				pgRelay = startRelay(t, u.Host)
				u.Host = pgRelay.Addr()
				dbURL = u.String()
			}
			// A generation long enough to be running at the signal: the
			// server catches up today's tick at start, generation having
			// run the day before.
			tick := longGeneration(t, db, 8)
			p := startServer(t, testEnv(t, d, map[string]string{
				"DATABASE_URL": dbURL, "SEED_DEMO": "false", "LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "300ms",
				"SCHEDULER_ENABLED": "true", "RATE_LIMIT_RPS": "1000", "RATE_LIMIT_BURST": "1000",
				"GENERATE_DAYS_AHEAD": "365",
				"REDIS_URL":           "redis://" + redisRelay.Addr() + "/0",
				"REDIS_PREFIX":        fmt.Sprintf("timeslots-test:%s:%d", t.Name(), time.Now().UnixNano()),
			}))
			generationRun := func() (r models.JobRun) {
				if err := db.Where("job = ? AND tick = ?", jobs.GenerateJob, tick).Order("attempt DESC").Limit(1).Find(&r).Error; err != nil {
					t.Fatal(err)
				}
				return r
			}
			for deadline := time.Now().Add(30 * time.Second); generationRun().Outcome != models.JobRunning; {
				if time.Now().After(deadline) {
					t.Fatalf("the generation did not start within 30s: %+v\n%s", generationRun(), p.Logs())
				}
				time.Sleep(5 * time.Millisecond)
			}
			// A counted request: the rate limit has talked to Redis.
			resp, err := http.Get(p.URL + "/api/time-slots?limit=1")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if accepted, _ := redisRelay.counts(); resp.StatusCode != http.StatusOK || accepted == 0 {
				t.Fatalf("GET /api/time-slots: %d, %d connections to Redis; want 200 through Redis", resp.StatusCode, accepted)
			}

			// A request that never finishes: its body never comes.
			conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
			p.WaitForLog(t, regexp.MustCompile(`"msg":"request started","request_id":"[^"]+","method":"POST","path":"/graphql"`))

			started := time.Now()
			err = p.Stop()
			if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "shutdown: ") {
				t.Errorf("run returned %v, want the shutdown's deadline error", err)
			}
			if took := time.Since(started); took > 20*time.Second {
				t.Errorf("run took %v to return after the signal; SHUTDOWN_TIMEOUT is 300ms", took)
			}
			logs := p.Logs()
			shutting := strings.Index(logs, `"msg":"shutting down"`)
			stopped := strings.Index(logs, `"msg":"scheduler stopped"`)
			if shutting < 0 || stopped < shutting {
				t.Errorf("the scheduler was not stopped after the shutdown began\n%s", logs)
			}
			if r := generationRun(); r.Outcome != models.JobInterrupted || r.Error == "" || r.FinishedAt == nil {
				t.Errorf("the generation running at the signal is recorded as %+v, want interrupted by the shutdown", r)
			}
			redisRelay.waitAllClosed(t, "Redis", 10*time.Second)
			if pgRelay != nil {
				pgRelay.waitAllClosed(t, "PostgreSQL", 10*time.Second)
			}
		})
	}
}

// longGeneration gives db (migrated here) providers open every day and a
// generation run the day before today's tick of the default schedule, so
// a server started on it with GENERATE_DAYS_AHEAD=365 catches that tick
// up at once and generates for a few seconds (40 slots a day a provider);
// it answers the tick.
func longGeneration(t *testing.T, db *database.DB, providers int) time.Time {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	mgr := slots.New(db)
	var hours []models.WorkingHours
	for _, wd := range models.AllWeekdays {
		hours = append(hours, models.WorkingHours{Weekday: wd, Start: "08:00", End: "18:00"})
	}
	for i := range providers {
		if _, err := mgr.CreateProvider(ctx, models.ProviderInput{
			Name: fmt.Sprintf("Clinic %d", i), TimeZone: "UTC", SlotMinutes: 15, WorkingHours: hours,
		}); err != nil {
			t.Fatal(err)
		}
	}
	gen := schedule.MustParse("0 2 * * *")
	tick := gen.Previous(time.Now())
	earlier, err := mgr.ClaimJobRun(ctx, jobs.GenerateJob, tick.Add(-24*time.Hour), "earlier", time.Minute)
	if err != nil || earlier == nil {
		t.Fatalf("record an earlier run: %v", err)
	}
	if err := mgr.FinishJobRun(ctx, earlier.ID, models.JobSucceeded, "", nil); err != nil {
		t.Fatal(err)
	}
	return tick
}

// When the scheduler cannot be built, start closes the Redis client it
// had opened before it.
func TestAFailedStartClosesTheRedisClient(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(envOf(map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0", "SCHEDULER_ENABLED": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.GenerateSchedule = schedule.Schedule{} // jobs.New refuses a plan without it
	db := dbtest.Open(t, database.SQLite)
	app := &application{
		cfg: cfg, logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		db: db, slots: slots.New(db), feed: feed.NewLocal(), metrics: metrics.New(db.SQL()),
	}
	if err := app.start(); err == nil || !strings.Contains(err.Error(), "schedules") {
		t.Fatalf("start: %v, want the scheduler's refusal", err)
	}
	if app.redis == nil {
		t.Fatal("start failed before it opened the Redis client: nothing to check")
	}
	if err := app.redis.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("the Redis client after a failed start answers %v, want %v", err, redis.ErrClosed)
	}
}

// A DATABASE_URL or REDIS_URL that its client cannot read stops every
// command before anything starts, with one line naming the variable and
// no secret, as a bad setting does.
func TestBadURLsStopEveryCommandBeforeAnythingStarts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"serve with an unknown database", nil, map[string]string{"DATABASE_URL": "mysql://app:pa55w0rd@db/timeslots"}, "DATABASE_URL"},
		{"stats with an unknown database", []string{"stats"}, map[string]string{"DATABASE_URL": "mysql://app:pa55w0rd@db/timeslots"}, "DATABASE_URL"},
		{"serve with a Redis database that is not a number", nil, map[string]string{"REDIS_URL": "redis://:pa55w0rd@127.0.0.1:6379/first"}, "REDIS_URL"},
		{"migrate with an unknown Redis option", []string{"migrate"}, map[string]string{"REDIS_URL": "redis://:pa55w0rd@127.0.0.1:6379/0?pool=pa55w0rd"}, "REDIS_URL"},
		{"serve with a bad setting", nil, map[string]string{"PORT": "70000"}, "PORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "x.db")
			env := map[string]string{"DATABASE_URL": "sqlite:" + file, "PORT": "0"}
			for k, v := range tc.env {
				env[k] = v
			}
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"timeslots"}, tc.args...), envOf(env), &out, &out)
			if err == nil {
				t.Fatal("run started; want a configuration error")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.want+" ") || strings.Contains(msg, "\n") || strings.Contains(msg, "pa55w0rd") {
				t.Errorf("error %q: want one line starting with %s and no secret", msg, tc.want)
			}
			if code := exitCode(err); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if out.Len() != 0 {
				t.Errorf("nothing may start before the configuration is valid; output:\n%s", out.String())
			}
			if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the database file exists (%v): something started", err)
			}
		})
	}
}

// On SIGTERM the server first answers /readyz 503 for SHUTDOWN_DRAIN while
// it serves everything else, as load balancers expect, and only then stops
// accepting and drains.
func TestSIGTERMFailsReadinessWhileServingForTheDrain(t *testing.T) {
	t.Parallel()
	const drain = 5 * time.Second
	p := startServer(t, testEnv(t, database.SQLite, map[string]string{"SHUTDOWN_DRAIN": drain.String()}))
	if a, err := getAnswer(nil, http.MethodGet, p.URL+"/readyz", nil, nil); err != nil || a.Status != http.StatusOK {
		t.Fatalf("/readyz before the signal: %v %v, want 200", a, err)
	}
	signalled := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop() }()
	for {
		a, err := getAnswer(nil, http.MethodGet, p.URL+"/readyz", nil, nil)
		if err != nil {
			t.Fatalf("/readyz during the drain: %v", err)
		}
		if a.Status == http.StatusServiceUnavailable {
			if !strings.Contains(string(a.Body), "shutting down") {
				t.Errorf("/readyz during the drain answers %v, want the reason", a)
			}
			break
		}
		if time.Since(signalled) > drain {
			t.Fatalf("/readyz still answers %v %v after the signal", a, time.Since(signalled))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, path := range []string{"/healthz", "/api/time-slots?limit=1", "/graphql?query=%7BtimeSlots(first:1)%7BtotalCount%7D%7D", "/metrics"} {
		if a, err := getAnswer(nil, http.MethodGet, p.URL+path, nil, nil); err != nil || a.Status != http.StatusOK {
			t.Errorf("GET %s during the drain: %v %v, want 200", path, a, err)
		}
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run: %v", err)
	}
	if took := time.Since(signalled); took < drain {
		t.Errorf("the server stopped %v after the signal, before its %v drain ended", took, drain)
	}
	if _, err := getAnswer(nil, http.MethodGet, p.URL+"/healthz", nil, nil); err == nil {
		t.Errorf("the server still answers after it stopped")
	}
	if !strings.Contains(p.Logs(), `"msg":"shutting down","drain":5000000000`) {
		t.Errorf("no shutting down line with the drain\n%s", p.Logs())
	}
}

// A port already in use is reported before the database is opened or
// migrated: the listener comes first.
func TestAPortInUseIsReportedBeforeTheDatabaseIsTouched(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	path := filepath.Join(t.TempDir(), "untouched.db")
	var out bytes.Buffer
	err = run(context.Background(), []string{"timeslots"}, envOf(map[string]string{
		"HOST": "127.0.0.1", "PORT": fmt.Sprint(taken.Addr().(*net.TCPAddr).Port), "DATABASE_URL": "sqlite:" + path,
	}), &out, &out)
	if err == nil || !strings.HasPrefix(err.Error(), "listen on 127.0.0.1:") || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("run on a port in use: %v, want the listen error", err)
	}
	if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) || strings.Contains(out.String(), "database ready") {
		t.Errorf("the database was opened before the port was found taken (%v):\n%s", serr, out.String())
	}
}

// The start-up banner is a log line like the others, and each request's
// line carries what an operator filters on; probes and scrapes are logged
// at debug level only.
func TestRequestLogLines(t *testing.T) {
	t.Parallel()
	logLines := func(logs, msg string) []map[string]any {
		var out []map[string]any
		for _, line := range strings.Split(logs, "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
				out = append(out, m)
			}
		}
		return out
	}
	for _, level := range []string{"info", "debug"} {
		p := startServer(t, testEnv(t, database.SQLite, map[string]string{"LOG_LEVEL": level, "SEED_DEMO": "false"}))
		if l := logLines(p.Logs(), "listening"); len(l) != 1 || l[0]["url"] != p.URL || l[0]["graphql"] != p.URL+"/graphql" {
			t.Errorf("listening lines %v, want one with the URL %s", l, p.URL)
		}
		h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"log-test/1.0"}}
		body := `{"query":"query Page { timeSlots(first: 1) { nodes { id } } } query Other { __typename }","operationName":"Page"}`
		if a, err := getAnswer(nil, http.MethodPost, p.URL+"/graphql", h, strings.NewReader(body)); err != nil || a.Status != http.StatusOK {
			t.Fatalf("POST /graphql: %v %v", a, err)
		}
		for _, path := range []string{"/api/time-slots?limit=1", "/healthz", "/readyz", "/metrics"} {
			if a, err := getAnswer(nil, http.MethodGet, p.URL+path, h, nil); err != nil || a.Status != http.StatusOK {
				t.Fatalf("GET %s: %v %v", path, a, err)
			}
		}
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		byPath := map[string]map[string]any{}
		for _, l := range logLines(p.Logs(), "request") {
			byPath[l["path"].(string)] = l
		}
		gql := byPath["/graphql"]
		for k, want := range map[string]any{
			"level": "INFO", "method": "POST", "route": "/graphql", "status": 200.0, "client": "127.0.0.1",
			"user_agent": "log-test/1.0", "operation_name": "Page",
		} {
			if gql[k] != want {
				t.Errorf("%s: the /graphql line's %s is %v, want %v: %v", level, k, gql[k], want, gql)
			}
		}
		if d, ok := gql["duration_ms"].(float64); !ok || d <= 0 || gql["bytes"].(float64) <= 0 || gql["request_id"] == "" {
			t.Errorf("%s: the /graphql line has no duration_ms, bytes or request_id: %v", level, gql)
		}
		if rest := byPath["/api/time-slots"]; rest["route"] != "/api/time-slots" || rest["operation_name"] != nil {
			t.Errorf("%s: the REST line is %v, want its route and no operation", level, rest)
		}
		for _, quiet := range []string{"/healthz", "/readyz", "/metrics"} {
			l, logged := byPath[quiet]
			if logged != (level == "debug") || (logged && l["level"] != "DEBUG") {
				t.Errorf("%s: the %s line is %v, want one at DEBUG only when debug is on", level, quiet, l)
			}
		}
	}
}

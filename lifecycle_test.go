package main

import (
	"bytes"
	"context"
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
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"timeslots/internal/config"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/metrics"
	"timeslots/internal/schedule"
	"timeslots/internal/slots"
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

// SIGTERM while a request outlives SHUTDOWN_TIMEOUT: the shutdown runs out
// of time, and still the scheduler stops and Redis and the pool are
// closed before run reports the error.
func TestShutdownThatRunsOutOfTimeStillStopsEverything(t *testing.T) {
	t.Parallel()
	redisAddr := redisTarget(t)
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			redisRelay := startRelay(t, redisAddr)
			dbURL := dbtest.URL(t, d)
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
			p := startServer(t, testEnv(t, d, map[string]string{
				"DATABASE_URL": dbURL, "SEED_DEMO": "false", "LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "300ms",
				"SCHEDULER_ENABLED": "true", "RATE_LIMIT_RPS": "1000", "RATE_LIMIT_BURST": "1000",
				"REDIS_URL":    "redis://" + redisRelay.Addr() + "/0",
				"REDIS_PREFIX": fmt.Sprintf("timeslots-test:%s:%d", t.Name(), time.Now().UnixNano()),
			}))
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
			redisRelay.waitAllClosed(t, "Redis", 10*time.Second)
			if pgRelay != nil {
				pgRelay.waitAllClosed(t, "PostgreSQL", 10*time.Second)
			}
		})
	}
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
		db: db, slots: slots.New(db), metrics: metrics.New(db.SQL()),
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
			err := run(context.Background(), append([]string{"timeslots"}, tc.args...), envOf(env), &out)
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

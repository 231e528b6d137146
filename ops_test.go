package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// envOf turns a map into a getenv.
func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// The admin token and a database password never appear in the logs.
func TestSecretsAreNeverLogged(t *testing.T) {
	t.Parallel()
	const token = "s3cret-admin-token-0123456789"
	url := dbtest.URL(t, database.Postgres)
	withPassword := strings.Replace(url, "postgres@", "postgres:pa55w0rd-in-url@", 1)
	srv := startServer(t, testEnv(t, database.Postgres, map[string]string{
		"DATABASE_URL": withPassword, "ADMIN_TOKEN": token, "LOG_LEVEL": "debug", "SCHEDULER_ENABLED": "true",
		"REDIS_URL": "redis://:redis-pa55@127.0.0.1:1/0", "RATE_LIMIT_RPS": "50",
	}))
	for _, path := range []string{"/healthz", "/api/time-slots"} {
		if _, err := getAnswer(nil, http.MethodGet, srv.URL+path, http.Header{"Authorization": {"Bearer wrong-" + token}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	logs := srv.Logs()
	if !strings.Contains(logs, `"msg":"scheduler started"`) || !strings.Contains(logs, "rate limit store unreachable") {
		t.Fatalf("expected start-up logs, got:\n%s", logs)
	}
	for _, secret := range []string{token, "pa55w0rd-in-url", "redis-pa55"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain the secret %q:\n%s", secret, logs)
		}
	}
}

// Two servers on one Redis share each client's limit, across REST and
// GraphQL: a client alternating between them gets the burst once.
func TestRateLimitIsSharedByReplicasThroughRedis(t *testing.T) {
	t.Parallel()
	redisURL := os.Getenv("TEST_REDIS_URL")
	if redisURL == "" {
		// As for PostgreSQL: a plain `go test ./...` skips with a notice;
		// CI (REQUIRE_POSTGRES=1) demands every service.
		if os.Getenv("REQUIRE_POSTGRES") == "1" {
			t.Fatal("TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
		}
		t.Skip("set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run the shared rate-limit test")
	}
	env := map[string]string{
		"RATE_LIMIT_RPS": "0.1", "RATE_LIMIT_BURST": "6", "REDIS_TIMEOUT": "1s",
		"REDIS_URL": redisURL, "REDIS_PREFIX": fmt.Sprintf("timeslots-test:%s:%d", t.Name(), time.Now().UnixNano()),
	}
	a := startServer(t, testEnv(t, database.SQLite, env))
	b := startServer(t, testEnv(t, database.SQLite, env))
	passed := 0
	for i := range 12 {
		var resp answer
		var err error
		if i%2 == 0 {
			resp, err = getAnswer(nil, http.MethodGet, a.URL+"/api/time-slots?limit=1", nil, nil)
		} else {
			resp, err = getAnswer(nil, http.MethodPost, b.URL+"/graphql", http.Header{"Content-Type": {"application/json"}},
				strings.NewReader(`{"query":"{ providers(first: 1) { totalCount } }"}`))
		}
		if err != nil {
			t.Fatal(err)
		}
		switch resp.Status {
		case http.StatusOK:
			passed++
		case http.StatusTooManyRequests:
			if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(resp.Body), `"RATE_LIMITED"`) {
				t.Errorf("429 without Retry-After or RATE_LIMITED: %v %s", resp.Header, resp.Body)
			}
		default:
			t.Fatalf("request %d: %s", i, resp)
		}
		if resp.Header.Get("RateLimit-Limit") != "6" {
			t.Errorf("request %d: RateLimit-Limit %q, want 6", i, resp.Header.Get("RateLimit-Limit"))
		}
	}
	if passed != 6 {
		t.Errorf("%d of 12 requests passed across two replicas, want the shared burst of 6", passed)
	}
	// Health, readiness and metrics are never limited.
	for range 10 {
		resp, err := getAnswer(nil, http.MethodGet, a.URL+"/healthz", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusOK {
			t.Fatalf("/healthz answered %d after the limit was spent", resp.Status)
		}
	}
}

// metricValue finds one sample in the Prometheus text answer.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return -1
}

// Requests, GraphQL operations, bookings, generation, job runs and the
// pool all show in /metrics, and the admin stats carry the per-operation
// percentiles and the last run of each job.
func TestMetricsAndAdminStatsReportWhatHappened(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{
		"SEED_DEMO": "true", "SCHEDULER_ENABLED": "true",
		"GENERATE_SCHEDULE": "@every 1s", "CLEANUP_SCHEDULE": "0 3 * * 0", "GENERATE_DAYS_AHEAD": "3",
	}))
	from := pastDemoNotice() // bookable demo slots, whatever the hour
	resp, err := getAnswer(nil, http.MethodGet, srv.URL+"/api/time-slots?limit=2&status=available&startDate="+from, nil, nil)
	// (The performance record below counts exactly this one list call.)
	if err != nil || resp.Status != 200 {
		t.Fatalf("list: %v %s", err, resp)
	}
	var list struct{ Data []struct{ ID int64 } }
	if err := json.Unmarshal(resp.Body, &list); err != nil || len(list.Data) == 0 {
		t.Fatalf("list: %v %s", err, resp.Body)
	}
	book := fmt.Sprintf(`mutation Book { bookSlot(input: {slotId: "%d", customer: "ann"}) { booking { id } } }`, list.Data[0].ID)
	for i := range 2 { // the second is refused: ann already holds a seat
		if res := postGraphQL(t, srv.URL, book, nil, nil); res.Status != 200 {
			t.Fatalf("book %d: %s", i, res)
		}
	}
	if res := postGraphQL(t, srv.URL, `{ providers(first: 2) { totalCount } }`, nil, nil); res.Status != 200 {
		t.Fatalf("providers: %s", res)
	}

	// The scheduler's first generate tick comes within about a second.
	var text string
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := getAnswer(nil, http.MethodGet, srv.URL+"/metrics", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		text = string(resp.Body)
		if metricValue(t, text, `timeslots_job_runs_total{job="generate",outcome="succeeded"}`) >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for series, min := range map[string]float64{
		`timeslots_http_request_duration_seconds_count{method="GET",route="/api/time-slots",status="200"}`: 1,
		`timeslots_graphql_operation_duration_seconds_count{operation="mutation Book",outcome="ok"}`:       1,
		`timeslots_graphql_operation_duration_seconds_count{operation="mutation Book",outcome="error"}`:    1,
		`timeslots_graphql_operation_duration_seconds_count{operation="query providers",outcome="ok"}`:     1,
		`timeslots_bookings_total{outcome="ok"}`:                                                           1,
		`timeslots_bookings_total{outcome="SLOT_UNAVAILABLE"}`:                                             1,
		`timeslots_slots_generated_total{result="created"}`:                                                1,
		`timeslots_job_runs_total{job="generate",outcome="succeeded"}`:                                     1,
		`go_sql_max_open_connections{db_name="timeslots"}`:                                                 1,
		`timeslots_feed_events_published_total`:                                                            2, // a generation and a booking
		`timeslots_feed_listener_connected`:                                                                1,
	} {
		if got := metricValue(t, text, series); got < min {
			t.Errorf("%s = %v, want at least %v", series, got, min)
		}
	}

	var stats struct {
		Maintenance struct {
			SchedulerEnabled bool
			Jobs             map[string]struct {
				Schedule string
				LastRun  *struct {
					Tick                  time.Time
					StartedAt, FinishedAt *time.Time
					Outcome               string
					Figures               map[string]any
				}
			}
		}
		Performance struct {
			Operations []struct {
				Operation           string
				Count               int
				P50Ms, P95Ms, P99Ms float64
			}
		}
	}
	// The last run may be one still running: wait (bounded) for one that
	// finished, with its figures.
	for deadline := time.Now().Add(15 * time.Second); ; {
		resp, err = getAnswer(nil, http.MethodGet, srv.URL+"/api/admin/time-slots", nil, nil)
		if err != nil || resp.Status != 200 {
			t.Fatalf("admin stats: %v %s", err, resp)
		}
		if err := json.Unmarshal(resp.Body, &stats); err != nil {
			t.Fatalf("admin stats: %v %s", err, resp.Body)
		}
		if r := stats.Maintenance.Jobs["generate"].LastRun; (r != nil && r.Outcome == "succeeded") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	gen := stats.Maintenance.Jobs["generate"]
	if !stats.Maintenance.SchedulerEnabled || gen.Schedule != "@every 1s" || gen.LastRun == nil ||
		gen.LastRun.StartedAt == nil || gen.LastRun.FinishedAt == nil || gen.LastRun.Outcome != "succeeded" ||
		gen.LastRun.Figures["daysAhead"] != float64(3) {
		t.Errorf("maintenance = %s", resp.Body)
	}
	// Cleanup is listed with its schedule; on a new database its missed
	// tick (last Sunday) is not caught up, so it has not run yet.
	if c := stats.Maintenance.Jobs["cleanup"]; c.Schedule != "0 3 * * 0" || c.LastRun != nil {
		t.Errorf("cleanup = %+v, want its schedule and no run yet", c)
	}
	ops := map[string]int{}
	for _, op := range stats.Performance.Operations {
		ops[op.Operation] = op.Count
		if op.Count > 0 && (op.P50Ms <= 0 || op.P50Ms > op.P95Ms || op.P95Ms > op.P99Ms) {
			t.Errorf("percentiles out of order: %+v", op)
		}
	}
	if ops["GET /api/time-slots"] != 1 || ops["graphql mutation Book"] != 2 || ops["graphql query providers"] != 1 {
		t.Errorf("performance operations = %v", ops)
	}
}

// Requests with the admin token are not rate limited; others are. With
// SCHEDULER_ENABLED=false no scheduler starts, and the stats say so.
func TestAdminTokenIsNotRateLimitedAndSchedulerCanBeOff(t *testing.T) {
	t.Parallel()
	const token = "ops-test-admin-token-0123"
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{
		"ADMIN_TOKEN": token, "RATE_LIMIT_RPS": "0.01", "RATE_LIMIT_BURST": "1",
		"SCHEDULER_ENABLED": "false", "GENERATE_SCHEDULE": "@every 1s", "LOG_LEVEL": "info",
	}))
	do := func(auth string) (int, string) {
		header := http.Header{}
		if auth != "" {
			header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := getAnswer(nil, http.MethodGet, srv.URL+"/api/admin/time-slots", header, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("admin answer Cache-Control %q, want no-store", cc)
		}
		return resp.Status, string(resp.Body)
	}
	for i := range 3 {
		status, body := do(token)
		if status != http.StatusOK {
			t.Fatalf("admin request %d: %d %s", i, status, body)
		}
		if i == 0 && !strings.Contains(body, `"schedulerEnabled":false`) {
			t.Errorf("stats do not say the scheduler is off: %s", body)
		}
	}
	if status, _ := do(""); status != http.StatusUnauthorized {
		t.Fatalf("first request without a token: %d, want 401 (counted, not limited yet)", status)
	}
	if status, body := do(""); status != http.StatusTooManyRequests {
		t.Fatalf("second request without a token: %d %s, want 429", status, body)
	}
	if strings.Contains(srv.Logs(), `"msg":"scheduler started"`) {
		t.Error("the scheduler started with SCHEDULER_ENABLED=false")
	}
}

// Oversized headers and bodies are refused before any handler, in the
// error shape of the endpoint, and every answer carries nosniff and the
// request id.
func TestHeaderAndBodyLimits(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{"MAX_BODY_BYTES": "2048"}))
	for _, tc := range []struct {
		name   string
		path   string
		header http.Header
	}{
		{"100 KiB of headers", "/healthz", http.Header{"X-Padding": {strings.Repeat("x", 100<<10)}}},
		{"a 120 KB URL", "/api/time-slots?cursor=" + strings.Repeat("c", 120_000), nil},
		{"a 120 KB unknown path", "/" + strings.Repeat("p", 120_000), nil},
		{"65 KiB of headers on GraphQL", "/graphql?query=%7B__typename%7D", http.Header{"X-Padding": {strings.Repeat("x", 65<<10)}}},
	} {
		resp, err := getAnswer(nil, http.MethodGet, srv.URL+tc.path, tc.header, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusRequestHeaderFieldsTooLarge || !json.Valid(resp.Body) ||
			!strings.Contains(string(resp.Body), `"code":"BAD_USER_INPUT"`) || !strings.Contains(string(resp.Body), "65536") {
			t.Errorf("%s: %.300s, want a coded 431 naming the limit", tc.name, resp)
		}
	}
	// Headers within the limit pass.
	resp, err := getAnswer(nil, http.MethodGet, srv.URL+"/healthz", http.Header{"X-Padding": {strings.Repeat("x", 60<<10)}}, nil)
	if err != nil || resp.Status != http.StatusOK {
		t.Errorf("60 KiB of headers: %v %v, want 200", resp, err)
	}
	// Past net/http's own limit (1 MiB and 4 KiB), net/http answers 431
	// itself, before any handler; the server goes on serving.
	resp, err = getAnswer(nil, http.MethodGet, srv.URL+"/healthz", http.Header{"X-Padding": {strings.Repeat("x", 1<<20+8<<10)}}, nil)
	if err != nil || resp.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("1 MiB of headers: %v %v, want 431", resp, err)
	}
	if resp, err := getAnswer(nil, http.MethodGet, srv.URL+"/healthz", nil, nil); err != nil || resp.Status != http.StatusOK {
		t.Errorf("after 1 MiB of headers: %v %v", resp, err)
	}
	// What no route takes is a coded error too.
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{http.MethodGet, "/nope", http.StatusNotFound, "NOT_FOUND", ""},
		{http.MethodGet, "/graphql/nope", http.StatusNotFound, "NOT_FOUND", ""},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "BAD_USER_INPUT", "GET, HEAD"},
		{http.MethodDelete, "/metrics", http.StatusMethodNotAllowed, "BAD_USER_INPUT", "GET, HEAD"},
		{http.MethodPut, "/graphql", http.StatusMethodNotAllowed, "BAD_USER_INPUT", "GET, HEAD, OPTIONS, POST"},
	} {
		resp, err := getAnswer(nil, tc.method, srv.URL+tc.path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != tc.status || !json.Valid(resp.Body) || !strings.Contains(string(resp.Body), `"code":"`+tc.code+`"`) ||
			resp.Header.Get("Allow") != tc.allow || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %s (Allow %q), want %d %s", tc.method, tc.path, resp, resp.Header.Get("Allow"), tc.status, tc.code)
		}
	}
	for _, path := range []string{"/graphql", "/api/admin/time-slots"} {
		resp, err := getAnswer(nil, http.MethodPost, srv.URL+path, http.Header{"Content-Type": {"application/json"}},
			strings.NewReader(`{"query":"`+strings.Repeat(" ", 4096)+`{ providers { totalCount } }"}`))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusRequestEntityTooLarge || !strings.Contains(string(resp.Body), "2048") {
			t.Errorf("POST %s with 4 KiB: %s, want 413 naming the limit", path, resp)
		}
	}
	resp, err = getAnswer(nil, http.MethodGet, srv.URL+"/api/time-slots", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("headers %v, want nosniff and X-Request-Id", resp.Header)
	}
}

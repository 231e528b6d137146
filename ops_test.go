package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
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

func TestConfigErrorsStopStartupNamingTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"production without a token", map[string]string{"APP_ENV": "production"}, "ADMIN_TOKEN"},
		{"a cron expression with four fields", map[string]string{"GENERATE_SCHEDULE": "0 2 * *"}, "GENERATE_SCHEDULE"},
		{"an @every with no duration", map[string]string{"CLEANUP_SCHEDULE": "@every soon"}, "CLEANUP_SCHEDULE"},
		{"a negative rate", map[string]string{"RATE_LIMIT_RPS": "-1"}, "RATE_LIMIT_RPS"},
		{"a port out of range", map[string]string{"PORT": "70000"}, "PORT"},
		{"an unknown environment", map[string]string{"APP_ENV": "staging"}, "APP_ENV"},
		{"a malformed proxy list", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/40"}, "TRUSTED_PROXIES"},
		{"a bad database URL", map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			env := map[string]string{"DATABASE_URL": "sqlite:" + t.TempDir() + "/x.db", "PORT": "0"}
			for k, v := range tc.env {
				env[k] = v
			}
			err := run(context.Background(), []string{"timeslots"}, envOf(env), &out)
			if err == nil {
				t.Fatal("run started; want a configuration error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tc.want+" ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting with %s", msg, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("nothing may start before the configuration is valid; output:\n%s", out.String())
			}
		})
	}
}

// The admin token and a database password never appear in the logs.
func TestSecretsAreNeverLogged(t *testing.T) {
	t.Parallel()
	const token = "s3cret-admin-token-0123456789"
	url := dbtest.URL(t, database.Postgres)
	withPassword := strings.Replace(url, "postgres@", "postgres:pa55w0rd-in-url@", 1)
	srv := startServer(t, database.Postgres, map[string]string{
		"DATABASE_URL": withPassword, "ADMIN_TOKEN": token, "LOG_LEVEL": "debug", "SCHEDULER_ENABLED": "true",
		"REDIS_URL": "redis://:redis-pa55@127.0.0.1:1/0", "RATE_LIMIT_RPS": "50",
	})
	for _, path := range []string{"/healthz", "/api/time-slots"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer wrong-"+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
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
		t.Fatal("TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
	}
	env := map[string]string{
		"RATE_LIMIT_RPS": "0.1", "RATE_LIMIT_BURST": "6",
		"REDIS_URL": redisURL, "REDIS_PREFIX": fmt.Sprintf("timeslots-test:%s:%d", t.Name(), time.Now().UnixNano()),
	}
	a := startServer(t, database.SQLite, env)
	b := startServer(t, database.SQLite, env)
	passed := 0
	for i := range 12 {
		var resp *http.Response
		var err error
		if i%2 == 0 {
			resp, err = http.Get(a.URL + "/api/time-slots?limit=1")
		} else {
			resp, err = http.Post(b.URL+"/graphql", "application/json", strings.NewReader(`{"query":"{ providers(first: 1) { totalCount } }"}`))
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			passed++
		case http.StatusTooManyRequests:
			if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"RATE_LIMITED"`) {
				t.Errorf("429 without Retry-After or RATE_LIMITED: %v %s", resp.Header, body)
			}
		default:
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
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
		resp, err := http.Get(a.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz answered %d after the limit was spent", resp.StatusCode)
		}
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// lockedBuffer collects a server's output while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// opsServer is a whole server started through run on port 0.
type opsServer struct {
	URL  string
	Out  *lockedBuffer
	stop context.CancelFunc
	done chan error

	once sync.Once
	err  error
}

// Stop cancels the server and answers run's error; it may be called again.
func (s *opsServer) Stop() error {
	s.once.Do(func() {
		s.stop()
		s.err = <-s.done
	})
	return s.err
}

var listening = regexp.MustCompile(`timeslots listening on (http://\S+)`)

// envOf turns pairs into a getenv.
func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// startOpsServer runs the server with env (PORT=0 and quiet logs added
// unless given) and waits until it listens.
func startOpsServer(t *testing.T, env map[string]string) *opsServer {
	t.Helper()
	full := map[string]string{"PORT": "0", "LOG_LEVEL": "warn", "SCHEDULER_ENABLED": "false", "SEED_DEMO": "false"}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	out := &lockedBuffer{}
	s := &opsServer{Out: out, stop: cancel, done: make(chan error, 1)}
	go func() {
		err := run(ctx, []string{"timeslots"}, envOf(full), pw)
		_ = pw.Close()
		s.done <- err
	}()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			_, _ = out.Write([]byte(line + "\n"))
			if m := listening.FindStringSubmatch(line); m != nil && !sent {
				urlc <- m[1]
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, pr)
		close(urlc)
	}()
	select {
	case u, ok := <-urlc:
		if !ok {
			err := <-s.done
			t.Fatalf("server did not start: %v\n%s", err, out.String())
		}
		s.URL = u
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("server did not start within 60s\n%s", out.String())
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
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
	srv := startOpsServer(t, map[string]string{
		"DATABASE_URL": withPassword, "ADMIN_TOKEN": token, "LOG_LEVEL": "debug", "SCHEDULER_ENABLED": "true",
	})
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/healthz", nil)
	req.Header.Set("Authorization", "Bearer wrong-"+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	logs := srv.Out.String()
	if !strings.Contains(logs, `"msg":"scheduler started"`) {
		t.Fatalf("expected start-up logs, got:\n%s", logs)
	}
	for _, secret := range []string{token, "pa55w0rd-in-url"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain the secret %q:\n%s", secret, logs)
		}
	}
}

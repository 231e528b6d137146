package main

import (
	"bytes"
	"context"
	"regexp"
	"sync"
	"testing"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// testServer is the real program, started by run on port 0 against a fresh
// database, as the end-to-end tests talk to it.
type testServer struct {
	URL         string // http://127.0.0.1:port
	DatabaseURL string
	out         *outputBuffer
}

// Logs answers everything the server has written so far (its JSON logs).
func (s *testServer) Logs() string { return s.out.String() }

// startServer runs the server with env on top of a test configuration
// (port 0, a fresh database of dialect d, no scheduler) and stops it when
// the test ends, failing the test if it does not shut down cleanly.
func startServer(t *testing.T, d database.Dialect, env map[string]string) *testServer {
	t.Helper()
	vars := map[string]string{
		"HOST":              "127.0.0.1",
		"PORT":              "0",
		"DATABASE_URL":      dbtest.URL(t, d),
		"SCHEDULER_ENABLED": "false",
		"RATE_LIMIT_RPS":    "0",
		// Under -race on a busy test machine a 30-day generation on SQLite
		// can outlast the production default of 10 s.
		"REQUEST_TIMEOUT": "2m",
	}
	for k, v := range env {
		vars[k] = v
	}
	out := &outputBuffer{ready: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"timeslots"}, func(k string) string { return vars[k] }, out)
	}()
	var url string
	select {
	case url = <-out.ready:
	case err := <-done:
		cancel()
		t.Fatalf("server stopped before listening: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	return &testServer{URL: url, DatabaseURL: vars["DATABASE_URL"], out: out}
}

var listeningLine = regexp.MustCompile(`listening on (http://\S+)`)

// outputBuffer collects the server's output and reports its address as
// soon as the "listening on" line is written.
type outputBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	ready  chan string
	signal bool
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if !b.signal {
		if m := listeningLine.FindSubmatch(b.buf.Bytes()); m != nil {
			b.signal = true
			b.ready <- string(m[1])
		}
	}
	return n, err
}

func (b *outputBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

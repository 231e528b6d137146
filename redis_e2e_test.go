package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"timeslots/internal/database"
)

// hungRedis accepts connections and reads them, never answering, as a
// Redis that hangs does.
func hungRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	return ln.Addr().String()
}

// refusingRedis answers an address where connections are refused.
func refusingRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// A production server whose Redis hangs or refuses answers forty parallel
// requests on /api and /graphql at once, each within a few timeouts and
// none with an error, limits them per replica, and logs the fallback
// once.
func TestRedisTroubleStallsNoRequest(t *testing.T) {
	t.Parallel()
	for name, addr := range map[string]func(*testing.T) string{"hung": hungRedis, "refusing": refusingRedis} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testEnv(t, database.SQLite, map[string]string{
				"APP_ENV": "production", "ADMIN_TOKEN": "redis-trouble-admin-token",
				"RATE_LIMIT_RPS": "50", "RATE_LIMIT_BURST": "100",
				"REDIS_URL": "redis://" + addr(t) + "/0", "REDIS_TIMEOUT": "100ms",
			}))
			client := &http.Client{Timeout: 10 * time.Second}
			start := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex
			var slowest time.Duration
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					t0 := time.Now()
					var resp answer
					var err error
					if i%2 == 0 {
						resp, err = getAnswer(client, http.MethodGet, srv.URL+"/api/time-slots?limit=1", nil, nil)
					} else {
						resp, err = getAnswer(client, http.MethodPost, srv.URL+"/graphql", http.Header{"Content-Type": {"application/json"}},
							strings.NewReader(`{"query":"{ providers(first: 1) { totalCount } }"}`))
					}
					took := time.Since(t0)
					if err != nil || resp.Status != http.StatusOK || resp.Header.Get("RateLimit-Limit") != "100" {
						t.Errorf("request %d after %v: %v %v", i, took, err, resp)
					}
					mu.Lock()
					slowest = max(slowest, took)
					mu.Unlock()
				}()
			}
			close(start)
			wg.Wait()
			if slowest > 3*time.Second {
				t.Errorf("the slowest of 40 parallel requests took %v with REDIS_TIMEOUT=100ms", slowest)
			}
			if n := strings.Count(srv.Logs(), "rate limit store unreachable"); n != 1 {
				t.Errorf("%d fallback lines, want 1\n%s", n, srv.Logs())
			}
		})
	}
}

package main

import (
	"fmt"
	"net/http"
	"testing"

	"timeslots/internal/database"
)

// Behind a trusted loopback proxy in development (no ADMIN_TOKEN), no
// X-Forwarded-For hop makes a remote or unknown client an admin, and
// clients written as IP:port are limited each on its own.
func TestForwardedForHopsAreReadStrictly(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{
		"TRUSTED_PROXIES": "127.0.0.1", "RATE_LIMIT_RPS": "0.01", "RATE_LIMIT_BURST": "1",
	}))
	via := func(path, hop string) answer {
		t.Helper()
		h := http.Header{}
		if hop != "" {
			h.Set("X-Forwarded-For", hop)
		}
		a, err := getAnswer(nil, http.MethodGet, srv.URL+path, h, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, hop := range []string{"198.51.100.7:5555", "[2001:db8::1]", "unknown", "127.1", "0177.0.0.1"} {
		if a := via("/api/admin/time-slots", hop); a.Status != http.StatusForbidden {
			t.Errorf("admin stats for hop %q: %s, want 403", hop, a)
		}
	}
	if a := via("/api/admin/time-slots", ""); a.Status != http.StatusOK {
		t.Errorf("admin stats from the loopback client itself: %s, want 200", a)
	}
	for i := range 30 {
		if a := via("/api/time-slots?limit=1", fmt.Sprintf("203.0.113.%d:5555", i+1)); a.Status != http.StatusOK {
			t.Errorf("client %d's first request: %s, want 200 (a bucket of its own)", i, a)
		}
	}
	if a := via("/api/time-slots?limit=1", "203.0.113.1:6666"); a.Status != http.StatusTooManyRequests {
		t.Errorf("client 0's second request (another port): %d, want 429", a.Status)
	}
}

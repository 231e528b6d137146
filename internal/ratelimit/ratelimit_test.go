package ratelimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"timeslots/internal/apperr"
	"timeslots/internal/httpx"
	"timeslots/internal/ratelimit"
)

// limited builds the middleware chain of the server around an OK handler;
// at /edge an edge with its own error shape supplies the refusal writer.
func limited(t *testing.T, opt ratelimit.Options) http.Handler {
	t.Helper()
	l, err := ratelimit.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	return httpx.ClientIPs(nil)(httpx.Refusals(edgeRefusal, httpx.Paths{"/edge"})(l.Middleware(ok)))
}

// edgeRefusal writes refusals as plain text the tests recognise.
func edgeRefusal(w http.ResponseWriter, r *http.Request, status int, err error) {
	w.WriteHeader(status)
	fmt.Fprintf(w, "edge refusal %s: %s", apperr.ErrorCode(err), apperr.ErrorMessage(err))
}

func hit(h http.Handler, remote, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// A burst of 3 in a window of 100 s: three requests pass, counting down
// RateLimit-Remaining; the fourth is refused with Retry-After and the
// error body of its endpoint; another client is not affected.
func TestLimitPerClient(t *testing.T) {
	t.Parallel()
	h := limited(t, ratelimit.Options{RPS: 0.03, Burst: 3})
	const client = "203.0.113.1:1000"
	for i := range 3 {
		w := hit(h, client, "/api/time-slots")
		if w.Code != 200 || w.Header().Get("RateLimit-Limit") != "3" || w.Header().Get("RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("request %d: %d, Limit %q, Remaining %q", i, w.Code, w.Header().Get("RateLimit-Limit"), w.Header().Get("RateLimit-Remaining"))
		}
		if reset, err := strconv.Atoi(w.Header().Get("RateLimit-Reset")); err != nil || reset < 1 || reset > 100 {
			t.Errorf("RateLimit-Reset %q, want 1..100 seconds", w.Header().Get("RateLimit-Reset"))
		}
	}
	w := hit(h, client, "/api/time-slots")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("fourth request: %d, want 429", w.Code)
	}
	// One request in 3 comes back every 100/3 s on average; the exact wait
	// depends on where in the window the test runs, but never exceeds two
	// windows.
	if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 200 {
		t.Errorf("Retry-After %q, want 1..200 seconds", w.Header().Get("Retry-After"))
	}
	if w.Header().Get("RateLimit-Remaining") != "0" {
		t.Errorf("RateLimit-Remaining %q, want 0", w.Header().Get("RateLimit-Remaining"))
	}
	var rest httpx.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &rest); err != nil || rest.Error.Code != "RATE_LIMITED" || rest.Error.Message == "" {
		t.Errorf("REST body %s, want {\"error\":{\"code\":\"RATE_LIMITED\",…}}", w.Body.String())
	}

	g := hit(h, client, "/edge")
	if g.Code != 429 || g.Header().Get("Retry-After") == "" || !strings.HasPrefix(g.Body.String(), "edge refusal RATE_LIMITED: rate limit exceeded") {
		t.Errorf("/edge answer %d %s, want 429 with the edge's own RATE_LIMITED error", g.Code, g.Body.String())
	}

	if w := hit(h, "203.0.113.2:1000", "/api/time-slots"); w.Code != 200 {
		t.Errorf("another client: %d, want 200", w.Code)
	}
}

func TestZeroDisables(t *testing.T) {
	t.Parallel()
	for _, opt := range []ratelimit.Options{{RPS: 0, Burst: 10}, {RPS: 10, Burst: 0}} {
		l, err := ratelimit.New(opt)
		if err != nil || l != nil {
			t.Fatalf("New(%+v) = %v, %v; want nil limiter", opt, l, err)
		}
		h := limited(t, opt)
		for range 50 {
			if w := hit(h, "203.0.113.1:1", "/api/time-slots"); w.Code != 200 || w.Header().Get("RateLimit-Limit") != "" {
				t.Fatalf("disabled limiter answered %d with RateLimit-Limit %q", w.Code, w.Header().Get("RateLimit-Limit"))
			}
		}
	}
}

func TestExemptRequestsAreNotCounted(t *testing.T) {
	t.Parallel()
	h := limited(t, ratelimit.Options{RPS: 0.01, Burst: 1, Exempt: func(r *http.Request) bool { return r.Header.Get("X-Exempt") != "" }})
	for range 5 {
		r := httptest.NewRequest(http.MethodGet, "/api/time-slots", nil)
		r.RemoteAddr = "203.0.113.1:1"
		r.Header.Set("X-Exempt", "1")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("exempt request: %d", w.Code)
		}
	}
	if w := hit(h, "203.0.113.1:1", "/api/time-slots"); w.Code != 200 {
		t.Errorf("first counted request: %d, want 200 (exempt ones must not count)", w.Code)
	}
}

func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("REQUIRE_POSTGRES") == "1" {
			t.Fatal("TEST_REDIS_URL is not set")
		}
		t.Skip("set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0) to run the shared-limit tests")
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	c := ratelimit.NewRedisClient(opt, time.Second)
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("TEST_REDIS_URL unreachable: %v", err)
	}
	return c
}

func uniquePrefix(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "timeslots-test:" + t.Name() + ":" + hex.EncodeToString(b)
}

// Two replicas on one Redis share the limit: a client alternating between
// them gets the burst once, not once per replica.
func TestRedisSharesTheLimitAcrossReplicas(t *testing.T) {
	t.Parallel()
	c := redisClient(t)
	prefix := uniquePrefix(t)
	a := limited(t, ratelimit.Options{RPS: 0.1, Burst: 10, Redis: c, Prefix: prefix, Timeout: time.Second})
	b := limited(t, ratelimit.Options{RPS: 0.1, Burst: 10, Redis: c, Prefix: prefix, Timeout: time.Second})
	passed := 0
	for i := range 20 {
		h := a
		if i%2 == 1 {
			h = b
		}
		if w := hit(h, "203.0.113.1:1", "/api/time-slots"); w.Code == 200 {
			passed++
		} else if w.Code != 429 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	if passed != 10 {
		t.Errorf("%d of 20 requests passed across two replicas, want the shared burst of 10", passed)
	}
}

// Without a reachable Redis the limit still holds, per replica.
func TestUnreachableRedisFallsBackToLocalLimits(t *testing.T) {
	t.Parallel()
	c := ratelimit.NewRedisClient(&redis.Options{Addr: "127.0.0.1:1"}, 100*time.Millisecond)
	t.Cleanup(func() { _ = c.Close() })
	h := limited(t, ratelimit.Options{RPS: 0.02, Burst: 2, Redis: c, Prefix: uniquePrefix(t)})
	codes := []int{}
	for range 3 {
		codes = append(codes, hit(h, "203.0.113.1:1", "/api/time-slots").Code)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("statuses %v, want [200 200 429]", codes)
	}
}

// Package ratelimit limits the public endpoints per client with
// go-chi/httprate's sliding-window estimate. RATE_LIMIT_BURST requests fit
// in a window of BURST/RPS seconds, so a client keeps RPS requests a
// second on average and may burst up to BURST. With Redis the window
// counts are kept there, so every replica shares one limit per client;
// when Redis fails or is slow, each replica counts in its own memory until
// Redis answers again (see sharedCounter).
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/httprate"
	"github.com/redis/go-redis/v9"

	"timeslots/internal/httpx"
)

// DefaultRedisTimeout bounds one Redis round trip when Options.Timeout is
// not set: the most a request waits for Redis before it is counted in
// memory instead.
const DefaultRedisTimeout = 50 * time.Millisecond

// Options configure a Limiter.
type Options struct {
	RPS   float64 // average requests per second per client; 0 disables
	Burst int     // requests a client may send at once; 0 disables
	// Redis, if set, holds the counters, shared by every replica. It must
	// honour context deadlines: build it with NewRedisClient.
	Redis *redis.Client
	// Prefix starts every Redis key (several deployments may share one
	// Redis).
	Prefix string
	// Timeout bounds each Redis round trip (REDIS_TIMEOUT); 0 means
	// DefaultRedisTimeout.
	Timeout time.Duration
	// Exempt, if set, lets some requests through uncounted (requests that
	// carry the admin token).
	Exempt func(*http.Request) bool
	Logger *slog.Logger

	// The circuit breaker's settings (see sharedCounter); tests shorten
	// them, the server keeps the defaults.
	breakerFailures uint32
	breakerOpen     time.Duration
}

// Limiter is the per-client limit of the public endpoints.
type Limiter struct {
	limit  int
	window time.Duration
	local  *localCounter
	shared *sharedCounter // nil without Redis
	exempt func(*http.Request) bool
	now    func() time.Time
}

// New builds the limiter, or answers nil when RPS or Burst is 0 (limits
// off); a nil *Limiter's Middleware passes everything through.
func New(opt Options) (*Limiter, error) {
	if opt.RPS <= 0 || opt.Burst <= 0 {
		return nil, nil
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	window := time.Duration(float64(opt.Burst) / opt.RPS * float64(time.Second))
	if window < time.Millisecond {
		return nil, fmt.Errorf("ratelimit: RATE_LIMIT_BURST/RATE_LIMIT_RPS gives a window under 1ms")
	}
	l := &Limiter{
		limit: opt.Burst, window: window,
		local:  newLocalCounter(opt.Burst, window),
		exempt: opt.Exempt, now: time.Now,
	}
	if opt.Redis != nil {
		if !opt.Redis.Options().ContextTimeoutEnabled {
			return nil, errors.New("ratelimit: the Redis client must honour context deadlines (build it with NewRedisClient)")
		}
		l.shared = newSharedCounter(opt, window)
	}
	return l, nil
}

// Window answers the length of the limiter's window.
func (l *Limiter) Window() time.Duration { return l.window }

// Middleware counts each request against its client's limit and answers
// 429 (RATE_LIMITED, with Retry-After) once it is spent. Every answer
// carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.exempt != nil && l.exempt(r) {
			next.ServeHTTP(w, r)
			return
		}
		key := httpx.ClientKey(r)
		now := l.now().UTC()
		cur := now.Truncate(l.window)
		into := now.Sub(cur)
		t := l.take(r.Context(), key, cur, into)
		// The estimate httprate limits on: the previous window's count
		// weighted by how much of it the sliding window still covers.
		rate := int(math.Round(float64(t.prev)*float64(l.window-into)/float64(l.window) + float64(t.cur)))
		h := w.Header()
		h.Set("RateLimit-Limit", strconv.Itoa(l.limit))
		if t.passed {
			h.Set("RateLimit-Remaining", strconv.Itoa(max(l.limit-rate-1, 0)))
			h.Set("RateLimit-Reset", strconv.Itoa(httpx.RetryAfterSeconds(cur.Add(l.window).Sub(now))))
			next.ServeHTTP(w, r)
			return
		}
		wait := waitFor(l.limit, l.window, into, t.prev, t.cur)
		h.Set("RateLimit-Remaining", strconv.Itoa(max(l.limit-rate, 0)))
		h.Set("RateLimit-Reset", strconv.Itoa(httpx.RetryAfterSeconds(wait)))
		httpx.Logger(r.Context()).Info("rate limited", slog.String("client", key))
		httpx.WriteTooManyRequests(w, r, wait, "rate limit exceeded")
	})
}

// tally is one request's count: whether it fits, and the counts of the
// current and previous windows before it.
type tally struct {
	passed    bool
	cur, prev int
}

// take counts one request of key in the window that starts at cur, into
// it: in Redis when it answers in time, else in this replica's memory.
func (l *Limiter) take(ctx context.Context, key string, cur time.Time, into time.Duration) tally {
	weight := float64(l.window-into) / float64(l.window)
	if l.shared != nil {
		if t, err := l.shared.take(ctx, key, cur, weight); err == nil {
			return t
		}
	}
	return l.local.take(key, cur, weight)
}

// localCounter counts in memory with httprate's counter. Reading the
// estimate and counting the request are one step under mu, which is held
// for map operations only, never across a network call.
type localCounter struct {
	limit   int
	window  time.Duration
	mu      sync.Mutex
	counter httprate.LimitCounter
}

func newLocalCounter(limit int, window time.Duration) *localCounter {
	c := httprate.NewLocalLimitCounter(window)
	// Windows aligned to the wall clock, as the shared counter's are, so
	// Reset and Retry-After are computable from the clock alone.
	c.Config(limit, window)
	return &localCounter{limit: limit, window: window, counter: c}
}

func (c *localCounter) take(key string, cur time.Time, weight float64) tally {
	c.mu.Lock()
	defer c.mu.Unlock()
	// httprate's local counter never answers an error.
	curN, prevN, _ := c.counter.Get(key, cur, cur.Add(-c.window))
	t := tally{cur: curN, prev: prevN}
	if int(math.Round(float64(prevN)*weight+float64(curN)))+1 > c.limit {
		return t
	}
	_ = c.counter.IncrementBy(key, cur, 1)
	t.passed = true
	return t
}

// waitFor solves httprate's sliding estimate for the first instant at
// which one more request fits: the estimate at d into the current window
// is prev·(W−d)/W + cur, and one request fits when it is at most limit−1.
func waitFor(limit int, window, into time.Duration, prev, cur int) time.Duration {
	W := float64(window)
	target := float64(limit - 1)
	d := float64(into)
	// Still in the current window: the previous window's weight decays.
	if float64(cur) <= target && prev > 0 {
		t := (float64(prev)*(W-d)/W + float64(cur) - target) * W / float64(prev)
		if t <= W-d {
			return time.Duration(math.Max(t, 0))
		}
	}
	// In the next window the current count becomes the decaying one.
	rest := W - d
	if cur <= 0 || float64(cur) <= target {
		return time.Duration(rest)
	}
	return time.Duration(rest + W*(1-target/float64(cur)))
}

// Package ratelimit limits the public endpoints per client with
// go-chi/httprate's sliding-window counter. RATE_LIMIT_BURST requests fit
// in a window of BURST/RPS seconds, so a client keeps RPS requests a
// second on average and may burst up to BURST. With Redis the window
// counts are kept there, so every replica shares one limit per client.
package ratelimit

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/httprate"
	"github.com/redis/go-redis/v9"

	"timeslots/internal/httpx"
)

// Options configure a Limiter.
type Options struct {
	RPS   float64 // average requests per second per client; 0 disables
	Burst int     // requests a client may send at once; 0 disables
	// Redis, if set, holds the counters, shared by every replica.
	Redis *redis.Client
	// Prefix starts every Redis key (several deployments may share one
	// Redis).
	Prefix string
	// Exempt, if set, lets some requests through uncounted (requests that
	// carry the admin token).
	Exempt func(*http.Request) bool
	Logger *slog.Logger
}

// Limiter is the per-client limit of the public endpoints.
type Limiter struct {
	limit   int
	window  time.Duration
	rl      *httprate.RateLimiter
	counter httprate.LimitCounter
	exempt  func(*http.Request) bool
	now     func() time.Time
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
	var counter httprate.LimitCounter
	if opt.Redis != nil {
		counter = newRedisCounter(opt.Redis, opt.Prefix, opt.Logger)
	} else {
		counter = wallClockCounter{httprate.NewLocalLimitCounter(window)}
	}
	l := &Limiter{limit: opt.Burst, window: window, counter: counter, exempt: opt.Exempt, now: time.Now}
	l.rl = httprate.NewRateLimiter(opt.Burst, window,
		httprate.WithLimitCounter(counter),
		// Our own names (RateLimit-*, the IETF draft's) and our own
		// Reset and Retry-After, computed in seconds from now.
		httprate.WithResponseHeaders(httprate.ResponseHeaders{
			Limit: "RateLimit-Limit", Remaining: "RateLimit-Remaining",
		}),
	)
	return l, nil
}

// wallClockCounter is httprate's in-memory counter, wrapped so httprate
// aligns its windows to the wall clock as it does for shared counters;
// Reset and Retry-After are then computable here.
type wallClockCounter struct{ httprate.LimitCounter }

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
		key := httpx.ClientIP(r.Context()).String()
		now := l.now().UTC()
		cur := now.Truncate(l.window)
		limited := l.rl.OnLimit(w, r, key)
		if !limited {
			w.Header().Set("RateLimit-Reset", strconv.Itoa(httpx.RetryAfterSeconds(cur.Add(l.window).Sub(now))))
			next.ServeHTTP(w, r)
			return
		}
		wait := l.retryAfter(key, now)
		w.Header().Set("RateLimit-Reset", strconv.Itoa(httpx.RetryAfterSeconds(wait)))
		httpx.Logger(r.Context()).Info("rate limited", slog.String("client", key))
		httpx.WriteTooManyRequests(w, r, wait, "rate limit exceeded")
	})
}

// retryAfter answers how long until one more request of key fits.
func (l *Limiter) retryAfter(key string, now time.Time) time.Duration {
	cur := now.Truncate(l.window)
	curCount, prevCount, err := l.counter.Get(key, cur, cur.Add(-l.window))
	if err != nil {
		return l.window
	}
	return waitFor(l.limit, l.window, now.Sub(cur), prevCount, curCount)
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

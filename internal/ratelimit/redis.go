package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// The circuit breaker's defaults: once breakerFailures Redis calls in a
// row fail (refused, timed out, or answered with an error), requests are
// counted in memory without trying Redis for breakerOpen; then one request
// tries Redis again, and its success shares the limits again. One failure
// is enough: a Redis that misses a 50 ms budget is in trouble, and
// counting per replica for a few seconds keeps every limit in force.
const (
	breakerFailures = 1
	breakerOpen     = 5 * time.Second
)

// NewRedisClient builds the Redis client of the rate limits from opt so
// that no call outlasts timeout (REDIS_TIMEOUT): it honours context
// deadlines, dials, reads and writes within timeout, and does not retry (a
// retry cannot fit the budget, and would add load to a Redis in trouble).
func NewRedisClient(opt *redis.Options, timeout time.Duration) *redis.Client {
	if timeout <= 0 {
		timeout = DefaultRedisTimeout
	}
	o := *opt
	o.ContextTimeoutEnabled = true
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = timeout, timeout, timeout, timeout
	o.MaxRetries = -1
	o.DialerRetries = 1
	return redis.NewClient(&o)
}

// slidingWindow reads a client's current and previous window counts and,
// when one more request fits httprate's estimate (prev·weight + cur,
// rounded, at most limit−1), counts it: in one step inside Redis, so
// replicas racing for a client's last request cannot both have it. It
// answers {1 when counted else 0, cur before counting, prev}.
var slidingWindow = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
local rate = math.floor(prev * tonumber(ARGV[2]) + cur + 0.5)
if rate + 1 > tonumber(ARGV[1]) then
  return {0, cur, prev}
end
redis.call('INCRBY', KEYS[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, cur, prev}
`)

// sharedCounter keeps the window counts in Redis: one key per client and
// window, counted by every replica and expiring after three windows.
//
// Redis trouble must not stall requests. Each call is bounded by timeout
// and holds no lock while it waits, so concurrent requests wait for Redis
// side by side, never behind one another. A circuit breaker (sony/gobreaker)
// stops calling Redis after a few failures in a row: while it is open,
// requests are counted in memory at no added latency; after a while one
// request tries Redis again (the others still count in memory), and its
// success closes the breaker. Each switch is logged once: one line when
// the limits become per replica, one when they are shared again.
type sharedCounter struct {
	client  *redis.Client
	prefix  string
	limit   int
	window  time.Duration
	timeout time.Duration
	breaker *gobreaker.CircuitBreaker[tally]
	logger  *slog.Logger
	lastErr atomic.Pointer[string]
}

func newSharedCounter(opt Options, window time.Duration) *sharedCounter {
	c := &sharedCounter{
		client: opt.Redis, prefix: opt.Prefix, limit: opt.Burst, window: window,
		timeout: opt.Timeout, logger: opt.Logger,
	}
	if c.prefix == "" {
		c.prefix = "timeslots:ratelimit"
	}
	if c.timeout <= 0 {
		c.timeout = DefaultRedisTimeout
	}
	failures, open := opt.breakerFailures, opt.breakerOpen
	if failures == 0 {
		failures = breakerFailures
	}
	if open <= 0 {
		open = breakerOpen
	}
	c.breaker = gobreaker.NewCircuitBreaker[tally](gobreaker.Settings{
		Name:        "ratelimit-redis",
		MaxRequests: 1, // one request tries Redis again at a time
		Timeout:     open,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= failures },
		// Called under the breaker's lock, after the request's Redis call
		// has returned: only logging happens here.
		OnStateChange: func(_ string, from, to gobreaker.State) { c.switched(from, to, open) },
	})
	return c
}

func (c *sharedCounter) key(key string, window time.Time) string {
	return c.prefix + ":" + key + ":" + strconv.FormatInt(window.UnixMilli(), 10)
}

// take counts one request of key in the window starting at cur, whose
// predecessor weighs weight in the estimate. An error (Redis failed, or
// the breaker is open) means the request was not counted here.
func (c *sharedCounter) take(ctx context.Context, key string, cur time.Time, weight float64) (tally, error) {
	return c.breaker.Execute(func() (tally, error) {
		// The request's own cancellation is not Redis failing.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		keys := []string{c.key(key, cur), c.key(key, cur.Add(-c.window))}
		res, err := slidingWindow.Run(ctx, c.client, keys,
			c.limit, strconv.FormatFloat(weight, 'f', -1, 64), (3 * c.window).Milliseconds()).Int64Slice()
		if err == nil && len(res) != 3 {
			err = fmt.Errorf("ratelimit: redis answered %d values, want 3", len(res))
		}
		if err != nil {
			msg := err.Error()
			c.lastErr.Store(&msg)
			return tally{}, err
		}
		return tally{passed: res[0] == 1, cur: int(res[1]), prev: int(res[2])}, nil
	})
}

// switched logs the breaker's switches that change where limits are
// counted: closed → open (per replica) and half-open → closed (shared).
// A failed retry (half-open → open) changes nothing and is not logged.
func (c *sharedCounter) switched(from, to gobreaker.State, open time.Duration) {
	switch {
	case from == gobreaker.StateClosed && to == gobreaker.StateOpen:
		detail := ""
		if p := c.lastErr.Load(); p != nil {
			detail = *p
		}
		c.logger.Error("rate limit store unreachable: limiting per replica until it answers",
			slog.String("error", detail), slog.Duration("retry_every", open))
	case to == gobreaker.StateClosed:
		c.logger.Info("rate limit store answers again: limits are shared across replicas")
	}
}

// redisLog sends go-redis's own messages (dial failures, pool notices) to
// the server's JSON log instead of a plain line on standard error.
type redisLog struct{ logger *slog.Logger }

func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	l.logger.Warn("redis client", slog.String("detail", fmt.Sprintf(format, v...)))
}

var setRedisLogger sync.Once

// UseLogger routes go-redis's process-wide log to logger; the first call
// wins (go-redis has one logger per process).
func UseLogger(logger *slog.Logger) {
	setRedisLogger.Do(func() { redis.SetLogger(redisLog{logger}) })
}

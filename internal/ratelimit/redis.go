package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/httprate"
	"github.com/redis/go-redis/v9"
)

// redisTimeout bounds one Redis round trip: a slow Redis must not slow
// every request.
const redisTimeout = 250 * time.Millisecond

// redisCounter keeps httprate's window counts in Redis: one key per client
// and window, INCRBY'd by every replica and expiring after two windows.
// When Redis fails, it counts in memory (the limit becomes per replica)
// rather than refusing or blocking requests, and logs the switch once.
type redisCounter struct {
	client   *redis.Client
	prefix   string
	window   time.Duration
	fallback httprate.LimitCounter
	logger   *slog.Logger
	failing  atomic.Bool
}

var _ httprate.LimitCounter = (*redisCounter)(nil)

func newRedisCounter(c *redis.Client, prefix string, logger *slog.Logger) *redisCounter {
	if prefix == "" {
		prefix = "timeslots:ratelimit"
	}
	return &redisCounter{client: c, prefix: prefix, logger: logger}
}

// Config is called once by httprate with the limiter's window.
func (c *redisCounter) Config(requestLimit int, windowLength time.Duration) {
	c.window = windowLength
	c.fallback = httprate.NewLocalLimitCounter(windowLength)
	c.fallback.Config(requestLimit, windowLength)
}

func (c *redisCounter) key(key string, window time.Time) string {
	return c.prefix + ":" + key + ":" + strconv.FormatInt(window.UnixMilli(), 10)
}

// Increment counts one request.
func (c *redisCounter) Increment(key string, currentWindow time.Time) error {
	return c.IncrementBy(key, currentWindow, 1)
}

// IncrementBy counts amount requests in the current window.
func (c *redisCounter) IncrementBy(key string, currentWindow time.Time, amount int) error {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	k := c.key(key, currentWindow)
	_, err := c.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.IncrBy(ctx, k, int64(amount))
		p.PExpire(ctx, k, 3*c.window)
		return nil
	})
	if err != nil {
		c.down(err)
		return c.fallback.IncrementBy(key, currentWindow, amount)
	}
	c.up()
	return nil
}

// Get answers the counts of the current and previous windows.
func (c *redisCounter) Get(key string, currentWindow, previousWindow time.Time) (int, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	vals, err := c.client.MGet(ctx, c.key(key, currentWindow), c.key(key, previousWindow)).Result()
	if err != nil {
		c.down(err)
		return c.fallback.Get(key, currentWindow, previousWindow)
	}
	c.up()
	cur, err1 := count(vals[0])
	prev, err2 := count(vals[1])
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	return cur, prev, nil
}

func count(v any) (int, error) {
	switch s := v.(type) {
	case nil:
		return 0, nil
	case string:
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("ratelimit: redis counter holds %q", s)
		}
		return n, nil
	default:
		return 0, fmt.Errorf("ratelimit: redis counter holds a %T", v)
	}
}

func (c *redisCounter) down(err error) {
	if !c.failing.Swap(true) {
		c.logger.Error("rate limit store unreachable: limiting per replica until it answers", slog.String("error", err.Error()))
	}
}

func (c *redisCounter) up() {
	if c.failing.Swap(false) {
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

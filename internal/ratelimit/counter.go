package ratelimit

import (
	"fmt"
	"time"
)

// Counter is a limit counted in this process's memory alone, for what
// lives in one process, such as the messages of a websocket connection:
// Burst events of one key fit in a window of Burst/RPS seconds, with the
// same sliding estimate as the HTTP limit. Its methods are safe for
// concurrent use; a nil *Counter allows everything.
type Counter struct {
	limit  int
	window time.Duration
	local  *localCounter
	now    func() time.Time
}

// NewCounter builds a counter, or answers nil when rps or burst is 0
// (no limit).
func NewCounter(rps float64, burst int) (*Counter, error) {
	if rps <= 0 || burst <= 0 {
		return nil, nil
	}
	window := time.Duration(float64(burst) / rps * float64(time.Second))
	if window < time.Millisecond {
		return nil, fmt.Errorf("ratelimit: a burst of %d at %g a second gives a window under 1ms", burst, rps)
	}
	return &Counter{limit: burst, window: window, local: newLocalCounter(burst, window), now: time.Now}, nil
}

// Allow counts one event of key when it fits (true), or answers false and
// how long until one more would fit; a refused event is not counted.
func (c *Counter) Allow(key string) (bool, time.Duration) {
	if c == nil {
		return true, 0
	}
	now := c.now().UTC()
	cur := now.Truncate(c.window)
	into := now.Sub(cur)
	t := c.local.take(key, cur, float64(c.window-into)/float64(c.window))
	if t.passed {
		return true, 0
	}
	return false, waitFor(c.limit, c.window, into, t.prev, t.cur)
}

package ratelimit

import "time"

// WithBreaker answers opt with a circuit breaker that opens after
// failures Redis failures in a row and stays open for open.
func WithBreaker(opt Options, failures uint32, open time.Duration) Options {
	opt.breakerFailures, opt.breakerOpen = failures, open
	return opt
}

// SetClock has c read the time from now.
func SetClock(c *Counter, now func() time.Time) { c.now = now }

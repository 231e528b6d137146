package ratelimit

import (
	"testing"
	"time"
)

func TestWaitForSolvesTheSlidingEstimate(t *testing.T) {
	t.Parallel()
	const W = 100 * time.Second
	for _, tc := range []struct {
		name      string
		into      time.Duration
		prev, cur int
		want      time.Duration
	}{
		{"a full previous window decays one request per W/limit", 0, 10, 0, 10 * time.Second},
		{"half decayed, plus current requests", 50 * time.Second, 10, 5, 10 * time.Second},
		{"a full current window waits for the next one to decay it", 50 * time.Second, 0, 10, 60 * time.Second},
		{"the previous window decays just in time", 90 * time.Second, 10, 9, 10 * time.Second},
		{"a full current window near its end", 90 * time.Second, 1, 10, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := waitFor(10, W, tc.into, tc.prev, tc.cur)
			if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("waitFor = %v, want %v", got, tc.want)
			}
			// At the answered instant the estimate admits one more request.
			at := tc.into + got
			var rate float64
			if at <= W {
				rate = float64(tc.prev)*float64(W-at)/float64(W) + float64(tc.cur)
			} else {
				rate = float64(tc.cur) * float64(2*W-at) / float64(W)
			}
			if rate > 9.0001 {
				t.Errorf("estimate at the answered instant is %.3f, more than limit-1", rate)
			}
		})
	}
}

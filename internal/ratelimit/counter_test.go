package ratelimit_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/internal/ratelimit"
)

// A key gets its burst and no more, however many goroutines ask at once;
// another key has its own; the refused are told to wait, and once the
// windows have passed the key is allowed again.
func TestCounterAllowsABurstPerKey(t *testing.T) {
	t.Parallel()
	c, err := ratelimit.NewCounter(2, 4) // 4 in a window of 2 s
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ratelimit.SetClock(c, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })

	var allowed, waited atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 64 {
		wg.Go(func() {
			<-start
			ok, wait := c.Allow("conn-1")
			if ok {
				allowed.Add(1)
			} else if wait > 0 {
				waited.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if allowed.Load() != 4 || waited.Load() != 60 {
		t.Fatalf("allowed %d and told %d to wait, want 4 and 60", allowed.Load(), waited.Load())
	}
	if ok, _ := c.Allow("conn-2"); !ok {
		t.Fatal("another key was refused")
	}
	mu.Lock()
	now = now.Add(4 * time.Second) // two windows: the burst has decayed
	mu.Unlock()
	if ok, _ := c.Allow("conn-1"); !ok {
		t.Fatal("the key was refused once its windows had passed")
	}
}

func TestNoCounterAllowsEverything(t *testing.T) {
	t.Parallel()
	c, err := ratelimit.NewCounter(0, 4)
	if err != nil || c != nil {
		t.Fatalf("NewCounter(0, 4) = %v, %v; want no counter", c, err)
	}
	if ok, wait := c.Allow("any"); !ok || wait != 0 {
		t.Fatal("a nil counter refused")
	}
	if _, err := ratelimit.NewCounter(1e9, 1); err == nil {
		t.Fatal("a window under a millisecond was accepted")
	}
}

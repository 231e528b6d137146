package readcache_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/internal/readcache"
)

// clock is a settable clock for the cache's expiries.
type clock struct{ now atomic.Pointer[time.Time] }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.now.Store(&t) }
func (c *clock) Now() time.Time   { return *c.now.Load() }

var t0 = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

func at(h int) *time.Time { t := t0.Add(time.Duration(h) * time.Hour); return &t }

func newCache(t *testing.T, clk *clock) *readcache.Cache {
	t.Helper()
	c := readcache.New(readcache.Options{MaxBytes: 1 << 20, MaxAge: time.Hour, Now: clk.Now})
	if c == nil {
		t.Fatal("New answered no cache for a budget of 1 MiB")
	}
	return c
}

func put(t *testing.T, c *readcache.Cache, key string, scopes []readcache.Scope, expires time.Time) {
	t.Helper()
	tk, ok := c.Begin()
	if !ok {
		t.Fatal("Begin: the cache is off")
	}
	c.Put(tk, key, []byte("answer of "+key), scopes, expires)
	if _, ok := c.Get(key); !ok {
		t.Fatalf("%s was not kept", key)
	}
}

func TestOffForNoBudget(t *testing.T) {
	t.Parallel()
	c := readcache.New(readcache.Options{MaxBytes: 0})
	if c != nil {
		t.Fatal("a budget of 0 made a cache")
	}
	// A nil cache is off: every call is safe and keeps nothing.
	tk, ok := c.Begin()
	c.Put(tk, "k", []byte("x"), nil, time.Time{})
	c.Invalidate(readcache.Change{Provider: 1})
	c.Purge()
	c.SetEnabled(true)
	if _, hit := c.Get("k"); ok || hit {
		t.Fatal("a nil cache answered")
	}
}

func TestChangesDropTheAnswersTheyTouch(t *testing.T) {
	t.Parallel()
	one := []readcache.Scope{{Providers: []int64{1}}}
	oneDay := []readcache.Scope{{Providers: []int64{1, 2}, From: at(0), Before: at(24)}}
	anyDay := []readcache.Scope{{From: at(0), Before: at(24)}}
	anything := []readcache.Scope{{}}
	slot := func(p int64, h int) readcache.Change { return readcache.Change{Provider: p, From: *at(h), To: *at(h)} }
	for _, tc := range []struct {
		name   string
		change readcache.Change
		gone   []string
	}{
		{"a slot of provider 1 inside the day drops every answer that may list it", slot(1, 3), []string{"one", "oneDay", "anyDay", "anything"}},
		{"a slot of provider 2 inside the day leaves provider 1's own answer", slot(2, 3), []string{"oneDay", "anyDay", "anything"}},
		{"a slot of provider 3 leaves the answers of providers 1 and 2", slot(3, 3), []string{"anyDay", "anything"}},
		{"a slot after the day leaves the day's answers", slot(1, 24), []string{"one", "anything"}},
		{"a slot before the day leaves the day's answers", slot(2, -1), []string{"anything"}},
		{"a bulk change over the day's end drops the day's answers", readcache.Change{Provider: 2, From: *at(20), To: *at(30)}, []string{"oneDay", "anyDay", "anything"}},
		{"a bulk change of all time drops every answer of the provider", readcache.Change{Provider: 1}, []string{"one", "oneDay", "anyDay", "anything"}},
		{"a change of any provider drops everything it may touch", readcache.Change{From: *at(30), To: *at(40)}, []string{"one", "anything"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCache(t, newClock(t0))
			all := map[string][]readcache.Scope{"one": one, "oneDay": oneDay, "anyDay": anyDay, "anything": anything}
			for k, s := range all {
				put(t, c, k, s, time.Time{})
			}
			c.Invalidate(tc.change)
			for k := range all {
				_, kept := c.Get(k)
				want := true
				for _, g := range tc.gone {
					if g == k {
						want = false
					}
				}
				if kept != want {
					t.Errorf("%s kept %v, want %v", k, kept, want)
				}
			}
			if got := c.Stats().Invalidations; got != uint64(len(tc.gone)) {
				t.Errorf("invalidations %d, want %d", got, len(tc.gone))
			}
		})
	}
}

func TestAnswersExpireByTheInjectedClock(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	c := newCache(t, clk)
	put(t, c, "until10", []readcache.Scope{{}}, *at(1))
	put(t, c, "noBound", []readcache.Scope{{}}, time.Time{})
	clk.set(t0.Add(time.Hour - time.Nanosecond))
	if _, ok := c.Get("until10"); !ok {
		t.Fatal("an answer was dropped before its time was up")
	}
	clk.set(*at(1))
	if _, ok := c.Get("until10"); ok {
		t.Fatal("an answer was served at the instant its first slot starts")
	}
	if _, ok := c.Get("noBound"); ok {
		t.Fatal("an answer outlived MaxAge (1h)")
	}
	// An answer whose time is up when it is stored is not kept.
	tk, _ := c.Begin()
	c.Put(tk, "late", []byte("x"), []readcache.Scope{{}}, *at(1))
	if _, ok := c.Get("late"); ok {
		t.Fatal("an answer whose time was up was kept")
	}
}

func TestAReadThatSawAChangeGoByStoresNothing(t *testing.T) {
	t.Parallel()
	c := newCache(t, newClock(t0))
	scope := []readcache.Scope{{Providers: []int64{1}, From: at(0), Before: at(24)}}
	tk, _ := c.Begin()
	c.Invalidate(readcache.Change{Provider: 2, From: *at(3), To: *at(3)})   // another provider's
	c.Invalidate(readcache.Change{Provider: 1, From: *at(30), To: *at(30)}) // another day's
	c.Put(tk, "unrelated", []byte("x"), scope, time.Time{})
	if _, ok := c.Get("unrelated"); !ok {
		t.Fatal("changes outside the scope kept a read's answer out")
	}
	tk, _ = c.Begin()
	c.Invalidate(readcache.Change{Provider: 1, From: *at(3), To: *at(3)})
	c.Put(tk, "stale", []byte("x"), scope, time.Time{})
	if _, ok := c.Get("stale"); ok {
		t.Fatal("a read begun before a change in its scope stored its answer")
	}
	tk, _ = c.Begin()
	for i := range 2000 {
		c.Invalidate(readcache.Change{Provider: 9, From: *at(100 + i), To: *at(100 + i)})
	}
	c.Put(tk, "old", []byte("x"), scope, time.Time{})
	if _, ok := c.Get("old"); ok {
		t.Fatal("a read older than the changes remembered stored its answer")
	}
}

func TestADisabledCacheAnswersNothingUntilEnabled(t *testing.T) {
	t.Parallel()
	c := newCache(t, newClock(t0))
	put(t, c, "k", []readcache.Scope{{Providers: []int64{1}}}, time.Time{})
	running, _ := c.Begin()
	c.SetEnabled(false)
	if _, ok := c.Get("k"); ok {
		t.Fatal("a disabled cache answered")
	}
	if _, ok := c.Begin(); ok {
		t.Fatal("a disabled cache began a read")
	}
	c.SetEnabled(true)
	if _, ok := c.Get("k"); ok {
		t.Fatal("an answer kept before the cache was disabled came back")
	}
	c.Put(running, "k", []byte("x"), []readcache.Scope{{Providers: []int64{1}}}, time.Time{})
	if _, ok := c.Get("k"); ok {
		t.Fatal("a read begun before the cache was disabled stored its answer")
	}
	put(t, c, "k", []readcache.Scope{{Providers: []int64{1}}}, time.Time{})
	c.Purge()
	if _, ok := c.Get("k"); ok {
		t.Fatal("Purge left an answer")
	}
}

func TestTheBudgetHoldsAndEvictionsAreCounted(t *testing.T) {
	t.Parallel()
	const budget = 64 << 10
	c := readcache.New(readcache.Options{MaxBytes: budget, Now: newClock(t0).Now})
	body := make([]byte, 1000)
	for i := range 500 {
		tk, _ := c.Begin()
		c.Put(tk, fmt.Sprint("k", i), body, []readcache.Scope{{Providers: []int64{int64(i % 7)}}}, time.Time{})
		// Repeated reads make the later keys worth keeping.
		c.Get(fmt.Sprint("k", i))
	}
	st := c.Stats()
	if st.Bytes > budget {
		t.Fatalf("%d bytes kept, over the budget of %d", st.Bytes, budget)
	}
	if st.Evictions == 0 {
		t.Fatal("no eviction counted for 500 KB put into 64 KiB")
	}
	// Evicted answers leave the index too: a change of every provider
	// drops only what is kept.
	for p := range int64(7) {
		c.Invalidate(readcache.Change{Provider: p})
	}
	if st := c.Stats(); st.Entries != 0 {
		t.Fatalf("%d answers kept after every provider changed", st.Entries)
	}
}

// TestConcurrentPutsStayWithinTheBudget fills a cache of 64 KiB with
// answers of 2–10 KB from many goroutines at once, as concurrent misses
// do: whenever a Put has returned, what the cache counts is within the
// budget; every answer that left it to make room is counted as an
// eviction; and the index holds exactly the answers kept.
func TestConcurrentPutsStayWithinTheBudget(t *testing.T) {
	t.Parallel()
	const budget, writers, puts = 64 << 10, 8, 300
	c := readcache.New(readcache.Options{MaxBytes: budget, Now: newClock(t0).Now})
	var over atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range puts {
				key := fmt.Sprint("w", w, "-", i%40)
				tk, _ := c.Begin()
				c.Put(tk, key, make([]byte, 2000+(w*977+i*131)%8000), []readcache.Scope{{Providers: []int64{int64(w)}}}, time.Time{})
				c.Get(key)
				if b := c.Stats().Bytes; b > budget {
					over.Store(int64(b))
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if b := over.Load(); b > 0 {
		t.Fatalf("the cache counted %d bytes after a Put returned, over its budget of %d", b, budget)
	}
	st := c.Stats()
	if st.Bytes > budget || st.Entries == 0 {
		t.Fatalf("%d answers counted as %d bytes, want some, within %d", st.Entries, st.Bytes, budget)
	}
	// Every key was put at least twice (40 keys per writer, 300 puts):
	// far more than fits, so most answers were evicted, and each
	// eviction is counted once, at most once per answer put.
	if st.Evictions < writers*40-uint64(st.Entries) || st.Evictions > writers*puts {
		t.Fatalf("%d evictions counted for %d answers put, %d kept", st.Evictions, writers*puts, st.Entries)
	}
	// The index follows the evictions: a change of every writer's
	// provider drops exactly the answers kept.
	kept := st.Entries
	for w := range int64(writers) {
		c.Invalidate(readcache.Change{Provider: w})
	}
	if st := c.Stats(); st.Entries != 0 || st.Invalidations != uint64(kept) {
		t.Fatalf("after a change of every provider: %d answers kept, %d invalidations counted, want 0 and %d", st.Entries, st.Invalidations, kept)
	}
}

func TestConcurrentReadsAndChangesNeverKeepAStaleAnswer(t *testing.T) {
	t.Parallel()
	// A "database" of one counter per provider; a read copies it into
	// its answer. After the writers stop, every kept answer must equal
	// the counter.
	c := newCache(t, newClock(t0))
	var db [4]atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range 500 {
				p := int64(w)
				db[p].Add(1)
				c.Invalidate(readcache.Change{Provider: p + 1, From: *at(1), To: *at(1)})
			}
		}()
	}
	for r := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range 2000 {
				p := (r + i) % 4
				key := fmt.Sprint("p", p)
				tk, ok := c.Begin()
				if !ok {
					t.Error("the cache is off")
					return
				}
				if _, hit := c.Get(key); hit {
					continue
				}
				body := []byte(fmt.Sprint(db[p].Load()))
				c.Put(tk, key, body, []readcache.Scope{{Providers: []int64{int64(p) + 1}}}, time.Time{})
			}
		}()
	}
	close(start)
	wg.Wait()
	for p := range 4 {
		if b, ok := c.Get(fmt.Sprint("p", p)); ok && string(b) != fmt.Sprint(db[p].Load()) {
			t.Errorf("provider %d: kept %s, the database holds %d", p, b, db[p].Load())
		}
	}
}

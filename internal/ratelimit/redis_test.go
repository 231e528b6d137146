package ratelimit_test

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"timeslots/internal/ratelimit"
)

// The log lines of the two switches between shared and per-replica limits.
const (
	fellBack = "rate limit store unreachable"
	cameBack = "rate limit store answers again"
)

// logBuffer collects a limiter's JSON log lines while requests write them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), msg)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// fakeRedis is a TCP listener standing where Redis should be. While it
// forwards, it relays every new connection to a real Redis; otherwise it
// accepts connections and reads them but never answers, as a hung Redis
// does. It counts the connections and bytes it got.
type fakeRedis struct {
	ln       net.Listener
	target   string // the real Redis, when forwarding
	forward  atomic.Bool
	accepted atomic.Int64
	received atomic.Int64

	mu    sync.Mutex
	conns []net.Conn
}

func newFakeRedis(t *testing.T, target string) *fakeRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRedis{ln: ln, target: target}
	go f.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			_ = c.Close()
		}
	})
	return f
}

// silentRedis is a Redis that accepts connections and never answers.
func silentRedis(t *testing.T) *fakeRedis { return newFakeRedis(t, "") }

func (f *fakeRedis) Addr() string { return f.ln.Addr().String() }

func (f *fakeRedis) keep(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = append(f.conns, c)
}

func (f *fakeRedis) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.accepted.Add(1)
		f.keep(c)
		go f.handle(c)
	}
}

// counted counts what passes through it.
type counted struct{ n *atomic.Int64 }

func (c counted) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

func (f *fakeRedis) handle(c net.Conn) {
	defer c.Close()
	if !f.forward.Load() || f.target == "" {
		_, _ = io.Copy(counted{&f.received}, c)
		return
	}
	up, err := net.Dial("tcp", f.target)
	if err != nil {
		return
	}
	f.keep(up)
	defer up.Close()
	go func() {
		_, _ = io.Copy(c, up)
		_ = c.Close()
	}()
	_, _ = io.Copy(io.MultiWriter(up, counted{&f.received}), c)
}

// closedPort answers an address where nothing listens: connections are
// refused.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func clientFor(t *testing.T, addr string, timeout time.Duration) *redis.Client {
	t.Helper()
	c := ratelimit.NewRedisClient(&redis.Options{Addr: addr}, timeout)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// hitAll sends n requests at once (released together) from n clients and
// answers each one's status and duration.
func hitAll(h http.Handler, n int, client func(i int) string) ([]int, []time.Duration) {
	codes := make([]int, n)
	took := make([]time.Duration, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			codes[i] = hit(h, client(i), "/api/time-slots").Code
			took[i] = time.Since(t0)
		}()
	}
	close(start)
	wg.Wait()
	return codes, took
}

func slowest(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// Forty requests at once against a Redis that accepts and never answers
// wait for it side by side: each is held for about one timeout, not for
// the Redis calls of the requests before it (forty of them in a row would
// take 8 s). The breaker is kept closed, so every request calls Redis.
func TestSilentRedisDelaysNoRequestBehindAnother(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	silent := silentRedis(t)
	var logs logBuffer
	opt := ratelimit.WithBreaker(ratelimit.Options{
		RPS: 10, Burst: 1000, Redis: clientFor(t, silent.Addr(), timeout), Timeout: timeout,
		Prefix: uniquePrefix(t), Logger: logs.logger(),
	}, 1<<30, time.Hour)
	h := limited(t, opt)
	codes, took := hitAll(h, 40, func(i int) string { return "203.0.113." + strconv.Itoa(i+1) + ":1" })
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: %d, want 200 (counted in memory)", i, c)
		}
	}
	if m := slowest(took); m > 1500*time.Millisecond {
		t.Errorf("the slowest of 40 parallel requests took %v: requests waited behind each other's Redis calls (timeout %v)", m, timeout)
	}
	if silent.accepted.Load() == 0 || silent.received.Load() == 0 {
		t.Errorf("the silent Redis got %d connections and %d bytes: the requests never asked it", silent.accepted.Load(), silent.received.Load())
	}
	if n := logs.count(fellBack); n != 0 {
		t.Errorf("%d fallback lines while the breaker is kept closed, want 0", n)
	}
}

// A request's wait for a silent Redis is bounded by the timeout; once the
// breaker opens, requests neither call Redis (the listener gets no byte)
// nor wait, and the switch is logged once however many requests follow.
func TestOpenBreakerSkipsRedisAndLogsOnce(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	silent := silentRedis(t)
	var logs logBuffer
	opt := ratelimit.WithBreaker(ratelimit.Options{
		RPS: 0.02, Burst: 2, Redis: clientFor(t, silent.Addr(), timeout), Timeout: timeout,
		Prefix: uniquePrefix(t), Logger: logs.logger(),
	}, 3, time.Hour)
	h := limited(t, opt)
	for i := range 3 {
		t0 := time.Now()
		hit(h, "198.51.100.1:1", "/api/time-slots")
		if d := time.Since(t0); d > 5*timeout {
			t.Errorf("request %d against the silent Redis took %v, want about the timeout %v", i, d, timeout)
		}
	}
	if n := logs.count(fellBack); n != 1 {
		t.Fatalf("%d fallback lines after 3 failures, want 1\n%s", n, logs.String())
	}
	conns, bytes := silent.accepted.Load(), silent.received.Load()
	codes, took := hitAll(h, 200, func(i int) string { return "203.0.113." + strconv.Itoa(i%50+1) + ":1" })
	if m := slowest(took); m >= timeout {
		t.Errorf("with the breaker open the slowest request took %v, want well under the timeout %v", m, timeout)
	}
	if silent.accepted.Load() != conns || silent.received.Load() != bytes {
		t.Errorf("with the breaker open Redis got %d more connections and %d more bytes, want none",
			silent.accepted.Load()-conns, silent.received.Load()-bytes)
	}
	// Counted in memory: each of the 50 clients gets its burst of 2.
	passed := 0
	for _, c := range codes {
		if c == http.StatusOK {
			passed++
		}
	}
	if passed != 100 {
		t.Errorf("%d of 200 requests from 50 clients passed, want each client's burst of 2 (100)", passed)
	}
	if n := logs.count(fellBack); n != 1 {
		t.Errorf("%d fallback lines, want 1", n)
	}
}

// A Redis that refuses connections costs nothing noticeable: limits hold
// per replica, and the fallback is logged once.
func TestRefusingRedisLimitsPerReplicaAndLogsOnce(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	h := limited(t, ratelimit.Options{
		RPS: 0.02, Burst: 2, Redis: clientFor(t, closedPort(t), 200*time.Millisecond),
		Prefix: uniquePrefix(t), Logger: logs.logger(),
	})
	codes, _ := hitAll(h, 40, func(i int) string { return "203.0.113." + strconv.Itoa(i%10+1) + ":1" })
	passed := 0
	for _, c := range codes {
		if c == http.StatusOK {
			passed++
		} else if c != http.StatusTooManyRequests {
			t.Fatalf("status %d, want 200 or 429", c)
		}
	}
	if passed != 20 {
		t.Errorf("%d of 40 requests from 10 clients passed, want each client's burst of 2 (20)", passed)
	}
	for range 20 {
		hit(h, "198.51.100.9:1", "/api/time-slots")
	}
	if n := logs.count(fellBack); n != 1 {
		t.Errorf("%d fallback lines, want 1\n%s", n, logs.String())
	}
	if n := logs.count(cameBack); n != 0 {
		t.Errorf("%d recovery lines, want 0", n)
	}
}

// Two replicas lose Redis, limit per replica while it is away (a client
// alternating between them gets a burst from each), retry it now and then
// without a word, and, once it answers, share the limit again by
// themselves: each logs one line each way.
func TestRecoveryToTheSharedLimitIsAutomatic(t *testing.T) {
	t.Parallel()
	real := redisClient(t)
	proxy := newFakeRedis(t, real.Options().Addr)
	const timeout = 200 * time.Millisecond
	const open = 300 * time.Millisecond
	prefix := uniquePrefix(t)
	var logsA, logsB logBuffer
	replica := func(logs *logBuffer) http.Handler {
		return limited(t, ratelimit.WithBreaker(ratelimit.Options{
			RPS: 0.05, Burst: 5, Redis: clientFor(t, proxy.Addr(), timeout), Timeout: timeout,
			Prefix: prefix, Logger: logs.logger(),
		}, 3, open))
	}
	a, b := replica(&logsA), replica(&logsB)
	alternate := func(client string, n int) int {
		passed := 0
		for i := range n {
			h := a
			if i%2 == 1 {
				h = b
			}
			if hit(h, client, "/api/time-slots").Code == http.StatusOK {
				passed++
			}
		}
		return passed
	}

	// Redis hangs: many clients at once on both replicas.
	var wg sync.WaitGroup
	for _, h := range []http.Handler{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hitAll(h, 20, func(i int) string { return "203.0.113." + strconv.Itoa(i+1) + ":1" })
		}()
	}
	wg.Wait()
	if logsA.count(fellBack) != 1 || logsB.count(fellBack) != 1 {
		t.Fatalf("fallback lines: %d and %d, want 1 each", logsA.count(fellBack), logsB.count(fellBack))
	}
	if got := alternate("198.51.100.1:1", 20); got != 10 {
		t.Errorf("while Redis is away %d of 20 alternating requests passed, want 5 per replica", got)
	}
	// Several retries fail while Redis still hangs: nothing more is logged.
	for range 3 {
		time.Sleep(open + 50*time.Millisecond)
		hitAll(a, 5, func(int) string { return "198.51.100.2:1" })
		hitAll(b, 5, func(int) string { return "198.51.100.2:1" })
	}
	if logsA.count(fellBack) != 1 || logsB.count(fellBack) != 1 || logsA.count(cameBack)+logsB.count(cameBack) != 0 {
		t.Fatalf("after failed retries: %d/%d fallback and %d/%d recovery lines, want 1/1 and 0/0",
			logsA.count(fellBack), logsB.count(fellBack), logsA.count(cameBack), logsB.count(cameBack))
	}

	// Redis answers again: each replica finds out by itself.
	proxy.forward.Store(true)
	for deadline := time.Now().Add(20 * time.Second); logsA.count(cameBack) == 0 || logsB.count(cameBack) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within 20 s\nA: %s\nB: %s", logsA.String(), logsB.String())
		}
		hit(a, "198.51.100.3:1", "/api/time-slots")
		hit(b, "198.51.100.3:1", "/api/time-slots")
		time.Sleep(20 * time.Millisecond)
	}
	if got := alternate("198.51.100.4:1", 20); got != 5 {
		t.Errorf("after recovery %d of 20 alternating requests passed, want the shared burst of 5", got)
	}
	for name, logs := range map[string]*logBuffer{"A": &logsA, "B": &logsB} {
		if logs.count(fellBack) != 1 || logs.count(cameBack) != 1 {
			t.Errorf("replica %s logged %d fallback and %d recovery lines, want 1 each\n%s",
				name, logs.count(fellBack), logs.count(cameBack), logs.String())
		}
	}
}

// Replicas racing for one client's requests on a shared Redis never let
// more through than the burst: the check and the count are one step.
func TestRacingReplicasShareExactlyTheBurst(t *testing.T) {
	t.Parallel()
	c := redisClient(t)
	prefix := uniquePrefix(t)
	opt := ratelimit.Options{RPS: 0.1, Burst: 10, Redis: c, Prefix: prefix, Timeout: 5 * time.Second}
	replicas := []http.Handler{limited(t, opt), limited(t, opt), limited(t, opt)}
	var passed atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			switch code := hit(replicas[i%3], "203.0.113.1:1", "/api/time-slots").Code; code {
			case http.StatusOK:
				passed.Add(1)
			case http.StatusTooManyRequests:
			default:
				t.Errorf("status %d", code)
			}
		}()
	}
	close(start)
	wg.Wait()
	if passed.Load() != 10 {
		t.Errorf("%d of 60 racing requests passed on three replicas, want the burst of 10", passed.Load())
	}
}

// A client that would not bound its calls by the request's deadline is
// refused when the limiter is built.
func TestRedisClientMustHonourDeadlines(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: closedPort(t)})
	t.Cleanup(func() { _ = c.Close() })
	if _, err := ratelimit.New(ratelimit.Options{RPS: 1, Burst: 1, Redis: c}); err == nil {
		t.Error("New accepted a Redis client that ignores context deadlines")
	}
}

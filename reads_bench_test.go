//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"timeslots/internal/config"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/feed"
	"timeslots/internal/metrics"
	"timeslots/internal/readcache"
	"timeslots/internal/slots"
)

// BenchmarkReadPage measures what one 20-slot page costs the server's own
// CPU, through the whole handler chain of routes but without a network or
// a load generator: the bench reads' GraphQL query and REST request, on
// the demo data. Besides ns/op (which includes waiting for the database)
// it reports cpu-µs/op, the process CPU time per page, which is what bounds
// throughput on a machine the database shares.
func BenchmarkReadPage(b *testing.B) {
	benchReadPage(b, false)
}

// BenchmarkCachedReadPage is BenchmarkReadPage on a server with a read
// cache: after the warm-up call, every page is a hit, so cpu-µs/op is
// what a hit costs the server.
func BenchmarkCachedReadPage(b *testing.B) {
	benchReadPage(b, true)
}

func benchReadPage(b *testing.B, cached bool) {
	for _, d := range dbtest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			client, _, _ := benchApp(b, d, cached)
			from := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
			to := time.Now().UTC().AddDate(0, 0, 6).Format("2006-01-02")
			gql := `{"query":"query Slots($p: ID!, $s: Date!, $e: Date!) { timeSlots(first: 20, filter: {providerId: $p, startDate: $s, endDate: $e}) { edges { cursor node { id providerId startTime endTime date status capacity bookedCount } } pageInfo { hasNextPage endCursor } } }","variables":{"p":"1","s":"` + from + `","e":"` + to + `"}}`
			for _, tc := range []struct {
				name, method, path string
				header             http.Header
				body               string
			}{
				{"GraphQL", http.MethodPost, "/graphql", http.Header{"Content-Type": {"application/json"}}, gql},
				{"REST", http.MethodGet, "/api/time-slots?providerId=1&startDate=" + from + "&endDate=" + to + "&limit=20", nil, ""},
			} {
				b.Run(tc.name, func(b *testing.B) {
					reportCPUPerOp(b, func() {
						var body io.Reader
						if tc.body != "" {
							body = strings.NewReader(tc.body)
						}
						a, err := getAnswer(client, tc.method, inProcessURL+tc.path, tc.header, body)
						if err != nil || a.Status != http.StatusOK || bytes.Contains(a.Body, []byte(`"errors"`)) || !bytes.Contains(a.Body, []byte("startTime")) {
							b.Fatalf("%v %s", err, a)
						}
					})
				})
			}
		})
	}
}

// benchApp answers a client of the server's handler served in process
// (inProcess) over a fresh database of dialect d holding the demo data, and
// the slot manager and database behind it.
func benchApp(b *testing.B, d database.Dialect, cached bool) (*http.Client, *slots.Manager, *database.DB) {
	b.Helper()
	env := map[string]string{
		"DATABASE_URL": dbtest.URL(b, d), "SCHEDULER_ENABLED": "false", "RATE_LIMIT_RPS": "0",
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx := context.Background()
	db, _, err := openStore(ctx, cfg, logger, cfg.RequestTimeout)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	met := metrics.New(db.SQL())
	mgr := slots.New(db, slots.WithHooks(met.SlotHooks()))
	if _, err := mgr.SeedDemo(ctx); err != nil {
		b.Fatal(err)
	}
	app := &application{cfg: cfg, logger: logger, db: db, slots: mgr, feed: feed.NewLocal(), metrics: met}
	if cached {
		app.answers = readcache.New(readcache.Options{MaxBytes: 16 << 20, Now: mgr.Now})
		app.answers.Follow(app.feed)
	}
	h, err := app.routes()
	if err != nil {
		b.Fatal(err)
	}
	return &http.Client{Transport: inProcess{h}}, mgr, db
}

// inProcessURL is the base URL of requests that inProcess serves.
const inProcessURL = "http://in-process"

// inProcess is a RoundTripper that serves each request with the server's
// handler in this process, as from a loopback client: no network and no load
// generator, so the process's CPU time is the server's but for the few
// allocations of http.Client and getAnswer around each request.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	sr := httptest.NewRequestWithContext(r.Context(), r.Method, r.URL.RequestURI(), body)
	sr.ContentLength = r.ContentLength
	sr.Header = r.Header.Clone()
	sr.RemoteAddr = "127.0.0.1:40000"
	w := httptest.NewRecorder()
	p.h.ServeHTTP(w, sr)
	_ = body.Close()
	resp := w.Result()
	resp.Request = r
	return resp, nil
}

// reportCPUPerOp calls op once to warm up, then b.N times, and reports
// the process CPU time per call (cpu-µs/op) beside ns/op and allocations.
func reportCPUPerOp(b *testing.B, op func()) {
	b.Helper()
	op()
	b.ReportAllocs()
	start := cpuTime()
	b.ResetTimer()
	for range b.N {
		op()
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime answers the CPU time this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBookSlot measures what one bookSlot over GraphQL costs the
// server's own CPU, like BenchmarkReadPage: the bench's booking mutation,
// each iteration on another free slot of the demo providers (a year of
// them; -benchtime=5000x keeps it short).
func BenchmarkBookSlot(b *testing.B) {
	for _, d := range dbtest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			client, mgr, _ := benchApp(b, d, false)
			// A year of the demo providers' slots; those from the day after
			// tomorrow on are free and far enough ahead for any minimum
			// notice. The REST list pages them.
			if _, err := mgr.Generate(context.Background(), slots.GenerateInput{DaysAhead: slots.MaxDaysAhead}); err != nil {
				b.Fatal(err)
			}
			var free []string
			from := time.Now().UTC().AddDate(0, 0, 2).Format("2006-01-02")
			for cursor := ""; len(free) < b.N+1; {
				q := "/api/time-slots?limit=200&startDate=" + from
				if cursor != "" {
					q += "&cursor=" + url.QueryEscape(cursor)
				}
				a, err := getAnswer(client, http.MethodGet, inProcessURL+q, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				var page struct {
					Data []struct {
						ID json.Number `json:"id"`
					} `json:"data"`
					Pagination struct {
						NextCursor *string `json:"nextCursor"`
					} `json:"pagination"`
				}
				if err := json.Unmarshal(a.Body, &page); err != nil || a.Status != http.StatusOK {
					b.Fatalf("%v %s", err, a)
				}
				for _, s := range page.Data {
					free = append(free, s.ID.String())
				}
				if page.Pagination.NextCursor == nil {
					if len(free) < b.N+1 {
						b.Skipf("%d free slots for %d bookings", len(free), b.N+1)
					}
					break
				}
				cursor = *page.Pagination.NextCursor
			}
			next := 0
			reportCPUPerOp(b, func() {
				body := `{"query":"mutation Book($s: ID!, $c: String!) { bookSlot(input: {slotId: $s, customer: $c}) { booking { id status } slot { id remaining status } } }","variables":{"s":"` +
					free[next] + `","c":"customer-` + strconv.Itoa(next) + `"}}`
				next++
				a, err := getAnswer(client, http.MethodPost, inProcessURL+"/graphql", http.Header{"Content-Type": {"application/json"}}, strings.NewReader(body))
				if err != nil || a.Status != http.StatusOK || !bytes.Contains(a.Body, []byte(`"CONFIRMED"`)) {
					b.Fatalf("%v %s", err, a)
				}
			})
		})
	}
}

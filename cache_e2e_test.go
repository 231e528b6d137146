package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"timeslots/internal/database"

	"timeslots/internal/dbtest"
)

// cacheProvider creates a provider working all day every day with
// capacity seats per slot, through the admin API, and answers its id.
func cacheProvider(t *testing.T, base string, capacity int) string {
	t.Helper()
	var hours []map[string]string
	for _, d := range []string{"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"} {
		hours = append(hours, map[string]string{"weekday": d, "start": "00:00", "end": "24:00"})
	}
	var out struct{ CreateProvider struct{ ID string } }
	postGraphQL(t, base, `mutation($in: ProviderInput!) { createProvider(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"name": "Cached", "timeZone": "UTC", "slotMinutes": 60, "capacity": capacity, "workingHours": hours}}, nil).Decode(t, &out)
	return out.CreateProvider.ID
}

// sendGraphQL posts one operation and answers the raw body; goroutines
// use it (it takes no testing.TB).
func sendGraphQL(base, query string, vars map[string]any) ([]byte, error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return nil, err
	}
	a, err := getAnswer(nil, http.MethodPost, base+"/graphql", http.Header{"Content-Type": {"application/json"}}, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if a.Status != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", a.Status, a.Body)
	}
	return a.Body, nil
}

// TestReadYourWritesThroughTheCache books one seat after another on one
// server, 1,000 times, while readers keep the slot's page in the read
// cache: the page read right after each booking answers its new
// remaining, and no reader ever sees remaining go back up.
func TestReadYourWritesThroughTheCache(t *testing.T) {
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testEnv(t, d, map[string]string{"SEED_DEMO": "false", "LOG_LEVEL": "warn"}))
			const seats = 1000
			pid := cacheProvider(t, srv.URL, seats)
			postGraphQL(t, srv.URL, `mutation { generateSlots(input: {daysAhead: 2}) { created } }`, nil, nil).Decode(t, &struct{}{})
			page := `query($p: ID!) { timeSlots(first: 1, filter: {providerId: $p, status: [AVAILABLE, BOOKED], startDate: "` +
				time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly) + `"}) { nodes { id remaining } } }`
			vars := map[string]any{"p": pid}
			read := func() (id string, remaining int, err error) {
				b, err := sendGraphQL(srv.URL, page, vars)
				if err != nil {
					return "", 0, err
				}
				var r struct {
					Data struct {
						TimeSlots struct {
							Nodes []struct {
								ID        string
								Remaining int
							}
						}
					}
				}
				if err := json.Unmarshal(b, &r); err != nil || len(r.Data.TimeSlots.Nodes) != 1 {
					return "", 0, fmt.Errorf("page: %v %s", err, b)
				}
				n := r.Data.TimeSlots.Nodes[0]
				return n.ID, n.Remaining, nil
			}
			slot, remaining, err := read()
			if err != nil || remaining != seats {
				t.Fatalf("first read: %s %d %v", slot, remaining, err)
			}
			var done atomic.Bool
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					last := seats
					for !done.Load() {
						_, r, err := read()
						if err != nil {
							t.Error(err)
							return
						}
						if r > last {
							t.Errorf("a reader saw remaining go from %d back up to %d", last, r)
							return
						}
						last = r
					}
				}()
			}
			for i := range seats {
				b, err := sendGraphQL(srv.URL, `mutation($s: ID!, $c: String!) { bookSlot(input: {slotId: $s, customer: $c}) { slot { remaining } } }`,
					map[string]any{"s": slot, "c": "customer " + strconv.Itoa(i)})
				if err != nil || !bytes.Contains(b, []byte(fmt.Sprintf(`"remaining":%d`, seats-i-1))) {
					t.Fatalf("booking %d: %v %s", i, err, b)
				}
				if _, r, err := read(); err != nil || r != seats-i-1 {
					t.Fatalf("after booking %d: remaining %d (%v), want %d", i, r, err, seats-i-1)
				}
			}
			done.Store(true)
			wg.Wait()
			if hits := scrapeCounter(t, srv.URL, "timeslots_cache_hits_total"); hits == 0 {
				t.Fatal("the readers never hit the cache")
			}
		})
	}
}

// scrapeCounter reads one unlabelled sample from the server's /metrics.
func scrapeCounter(t *testing.T, base, name string) float64 {
	t.Helper()
	a, err := getAnswer(nil, http.MethodGet, base+"/metrics", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(a.Body)
	if m == nil {
		t.Fatalf("%s not in /metrics", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCachedAnswersMatchTheDatabaseAcrossReplicas races random bookings,
// cancellations, generations and cleanups on two servers over one
// PostgreSQL against cached reads on both; once every event of each has
// reached the other, every page both answer (from their caches where
// they hold it) is byte for byte what a third server without a cache
// answers.
func TestCachedAnswersMatchTheDatabaseAcrossReplicas(t *testing.T) {
	t.Parallel()
	env := testEnv(t, database.Postgres, map[string]string{"SEED_DEMO": "false", "LOG_LEVEL": "warn"})
	a := startServer(t, env)
	b := startServer(t, env)
	env["CACHE_MAX_BYTES"] = "0"
	plain := startServer(t, env)
	servers := []*testServer{a, b}

	var pids []string
	for range 3 {
		pids = append(pids, cacheProvider(t, a.URL, 2))
	}
	postGraphQL(t, a.URL, `mutation { generateSlots(input: {daysAhead: 2}) { created } }`, nil, nil).Decode(t, &struct{}{})
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	type read struct {
		query string
		vars  map[string]any
	}
	var reads []read
	restReads := []string{"/api/time-slots?limit=50", "/api/time-slots?status=all&providerId=" + pids[0], "/api/time-slots?date=" + tomorrow + "&status=booked"}
	for _, p := range pids {
		reads = append(reads,
			read{`query($p: ID!) { timeSlots(first: 30, filter: {providerId: $p}) { nodes { id remaining status } pageInfo { hasNextPage } } }`, map[string]any{"p": p}},
			read{`query($p: ID!, $d: Date!) { timeSlots(first: 10, filter: {providerIds: [$p], date: $d, status: [AVAILABLE, BOOKED]}) { edges { cursor node { id bookedCount provider { id name } } } } }`, map[string]any{"p": p, "d": tomorrow}},
			// Pages that end among the booked slots: a change beyond the
			// row read past them leaves them (SlotPage.Within).
			read{`query($p: ID!, $d: Date!) { timeSlots(first: 3, filter: {providerId: $p, startDate: $d}) { nodes { id remaining } pageInfo { hasNextPage endCursor } } }`, map[string]any{"p": p, "d": tomorrow}},
			read{`query($p: ID!, $d: Date!) { timeSlots(last: 2, filter: {providerId: $p, startDate: $d, endDate: $d, status: [BOOKED]}) { nodes { id bookedCount } pageInfo { hasPreviousPage startCursor } } }`, map[string]any{"p": p, "d": tomorrow}},
		)
		restReads = append(restReads, "/api/time-slots?limit=2&startDate="+tomorrow+"&providerId="+p)
	}
	reads = append(reads,
		read{`{ timeSlots(first: 50) { nodes { id providerId remaining } pageInfo { endCursor hasNextPage } } }`, nil},
		read{`{ timeSlots(last: 20, filter: {status: [BOOKED]}) { nodes { id startTime } } }`, nil},
	)

	// The slots to book: the first page of each provider.
	var slotIDs []string
	for _, p := range pids {
		var out struct {
			TimeSlots struct{ Nodes []struct{ ID string } }
		}
		postGraphQL(t, a.URL, `query($p: ID!) { timeSlots(first: 8, filter: {providerId: $p, startDate: "`+tomorrow+`"}) { nodes { id } } }`, map[string]any{"p": p}, nil).Decode(t, &out)
		for _, n := range out.TimeSlots.Nodes {
			slotIDs = append(slotIDs, n.ID)
		}
	}

	var stop atomic.Bool
	var readers, writers sync.WaitGroup
	start := make(chan struct{})
	for r := range 6 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			<-start
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for !stop.Load() {
				s := servers[rng.IntN(2)]
				if rng.IntN(4) == 0 {
					if _, err := getAnswer(nil, http.MethodGet, s.URL+restReads[rng.IntN(len(restReads))], nil, nil); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				rd := reads[rng.IntN(len(reads))]
				if _, err := sendGraphQL(s.URL, rd.query, rd.vars); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var refs sync.Map // references of bookings that may be cancelled
	for w := range 3 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			<-start
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for i := range 60 {
				s := servers[rng.IntN(2)]
				var err error
				switch op := rng.IntN(10); {
				case op < 6:
					var body []byte
					body, err = sendGraphQL(s.URL, `mutation($s: ID!, $c: String!) { bookSlot(input: {slotId: $s, customer: $c}) { booking { reference } } }`,
						map[string]any{"s": slotIDs[rng.IntN(len(slotIDs))], "c": fmt.Sprintf("c%d-%d", w, i)})
					if m := regexp.MustCompile(`"reference":"([^"]+)"`).FindSubmatch(body); m != nil {
						refs.Store(string(m[1]), true)
					}
				case op < 8:
					refs.Range(func(k, _ any) bool {
						if _, loaded := refs.LoadAndDelete(k); loaded {
							_, err = sendGraphQL(s.URL, `mutation($r: String!) { cancelBooking(input: {reference: $r}) { booking { status } } }`, map[string]any{"r": k})
						}
						return false
					})
				case op < 9:
					_, err = sendGraphQL(s.URL, fmt.Sprintf(`mutation { generateSlots(input: {daysAhead: %d}) { created } }`, 2+rng.IntN(3)), nil)
				default:
					_, err = sendGraphQL(s.URL, `mutation { cleanupSlots(input: {daysOld: 0}) { deleted } }`, nil)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	close(start)
	writers.Wait()
	stop.Store(true)
	readers.Wait()
	if t.Failed() {
		return
	}

	// The feed is quiet once each server has received every event the
	// other published.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if scrapeCounter(t, a.URL, "timeslots_feed_events_published_total") == scrapeCounter(t, b.URL, "timeslots_feed_events_received_total") &&
			scrapeCounter(t, b.URL, "timeslots_feed_events_published_total") == scrapeCounter(t, a.URL, "timeslots_feed_events_received_total") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the servers' feeds did not exchange every event within 30 s: a published %v, received %v; b published %v, received %v",
				scrapeCounter(t, a.URL, "timeslots_feed_events_published_total"), scrapeCounter(t, a.URL, "timeslots_feed_events_received_total"),
				scrapeCounter(t, b.URL, "timeslots_feed_events_published_total"), scrapeCounter(t, b.URL, "timeslots_feed_events_received_total"))
		}
	}
	hits := scrapeCounter(t, a.URL, "timeslots_cache_hits_total") + scrapeCounter(t, b.URL, "timeslots_cache_hits_total")
	for _, rd := range reads {
		want, err := sendGraphQL(plain.URL, rd.query, rd.vars)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			for range 2 { // the second read is answered from the cache
				got, err := sendGraphQL(s.URL, rd.query, rd.vars)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s answered %s (%v)\nthe database: %s", rd.query, got, err, want)
				}
			}
		}
	}
	for _, path := range restReads {
		want, err := getAnswer(nil, http.MethodGet, plain.URL+path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			for range 2 {
				got, err := getAnswer(nil, http.MethodGet, s.URL+path, nil, nil)
				if err != nil || !bytes.Equal(got.Body, want.Body) {
					t.Fatalf("%s answered %s (%v)\nthe database: %s", path, got.Body, err, want.Body)
				}
			}
		}
	}
	after := scrapeCounter(t, a.URL, "timeslots_cache_hits_total") + scrapeCounter(t, b.URL, "timeslots_cache_hits_total")
	if hits == 0 || after-hits < float64(len(reads)+len(restReads)) {
		t.Fatalf("cache hits: %v while racing, %v when checking: the caches did not answer", hits, after-hits)
	}
}

// TestAProviderEditReachesCachedAnswers edits a provider whose slots'
// pages, with the provider's fields beside each slot, are in the read
// cache: the server that made the edit answers the new fields at once;
// on PostgreSQL a second server does once the feed has brought the edit,
// well before CACHE_MAX_AGE (an hour here) would have. A rename and a
// reactivation are edits the feed carries, as a deactivation is.
func TestAProviderEditReachesCachedAnswers(t *testing.T) {
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			env := testEnv(t, d, map[string]string{"SEED_DEMO": "false", "LOG_LEVEL": "warn", "CACHE_MAX_AGE": "1h"})
			servers := []*testServer{startServer(t, env)}
			if d == database.Postgres { // SQLite's feed is in-process: one server owns the file
				servers = append(servers, startServer(t, env))
			}
			pid := cacheProvider(t, servers[0].URL, 1)
			postGraphQL(t, servers[0].URL, `mutation { generateSlots(input: {daysAhead: 2}) { created } }`, nil, nil).Decode(t, &struct{}{})
			reads := []string{
				`query($p: ID!) { timeSlots(first: 3, filter: {providerId: $p}) { nodes { id provider { id name timeZone active } } } }`,
				`query { timeSlots(first: 3) { nodes { id provider { name timeZone active } } } }`, // any provider's
			}
			vars := map[string]any{"p": pid}
			read := func(s *testServer, query string) string {
				b, err := sendGraphQL(s.URL, query, vars)
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			shows := func(s *testServer, want string) bool {
				for _, q := range reads {
					if got := read(s, q); !strings.Contains(got, want) || strings.Count(got, `"name"`) != 3 {
						return false
					}
				}
				return true
			}
			// edit replaces the provider's settings on server at, which
			// answers them at once; every other server within 30 s.
			edit := func(at int, name, zone string, active bool, want string) {
				t.Helper()
				// Every page in every cache: a server's cache is off until
				// its feed's listener has connected, and emptied should the
				// listener reconnect, so each is read until it answers hits.
				for _, s := range servers {
					for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
						for _, q := range reads {
							read(s, q)
						}
						hits := scrapeCounter(t, s.URL, "timeslots_cache_hits_total")
						if shows(s, `"name":"`) && scrapeCounter(t, s.URL, "timeslots_cache_hits_total") >= hits+float64(len(reads)) {
							break
						}
						if time.Now().After(deadline) {
							t.Fatal("the pages are not answered from the cache within 30 s")
						}
					}
				}
				postGraphQL(t, servers[at].URL, `mutation($id: ID!, $in: ProviderInput!) { updateProvider(id: $id, input: $in) { id } }`,
					map[string]any{"id": pid, "in": map[string]any{"name": name, "timeZone": zone, "slotMinutes": 60, "capacity": 1, "active": active,
						"workingHours": []map[string]string{{"weekday": "MONDAY", "start": "09:00", "end": "10:00"}}}}, nil).Decode(t, &struct{}{})
				if !shows(servers[at], want) {
					t.Fatalf("the server that made the edit answers %s, want %s", read(servers[at], reads[0]), want)
				}
				for i, s := range servers {
					if i == at {
						continue
					}
					for deadline := time.Now().Add(30 * time.Second); !shows(s, want); time.Sleep(20 * time.Millisecond) {
						if time.Now().After(deadline) {
							t.Fatalf("another server still answers %s 30 s after the edit, want %s", read(s, reads[0]), want)
						}
					}
				}
			}
			edit(0, "Renamed", "Europe/Berlin", true, `"name":"Renamed","timeZone":"Europe/Berlin","active":true`)
			edit(len(servers)-1, "Renamed", "Europe/Berlin", false, `"timeZone":"Europe/Berlin","active":false`)
			edit(0, "Back", "UTC", true, `"name":"Back","timeZone":"UTC","active":true`)
		})
	}
}

// TestTheCacheBudgetHoldsOnAServer reads far more distinct pages than
// CACHE_MAX_BYTES holds: the bytes the server reports stay within it,
// and the answers that left to make room are counted as evictions.
func TestTheCacheBudgetHoldsOnAServer(t *testing.T) {
	t.Parallel()
	const budget = 32 << 10
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{"SEED_DEMO": "false", "LOG_LEVEL": "warn",
		"CACHE_MAX_BYTES": strconv.Itoa(budget)}))
	cacheProvider(t, srv.URL, 1)
	postGraphQL(t, srv.URL, `mutation { generateSlots(input: {daysAhead: 3}) { created } }`, nil, nil).Decode(t, &struct{}{})
	var sent int
	for limit := 1; limit <= 60; limit++ { // about 9 KB of answers per 60 slots: 270 KB in all
		for range 2 {
			a, err := getAnswer(nil, http.MethodGet, fmt.Sprintf("%s/api/time-slots?limit=%d", srv.URL, limit), nil, nil)
			if err != nil || a.Status != http.StatusOK {
				t.Fatalf("limit %d: %v %v", limit, a, err)
			}
			sent += len(a.Body)
		}
	}
	held, evicted := scrapeCounter(t, srv.URL, "timeslots_cache_bytes"), scrapeCounter(t, srv.URL, "timeslots_cache_evictions_total")
	if held == 0 || held > budget || evicted == 0 {
		t.Fatalf("after %d bytes of pages: the cache holds %v bytes (budget %d), %v evictions counted", sent, held, budget, evicted)
	}
	if entries := scrapeCounter(t, srv.URL, "timeslots_cache_entries"); entries+evicted < 60 {
		t.Fatalf("%v answers kept and %v evicted of the 60 pages read", entries, evicted)
	}
}

// TestRawHitsAreCountedLikeAnyRequest sends the same GraphQL page and the
// same REST page three times each to a server with the read cache: the
// second and third are answered from the cache by their raw bytes, and
// every request is still counted by the route and operation metrics (and
// the cache's hits), exactly as the first.
func TestRawHitsAreCountedLikeAnyRequest(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{"SEED_DEMO": "false", "LOG_LEVEL": "warn"}))
	pid := cacheProvider(t, srv.URL, 2)
	postGraphQL(t, srv.URL, `mutation { generateSlots(input: {daysAhead: 2}) { created } }`, nil, nil).Decode(t, &struct{}{})
	hits := scrapeCounter(t, srv.URL, "timeslots_cache_hits_total")
	var first []byte
	for i := range 3 {
		b, err := sendGraphQL(srv.URL, `query RawCounted($p: ID!) { timeSlots(first: 2, filter: {providerId: $p}) { nodes { id remaining } } }`, map[string]any{"p": pid})
		if err != nil || (first != nil && !bytes.Equal(b, first)) || !bytes.Contains(b, []byte(`"remaining":2`)) {
			t.Fatalf("read %d: %v %s (first %s)", i, err, b, first)
		}
		first = b
		a, err := getAnswer(nil, http.MethodGet, srv.URL+"/api/time-slots?limit=2&providerId="+pid, nil, nil)
		if err != nil || a.Status != http.StatusOK {
			t.Fatalf("REST read %d: %v %s", i, err, a)
		}
	}
	for series, want := range map[string]float64{
		`timeslots_cache_hits_total`: hits + 4,
		`timeslots_graphql_operation_duration_seconds_count{operation="query RawCounted",outcome="ok"}`:    3,
		`timeslots_graphql_root_field_duration_seconds_count{field="timeSlots"}`:                           3,
		`timeslots_http_request_duration_seconds_count{method="POST",route="/graphql",status="200"}`:       5, // with the two mutations
		`timeslots_http_request_duration_seconds_count{method="GET",route="/api/time-slots",status="200"}`: 3,
	} {
		if got := scrapeMetric(t, srv.URL, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

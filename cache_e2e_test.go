package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

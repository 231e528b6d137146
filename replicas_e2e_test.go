package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/pgreplica"
)

// readyReplicas answers the replicas /readyz lists, by name, with the
// status it answers.
func readyReplicas(t *testing.T, base string) (int, map[string]string) {
	t.Helper()
	a, err := getAnswer(nil, http.MethodGet, base+"/readyz", nil, nil)
	if err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	var body struct {
		Replicas []struct{ Name, State string }
	}
	if err := json.Unmarshal(a.Body, &body); err != nil {
		t.Fatalf("/readyz body %s: %v", a.Body, err)
	}
	out := map[string]string{}
	for _, r := range body.Replicas {
		out[r.Name] = r.State
	}
	return a.Status, out
}

// firstSeries answers the value of the first sample in a /metrics text
// whose series starts with prefix.
func firstSeries(t *testing.T, text, prefix string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return metricValue(t, text, line[:strings.LastIndexByte(line, ' ')])
		}
	}
	t.Fatalf("no %s… in /metrics", prefix)
	return 0
}

// replicaState answers the one replica's state in /readyz.
func replicaState(t *testing.T, base string) string {
	t.Helper()
	_, states := readyReplicas(t, base)
	if len(states) != 1 {
		t.Fatalf("/readyz lists %v, want one replica", states)
	}
	for _, s := range states {
		return s
	}
	return ""
}

// On a real streaming replica: reads of slots go to the replica, while a
// mutation's payload (and an idempotent replay's) is read on the primary;
// a replica paused past REPLICA_MAX_LAG is skipped and used again once it
// catches up; a replica stopped under many concurrent reads costs none of
// them.
func TestReadReplicas(t *testing.T) {
	rep := pgreplica.Start(t)
	const token = "the-e2e-admin-token"
	primaryURL := dbtest.URL(t, database.Postgres)
	replicaURL := rep.URL(t, primaryURL)
	env := func(maxLag string) map[string]string {
		e := testEnv(t, database.Postgres, map[string]string{
			"ADMIN_TOKEN": token, "DATABASE_REPLICA_URLS": replicaURL, "REPLICA_MAX_LAG": maxLag,
		})
		e["DATABASE_URL"] = primaryURL
		return e
	}
	// stale tolerates an hour of lag: it reads the paused replica's
	// old rows, which tells its reads apart from the primary's.
	stale := startServer(t, env("1h"))
	rep.CatchUp(t)
	strict := startServer(t, env("300ms"))
	for _, srv := range []*testServer{stale, strict} {
		eventually(t, "the replica healthy", 30e9, func() bool { return replicaState(t, srv.URL) == "healthy" })
	}
	gql := func(base, query string, vars map[string]any) gqlResult {
		t.Helper()
		return postGraphQL(t, base, query, vars, bearer(token, false))
	}
	// A slot the demo data lets anyone book now.
	var p slotPage
	gql(stale.URL, pageQuery, map[string]any{"first": 100}).Decode(t, &p)
	slotID := ""
	for _, e := range p.TimeSlots.Edges {
		if n := e.Node; n.Provider.MinNoticeMinutes == 0 && n.StartTime.After(time.Now().Add(time.Hour)) {
			slotID = n.ID
			break
		}
	}
	if slotID == "" {
		t.Fatal("the demo data has no slot to book in its first page")
	}
	booked := func(base string) int {
		t.Helper()
		var s struct{ TimeSlot struct{ BookedCount int } }
		gql(base, `query($id: ID!) { timeSlot(id: $id) { bookedCount } }`, map[string]any{"id": slotID}).Decode(t, &s)
		return s.TimeSlot.BookedCount
	}
	rep.CatchUp(t)
	if n := booked(stale.URL); n != 0 {
		t.Fatalf("bookedCount %d before any booking", n)
	}

	rep.Pause(t)
	const book = `mutation($in: BookSlotInput!) { bookSlot(input: $in) {
		booking { reference slot { bookedCount } } slot { id bookedCount remaining } } }`
	var b struct {
		BookSlot struct {
			Booking struct {
				Reference string
				Slot      struct{ BookedCount int }
			}
			Slot struct{ BookedCount, Remaining int }
		}
	}
	in := map[string]any{"in": map[string]any{"slotId": slotID, "customer": "Ann", "idempotencyKey": "replica-key"}}
	gql(stale.URL, book, in).Decode(t, &b)
	// The booking's slot is loaded by the payload's own field, through
	// the slot loader: on the primary too.
	if b.BookSlot.Slot.BookedCount != 1 || b.BookSlot.Booking.Slot.BookedCount != 1 {
		t.Fatalf("the booking's payload says bookedCount %d and %d, want 1 (read on the primary)",
			b.BookSlot.Slot.BookedCount, b.BookSlot.Booking.Slot.BookedCount)
	}
	if n := booked(stale.URL); n != 0 {
		t.Fatalf("a query read bookedCount %d while the replica is paused, want its stale 0 (read on the replica)", n)
	}
	// The replay of the idempotency key reads the slot again: on the
	// primary.
	b.BookSlot.Slot.BookedCount = 0
	gql(stale.URL, book, in).Decode(t, &b)
	if b.BookSlot.Slot.BookedCount != 1 || b.BookSlot.Booking.Slot.BookedCount != 1 {
		t.Fatalf("the idempotent replay's payload says bookedCount %d, want 1 (read on the primary)", b.BookSlot.Slot.BookedCount)
	}

	// Past 300 ms behind, strict skips the replica and reads the
	// primary; the writes above are WAL the replica has not replayed.
	eventually(t, "the paused replica lagging", 30e9, func() bool { return replicaState(t, strict.URL) == "lagging" })
	if status, _ := readyReplicas(t, strict.URL); status != http.StatusOK {
		t.Errorf("/readyz = %d with a lagging replica, want 200: the primary decides", status)
	}
	_, states := readyReplicas(t, strict.URL)
	for name := range states {
		if text := scrape(t, strict.URL); metricValue(t, text, `timeslots_replica_state{replica="`+name+`",state="lagging"}`) != 1 ||
			metricValue(t, text, `timeslots_replica_lag_seconds{replica="`+name+`"}`) < 0.3 {
			t.Errorf("/metrics does not show replica %s lagging:\n%s", name, text)
		}
	}
	if n := booked(strict.URL); n != 1 {
		t.Fatalf("bookedCount %d with the lagging replica skipped, want 1 (read on the primary)", n)
	}
	rep.Resume(t)
	eventually(t, "the resumed replica healthy", 30e9, func() bool { return replicaState(t, strict.URL) == "healthy" })
	eventually(t, "the replica caught up", 30e9, func() bool { return booked(stale.URL) == 1 })
	readsOf := func(base string) float64 {
		return firstSeries(t, scrape(t, base), "timeslots_replica_reads_total{")
	}
	before := readsOf(strict.URL)
	booked(strict.URL)
	if after := readsOf(strict.URL); after <= before {
		t.Errorf("replica reads %v → %v: the recovered replica serves reads again", before, after)
	}

	// Many concurrent reads; the replica stops while they run.
	const readers, perReader = 24, 40
	var failed, done atomic.Int64
	var wg sync.WaitGroup
	halfway := make(chan struct{})
	var once sync.Once
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perReader {
				a, err := getAnswer(nil, http.MethodPost, stale.URL+graphQLPath, http.Header{"Content-Type": {"application/json"}},
					strings.NewReader(`{"query":"{ timeSlots(first: 20) { edges { node { id bookedCount } } } }"}`))
				if err != nil || a.Status != http.StatusOK || strings.Contains(string(a.Body), `"errors"`) {
					failed.Add(1)
					t.Logf("read failed: %v %s", err, a)
				}
				if done.Add(1) == readers*perReader/4 {
					once.Do(func() { close(halfway) })
				}
			}
		}()
	}
	<-halfway
	rep.Stop(t)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d reads failed while the replica stopped, want 0", failed.Load(), readers*perReader)
	}
	eventually(t, "the stopped replica unreachable", 30e9, func() bool { return replicaState(t, stale.URL) == "unreachable" })
	if status, _ := readyReplicas(t, stale.URL); status != http.StatusOK {
		t.Errorf("/readyz = %d with the replica down, want 200", status)
	}
}

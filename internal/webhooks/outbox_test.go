package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// outboxFixture is a provider of slots of capacity seats over days days on
// db, a manager that stages its booking events through svc, and the
// provider's slots.
func outboxFixture(t *testing.T, db *database.DB, svc *Service, now time.Time, capacity, days int) (*slots.Manager, []int64) {
	t.Helper()
	ctx := context.Background()
	m := slots.New(db, slots.WithClock(func() time.Time { return now }), slots.WithOutbox(svc))
	var hours []models.WorkingHours
	for _, d := range models.AllWeekdays {
		hours = append(hours, models.WorkingHours{Weekday: d, Start: "09:00", End: "12:00"})
	}
	p, err := m.CreateProvider(ctx, models.ProviderInput{Name: "Staged", TimeZone: "UTC", SlotMinutes: 60, Capacity: &capacity, WorkingHours: hours})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Generate(ctx, slots.GenerateInput{DaysAhead: days, ProviderIDs: []int64{p.ID}}); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	if err := db.Raw("SELECT id FROM time_slots WHERE provider_id = ? ORDER BY id", p.ID).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	return m, ids
}

func count(t *testing.T, db *database.DB, query string) int {
	t.Helper()
	var n int
	if err := db.Raw(query).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// A booking stages its booking.created in its own statement, one row per
// endpoint; a refused booking stages nothing; the relay moves the rows
// onto River's queue with the body eventBody renders for the booking and
// slot Book answered, byte for byte, and River's workers deliver them.
func TestABookingStagesItsEventAndTheRelayEnqueuesIt(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t, database.Postgres)
	svc, err := New(db, Options{AllowPrivate: true, Poll: 20 * time.Millisecond, MaxAttempts: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(ctx) })
	// A clock with nanoseconds, which the body keeps and the database does not.
	now := time.Date(2030, 1, 7, 6, 0, 0, 123456789, time.UTC)
	m, ids := outboxFixture(t, db, svc, now, 1, 2)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(rcv.Close)
	endpoints := map[int64]bool{}
	for _, url := range []string{rcv.URL + "/a", rcv.URL + "/b"} {
		c, err := svc.Create(ctx, Input{URL: &url, Events: []string{string(slots.BookingCreated)}})
		if err != nil {
			t.Fatal(err)
		}
		endpoints[c.Endpoint.ID] = true
	}
	b, s, err := m.Book(ctx, slots.BookInput{SlotID: ids[0], Customer: `Zoë "<&>" O'Brien`, CustomerID: "user|42"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Book(ctx, slots.BookInput{SlotID: ids[0], Customer: "Late"}); err == nil {
		t.Fatal("a second booking of a slot of one seat succeeded")
	}
	if n, jobs := count(t, db, "SELECT count(*) FROM webhook_outbox"), count(t, db, "SELECT count(*) FROM river_job"); n != 2 || jobs != 0 {
		t.Fatalf("after one booking, one refusal and no move: %d staged (want 2, one per endpoint), %d jobs (want 0)", n, jobs)
	}

	moved, err := svc.Relay(ctx)
	if err != nil || moved != 2 {
		t.Fatalf("the relay moved %d (%v), want 2", moved, err)
	}
	if n := count(t, db, "SELECT count(*) FROM webhook_outbox"); n != 0 {
		t.Fatalf("%d rows still staged after the move", n)
	}
	var jobs []struct{ Args string }
	if err := db.Raw("SELECT args::text AS args FROM river_job WHERE kind = 'webhook_delivery' AND queue = ? AND state = 'available' ORDER BY id", queue).
		Scan(&jobs).Error; err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 {
		t.Fatalf("%d available jobs for one booking and two endpoints, want 2", len(jobs))
	}
	var first deliveryArgs
	for i, j := range jobs {
		var args deliveryArgs
		if err := json.Unmarshal([]byte(j.Args), &args); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = args
		}
		want, err := renderEvent(first.EventID, string(slots.BookingCreated), now, eventData(slots.Event{Kind: slots.BookingCreated, At: now, Booking: *b, Slot: s}))
		if err != nil {
			t.Fatal(err)
		}
		if args.Body != want || args.EventID != first.EventID || args.Type != string(slots.BookingCreated) || !endpoints[args.EndpointID] {
			t.Fatalf("job %d: %+v\nwant the body\n%s", i, args, want)
		}
		delete(endpoints, args.EndpointID)
	}

	// River's workers take the jobs and complete them.
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for count(t, db, "SELECT count(*) FROM river_job WHERE state = 'completed'") != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the two jobs were not completed in 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A running service moves what bookings stage without being asked.
func TestARunningServiceMovesStagedEventsByItself(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t, database.Postgres)
	// Deliveries are looked for only every minute: the move must not wait
	// for that.
	svc, err := New(db, Options{AllowPrivate: true, Poll: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(ctx) })
	m, ids := outboxFixture(t, db, svc, time.Date(2030, 1, 7, 6, 0, 0, 0, time.UTC), 1, 1)
	url := "https://receiver.example/hooks"
	if _, err := svc.Create(ctx, Input{URL: &url, Events: []string{string(slots.BookingCreated)}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Book(ctx, slots.BookInput{SlotID: ids[0], Customer: "Ann"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for count(t, db, "SELECT count(*) FROM river_job WHERE kind = 'webhook_delivery'") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s, %d staged and no job", count(t, db, "SELECT count(*) FROM webhook_outbox"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := count(t, db, "SELECT count(*) FROM webhook_outbox"); n != 0 {
		t.Fatalf("%d rows still staged", n)
	}
}

// Three servers move while 16 clients book: each event is enqueued once
// per endpoint, none is lost, and nothing stays staged.
func TestRelaysOnManyServersEnqueueEachEventOnce(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t, database.Postgres)
	var relays []*Service
	for range 3 {
		svc, err := New(db, Options{AllowPrivate: true})
		if err != nil {
			t.Fatal(err)
		}
		relays = append(relays, svc)
	}
	m, ids := outboxFixture(t, db, relays[0], time.Date(2030, 1, 7, 6, 0, 0, 0, time.UTC), 20, 2)
	for _, url := range []string{"https://receiver.example/a", "https://receiver.example/b"} {
		if _, err := relays[0].Create(ctx, Input{URL: &url, Events: []string{string(slots.BookingCreated)}}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var movers sync.WaitGroup
	moved := make([]int, len(relays))
	errs := make(chan error, len(relays)+16)
	for i, svc := range relays {
		movers.Add(1)
		go func() {
			defer movers.Done()
			for {
				n, err := svc.Relay(ctx)
				moved[i] += n
				if err != nil {
					errs <- err
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	var bookers sync.WaitGroup
	var mu sync.Mutex
	booked := 0
	for c := range 16 {
		bookers.Add(1)
		go func() {
			defer bookers.Done()
			for k, id := range ids {
				if (k+c)%2 == 0 {
					continue
				}
				if _, _, err := m.Book(ctx, slots.BookInput{SlotID: id, Customer: fmt.Sprintf("client-%d", c)}); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				booked++
				mu.Unlock()
			}
		}()
	}
	bookers.Wait()
	close(stop)
	movers.Wait()
	last, err := relays[1].Relay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := last
	for _, n := range moved {
		total += n
	}
	jobs := count(t, db, "SELECT count(*) FROM river_job WHERE kind = 'webhook_delivery'")
	distinct := count(t, db, "SELECT count(DISTINCT (args->>'endpoint_id', args->>'event_id')) FROM river_job WHERE kind = 'webhook_delivery'")
	events := count(t, db, "SELECT count(DISTINCT args->>'event_id') FROM river_job WHERE kind = 'webhook_delivery'")
	staged := count(t, db, "SELECT count(*) FROM webhook_outbox")
	if booked == 0 || jobs != 2*booked || distinct != jobs || events != booked || total != jobs || staged != 0 {
		t.Fatalf("%d bookings: %d jobs (%d distinct, %d events), %d moved by the relays %v and %d last, %d still staged",
			booked, jobs, distinct, events, total, moved, last, staged)
	}
}

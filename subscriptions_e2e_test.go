package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/gqlws"
	"timeslots/internal/pgreplica"
)

// wsURL answers the websocket URL of a server's GraphQL endpoint.
func wsURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") + "/graphql" }

// subscriber is one graphql-transport-ws connection with one slotsChanged
// subscription.
type subscriber struct {
	c *gqlws.Conn
}

const subscriberQuery = `subscription($f: SlotChangeFilter!) { slotsChanged(filter: $f) {
  kind remaining version slot { id remaining status provider { name } } } }`

// subscribe connects to srv, initialises with payload and subscribes to
// provider's changes, and waits until the server has subscribed: its
// /metrics count one more subscription.
func subscribe(t *testing.T, base string, payload any, provider int64) *subscriber {
	t.Helper()
	before := activeSubscriptions(t, base)
	c, _, err := gqlws.Dial(t.Context(), wsURL(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	if err := c.Init(t.Context(), payload); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(t.Context(), "1", subscriberQuery, map[string]any{"f": map[string]any{"providerId": provider}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); activeSubscriptions(t, base) <= before; {
		if time.Now().After(deadline) {
			t.Fatal("the subscription never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &subscriber{c: c}
}

// activeSubscriptions reads timeslots_subscriptions_active from /metrics.
func activeSubscriptions(t *testing.T, base string) int {
	t.Helper()
	return int(scrapeMetric(t, base, "timeslots_subscriptions_active"))
}

// scrapeMetric reads one series of base's /metrics (-1 when absent).
func scrapeMetric(t *testing.T, base, series string) float64 {
	t.Helper()
	a, err := getAnswer(nil, http.MethodGet, base+"/metrics", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return metricValue(t, string(a.Body), series)
}

type slotChange struct {
	Kind      string
	Remaining *int
	Version   *int64
	Slot      *struct {
		ID        string
		Remaining int
		Status    string
		Provider  struct{ Name string }
	}
}

// next answers the next change, skipping REFETCH unless wanted.
func (s *subscriber) next(t *testing.T) slotChange {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	m, err := s.c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Data   struct{ SlotsChanged slotChange }
		Errors []gqlError
	}
	if m.Type != "next" || json.Unmarshal(m.Payload, &p) != nil || len(p.Errors) > 0 {
		t.Fatalf("want a change, got %s %s", m.Type, m.Payload)
	}
	return p.Data.SlotsChanged
}

// demoSlot is a bookable slot of the demo data.
type demoSlot struct {
	ID         string
	ProviderID int64 `json:",string"`
	Remaining  int
}

// someSlots answers two bookable slots of one provider of the demo data.
func someSlots(t *testing.T, base string) [2]demoSlot {
	t.Helper()
	var data struct{ TimeSlots struct{ Nodes []demoSlot } }
	from := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	postGraphQL(t, base, `{ timeSlots(first: 2, filter: {providerId: 1, from: "`+from+`"}) { nodes { id providerId remaining } } }`, nil, nil).Decode(t, &data)
	if len(data.TimeSlots.Nodes) != 2 {
		t.Fatalf("no slots to book: %+v", data)
	}
	return [2]demoSlot(data.TimeSlots.Nodes)
}

// book books slot over HTTP and answers the slot's free seats after it.
func book(t *testing.T, base, slot, customer string) int {
	t.Helper()
	var data struct {
		BookSlot struct{ Slot struct{ Remaining int } }
	}
	postGraphQL(t, base, `mutation($i: BookSlotInput!) { bookSlot(input: $i) { slot { remaining } } }`,
		map[string]any{"i": map[string]any{"slotId": slot, "customer": customer}}, nil).Decode(t, &data)
	return data.BookSlot.Slot.Remaining
}

// readSlotsAtOnce sends n different slot listings of provider to each
// server at once (each its own answer, never the read cache's), each
// reading the slots' provider too, and fails the test unless every one
// answers without errors.
func readSlotsAtOnce(t *testing.T, n int, provider int64, bases ...string) {
	t.Helper()
	var wg sync.WaitGroup
	failures := make(chan string, n*len(bases))
	for _, base := range bases {
		for i := range n {
			wg.Go(func() {
				from := time.Now().Add(time.Duration(48*60+i) * time.Minute).UTC().Format(time.RFC3339)
				a, err := getAnswer(nil, http.MethodPost, base+graphQLPath, http.Header{"Content-Type": {"application/json"}},
					strings.NewReader(fmt.Sprintf(`{"query":"{ timeSlots(first: 3, filter: {providerId: %d, from: \"%s\"}) { nodes { id remaining provider { name } } } }"}`, provider, from)))
				if err != nil || a.Status != http.StatusOK || strings.Contains(string(a.Body), `"errors"`) {
					failures <- fmt.Sprintf("%s: %v %s", base, err, a)
				}
			})
		}
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("a read failed: %s", f)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// TestASubscriberSeesBookingsAsTheyCommit: on both databases, a client
// subscribed over graphql-transport-ws sees a booking made over HTTP with
// the slot's new remaining, then its cancellation; /metrics count the
// connection, the subscription and the events; and a shutdown closes the
// connection with 1001 and stops cleanly.
func TestASubscriberSeesBookingsAsTheyCommit(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testEnv(t, d, nil))
			s := someSlots(t, srv.URL)[0]
			slot, remaining := s.ID, s.Remaining
			sub := subscribe(t, srv.URL, nil, s.ProviderID)

			var booked struct {
				BookSlot struct {
					Booking struct{ Reference string }
					Slot    struct{ Remaining int }
				}
			}
			postGraphQL(t, srv.URL, `mutation($i: BookSlotInput!) { bookSlot(input: $i) { booking { reference } slot { remaining } } }`,
				map[string]any{"i": map[string]any{"slotId": slot, "customer": "Ann"}}, nil).Decode(t, &booked)
			c := sub.next(t)
			if c.Kind != "BOOKED" || c.Slot == nil || c.Slot.ID != slot || c.Slot.Remaining != remaining-1 ||
				*c.Remaining != remaining-1 || c.Slot.Provider.Name == "" {
				t.Fatalf("after booking: %+v %+v", c, c.Slot)
			}
			postGraphQL(t, srv.URL, `mutation($i: CancelBookingInput!) { cancelBooking(input: $i) { booking { status } } }`,
				map[string]any{"i": map[string]any{"reference": booked.BookSlot.Booking.Reference}}, nil).Decode(t, &struct{}{})
			if c2 := sub.next(t); c2.Kind != "CANCELLED" || c2.Slot.Remaining != remaining || *c2.Version <= *c.Version {
				t.Fatalf("after cancelling: %+v %+v (booked at version %d)", c2, c2.Slot, *c.Version)
			}

			if n := scrapeMetric(t, srv.URL, "timeslots_websocket_connections"); n != 1 {
				t.Errorf("timeslots_websocket_connections %v", n)
			}
			if n := scrapeMetric(t, srv.URL, `timeslots_subscription_events_total{outcome="delivered"}`); n != 2 {
				t.Errorf("delivered %v", n)
			}

			if err := srv.Stop(); err != nil {
				t.Fatalf("stop with a subscriber: %v", err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			for {
				m, err := sub.c.Next(ctx)
				if err != nil {
					if code := gqlws.CloseCode(err); code != 1001 {
						t.Fatalf("closed with %v", err)
					}
					break
				}
				if m.Type != "next" && m.Type != "complete" {
					t.Fatalf("during shutdown: %s %s", m.Type, m.Payload)
				}
			}
		})
	}
}

// TestABookingOnOneReplicaReachesSubscribersOfAnother: two servers on one
// PostgreSQL of the test's own. A booking on A reaches subscribers on A
// and B with the new remaining. Then PostgreSQL is restarted (pg_ctl
// restart -m fast) under them: reads on both servers succeed as soon as
// it accepts connections again, although every pooled connection died
// (the pools check theirs); each subscriber gets REFETCH once its
// server's feed is back, and the next booking's change after it, with
// neither process restarted.
func TestABookingOnOneReplicaReachesSubscribersOfAnother(t *testing.T) {
	t.Parallel()
	pg := pgreplica.StartCluster(t)
	env := testEnv(t, database.Postgres, map[string]string{"DATABASE_URL": pg.URL()})
	a := startServer(t, env)
	env["SEED_DEMO"] = "false"
	b := startServer(t, env)
	slots := someSlots(t, a.URL)
	provider := slots[0].ProviderID
	onB := subscribe(t, b.URL, nil, provider)
	onA := subscribe(t, a.URL, nil, provider)

	if got := book(t, a.URL, slots[0].ID, "Ann"); got != slots[0].Remaining-1 {
		t.Fatalf("booked: remaining %d, want %d", got, slots[0].Remaining-1)
	}
	for name, s := range map[string]*subscriber{"B": onB, "A": onA} {
		if c := s.next(t); c.Kind != "BOOKED" || c.Slot.ID != slots[0].ID || *c.Remaining != slots[0].Remaining-1 {
			t.Fatalf("subscriber on %s: %+v", name, c)
		}
	}

	// Each server's pool holds connections it has lent more than once,
	// lately (pgx itself pings only those idle for over a second); the
	// restart kills all of them and the feeds' listeners.
	const readers = 6
	readSlotsAtOnce(t, readers, provider, a.URL, b.URL)
	readSlotsAtOnce(t, readers, provider, a.URL, b.URL)
	pg.Restart(t)
	readSlotsAtOnce(t, readers, provider, a.URL, b.URL)

	for name, s := range map[string]*subscriber{"B": onB, "A": onA} {
		if c := s.next(t); c.Kind != "REFETCH" || c.Slot != nil {
			t.Fatalf("subscriber on %s after the restart: %+v", name, c)
		}
	}
	if got := book(t, a.URL, slots[1].ID, "Bob"); got != slots[1].Remaining-1 {
		t.Fatalf("booked after the restart: remaining %d, want %d", got, slots[1].Remaining-1)
	}
	for name, s := range map[string]*subscriber{"B": onB, "A": onA} {
		if c := s.next(t); c.Kind != "BOOKED" || c.Slot.ID != slots[1].ID || *c.Remaining != slots[1].Remaining-1 {
			t.Fatalf("subscriber on %s after the restart: %+v", name, c)
		}
	}
}

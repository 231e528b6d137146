package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/gqlws"
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

// book books slot over HTTP and answers the slot's free seats after it;
// an UNAVAILABLE answer (a database that is coming back) is sent again.
func book(t *testing.T, base, slot, customer string) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		r := postGraphQL(t, base, `mutation($i: BookSlotInput!) { bookSlot(input: $i) { slot { remaining } } }`,
			map[string]any{"i": map[string]any{"slotId": slot, "customer": customer}}, nil)
		if r.Code() == "UNAVAILABLE" && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var data struct {
			BookSlot struct{ Slot struct{ Remaining int } }
		}
		r.Decode(t, &data)
		return data.BookSlot.Slot.Remaining
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
// PostgreSQL database. A booking on A reaches a subscriber on B with the
// new remaining. Then every connection of the database is terminated, as
// a PostgreSQL restart would: subscribers get REFETCH once their server's
// feed is back, and the next booking's change after it, with neither
// process restarted.
func TestABookingOnOneReplicaReachesSubscribersOfAnother(t *testing.T) {
	t.Parallel()
	env := testEnv(t, database.Postgres, nil)
	a := startServer(t, env)
	env["SEED_DEMO"] = "false"
	b := startServer(t, env)
	slots := someSlots(t, a.URL)
	onB := subscribe(t, b.URL, nil, slots[0].ProviderID)
	onA := subscribe(t, a.URL, nil, slots[0].ProviderID)

	if got := book(t, a.URL, slots[0].ID, "Ann"); got != slots[0].Remaining-1 {
		t.Fatalf("booked: remaining %d, want %d", got, slots[0].Remaining-1)
	}
	for name, s := range map[string]*subscriber{"B": onB, "A": onA} {
		if c := s.next(t); c.Kind != "BOOKED" || c.Slot.ID != slots[0].ID || *c.Remaining != slots[0].Remaining-1 {
			t.Fatalf("subscriber on %s: %+v", name, c)
		}
	}

	// Every backend of the database goes, the feeds' listeners with the
	// pools' connections.
	db := openDatabase(t, env["DATABASE_URL"])
	var killed int
	if err := db.SQL().QueryRow(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t`).Scan(&killed); err != nil || killed < 2 {
		t.Fatalf("terminated %d backends: %v", killed, err)
	}
	for name, s := range map[string]*subscriber{"B": onB, "A": onA} {
		if c := s.next(t); c.Kind != "REFETCH" || c.Slot != nil {
			t.Fatalf("subscriber on %s after the database went away: %+v", name, c)
		}
	}
	// A restart takes longer than this test: the pools' connections have
	// sat idle past the second after which pgx pings a connection before
	// lending it again, so the dead ones are dropped rather than failing
	// the next read (a subscriber's slot.provider, say) with UNAVAILABLE.
	time.Sleep(1100 * time.Millisecond)
	if got := book(t, b.URL, slots[1].ID, "Bob"); got != slots[1].Remaining-1 {
		t.Fatalf("booked again: remaining %d, want %d", got, slots[1].Remaining-1)
	}
	for name, s := range map[string]*subscriber{"B": onB, "A": onA} {
		if c := s.next(t); c.Kind != "BOOKED" || c.Slot.ID != slots[1].ID || *c.Remaining != slots[1].Remaining-1 {
			t.Fatalf("subscriber on %s after the feed came back: %+v", name, c)
		}
	}
}

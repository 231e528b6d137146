package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"timeslots/graph"
	"timeslots/internal/config"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/feed"
	"timeslots/internal/gqlws"
	"timeslots/internal/httpx"
	"timeslots/internal/slots"
	"timeslots/models"
)

// liveAPI is the GraphQL handler with subscriptions over a real SQLite
// database, behind the admin gate as in the server, served on a real
// socket; its feed is published to directly.
type liveAPI struct {
	url       string
	http      string
	feed      *feed.Feed
	live      *graph.Live
	slots     *slots.Manager
	providers []int64
	slot      models.TimeSlot // a slot of providers[0]
}

const adminToken = "an-admin-token-of-the-tests"

func newLiveAPI(t *testing.T, env map[string]string) *liveAPI {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	m := slots.New(dbtest.Open(t, database.SQLite))
	ids := allDayProviders(t, m, 2)
	page, err := m.ListSlots(t.Context(), slots.SlotFilter{ProviderID: &ids[0]}, slots.PageRequest{First: ptr(1)})
	if err != nil || len(page.Slots) == 0 {
		t.Fatalf("no slot: %v", err)
	}
	f := feed.NewLocal()
	gate := httpx.NewAdminGate(cfg.AdminToken)
	live := graph.NewLive(graph.LiveOptionsOf(cfg, f, gate.Authorize))
	opt := graph.OptionsOf(cfg)
	opt.Live = live
	h := gate.Middleware(graph.NewHandler(opt, m))
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		live.Close()
		srv.Close()
		f.Close()
	})
	return &liveAPI{url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/graphql", http: srv.URL + "/graphql",
		feed: f, live: live, slots: m, providers: ids, slot: page.Slots[0]}
}

// dial opens a connection and, unless payload is noInit, initialises it.
func (a *liveAPI) dial(t *testing.T, payload any) *gqlws.Conn {
	t.Helper()
	c, _, err := gqlws.Dial(t.Context(), a.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	if payload != noInit {
		if err := c.Init(t.Context(), payload); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// noInit asks dial not to send connection_init.
var noInit = &struct{}{}

// next reads the next message within a generous bound (a missing message
// fails the test instead of hanging it).
func next(t *testing.T, c *gqlws.Conn) (gqlws.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	return c.Next(ctx)
}

// closedWith reads until the server closes the connection and answers
// the close code.
func closedWith(t *testing.T, c *gqlws.Conn) (int, string) {
	t.Helper()
	for {
		m, err := next(t, c)
		if err != nil {
			var ce *gqlws.CloseError
			if code := gqlws.CloseCode(err); code != 0 {
				_ = asClose(err, &ce)
				return code, ce.Reason
			}
			t.Fatalf("not closed with a code: %v", err)
		}
		t.Logf("before the close: %s %s", m.Type, m.Payload)
	}
}

func asClose(err error, ce **gqlws.CloseError) bool {
	e, ok := err.(*gqlws.CloseError)
	*ce = e
	return ok
}

const changesQuery = `subscription($f: SlotChangeFilter!) { slotsChanged(filter: $f) {
  kind providerId from to remaining version count
  slot { id remaining status date capacity bookedCount provider { name } } } }`

type change struct {
	Kind       string  `json:"kind"`
	ProviderID *string `json:"providerId"`
	From, To   *string
	Remaining  *int   `json:"remaining"`
	Version    *int64 `json:"version"`
	Count      *int   `json:"count"`
	Slot       *struct {
		ID          string `json:"id"`
		Remaining   int    `json:"remaining"`
		Status      string `json:"status"`
		Date        string `json:"date"`
		Capacity    int    `json:"capacity"`
		BookedCount int    `json:"bookedCount"`
		Provider    struct {
			Name string `json:"name"`
		} `json:"provider"`
	} `json:"slot"`
}

// nextChange reads the next message of subscription id, which must be a
// change.
func nextChange(t *testing.T, c *gqlws.Conn, id string) change {
	t.Helper()
	m, err := next(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "next" || m.ID != id {
		t.Fatalf("want next %s, got %s %s %s", id, m.Type, m.ID, m.Payload)
	}
	var p struct {
		Data   struct{ SlotsChanged change }
		Errors []json.RawMessage
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
		t.Fatalf("payload %s: %v", m.Payload, err)
	}
	return p.Data.SlotsChanged
}

// nextError reads the next message, which must be subscription id's
// error, and answers its first error's code and message.
func nextError(t *testing.T, c *gqlws.Conn, id string) (code, msg string) {
	t.Helper()
	m, err := next(t, c)
	if err != nil {
		t.Fatal(err)
	}
	var errs []struct {
		Message    string
		Extensions struct{ Code string }
	}
	switch m.Type {
	case "error":
		err = json.Unmarshal(m.Payload, &errs)
	case "next": // an operation refused after it started answers its errors as data
		var p struct {
			Errors *[]struct {
				Message    string
				Extensions struct{ Code string }
			}
		}
		p.Errors = &errs
		err = json.Unmarshal(m.Payload, &p)
	}
	if m.ID != id || err != nil || len(errs) == 0 {
		t.Fatalf("want an error of %s, got %s %s %s", id, m.Type, m.ID, m.Payload)
	}
	if m.Type == "next" { // then the operation completes
		if m, err := next(t, c); err != nil || m.Type != "complete" || m.ID != id {
			t.Fatalf("want complete %s, got %+v %v", id, m, err)
		}
	}
	return errs[0].Extensions.Code, errs[0].Message
}

func (a *liveAPI) slotEvent(kind feed.Kind, remaining int, version int64) feed.Event {
	s := a.slot
	return feed.Event{Kind: kind, SlotID: s.ID, ProviderID: s.ProviderID, Start: s.StartTime, End: s.EndTime,
		Capacity: s.Capacity, Remaining: remaining, Version: version}
}

// waitSubscribers waits until the feed has n subscribers: a subscription
// receives only what is published after it subscribed.
func waitSubscribers(t *testing.T, f *feed.Feed, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f.Subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the feed has %d subscribers, want %d", f.Subscribers(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// complete ends subscription id of c: the server confirms, and the feed
// lets go of it, leaving left subscribers. The confirmation can reach the
// client before the subscription's goroutine has left the feed (gqlgen
// and that goroutine both stop on the subscription's context), so it
// waits for the feed too.
func complete(t *testing.T, f *feed.Feed, c *gqlws.Conn, id string, left int) {
	t.Helper()
	if err := c.Send(t.Context(), "complete", id, nil); err != nil {
		t.Fatal(err)
	}
	if m, err := next(t, c); err != nil || m.Type != "complete" || m.ID != id {
		t.Fatalf("after complete: %+v %v", m, err)
	}
	waitSubscribers(t, f, left)
}

func TestSubscriptionStreamsTheChangesItsFilterNames(t *testing.T) {
	t.Parallel()
	a := newLiveAPI(t, nil)
	c := a.dial(t, nil)
	s := a.slot
	from, to := s.StartTime.Add(-time.Hour), s.StartTime.Add(time.Hour)
	if err := c.Subscribe(t.Context(), "1", changesQuery, map[string]any{"f": map[string]any{
		"providerId": fmt.Sprint(s.ProviderID), "from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)}}); err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, a.feed, 1)

	other := a.slotEvent(feed.Booked, 0, 9)
	other.ProviderID = a.providers[1]
	outside := a.slotEvent(feed.Booked, 0, 9)
	outside.Start, outside.End = to, to.Add(time.Hour)
	a.feed.Publish(
		other,   // another provider
		outside, // starts at to
		feed.Event{Kind: feed.ProviderUpdated, ProviderID: s.ProviderID}, // no slot changed
		a.slotEvent(feed.Booked, 0, 2),
		feed.Event{Kind: feed.Generated, ProviderID: s.ProviderID, Start: to.Add(-time.Minute), End: to.Add(24 * time.Hour), Count: 24},
		feed.Event{Kind: feed.Generated, ProviderID: s.ProviderID, Start: to, End: to.Add(24 * time.Hour), Count: 24}, // after the range
		feed.Event{Kind: feed.Refetch},
		a.slotEvent(feed.Cancelled, 1, 3),
	)

	booked := nextChange(t, c, "1")
	if booked.Kind != "BOOKED" || booked.Slot == nil || booked.Slot.ID != fmt.Sprint(s.ID) || booked.Slot.Remaining != 0 ||
		booked.Slot.Status != "BOOKED" || booked.Slot.BookedCount != 1 || booked.Slot.Date != string(s.Date) ||
		booked.Slot.Provider.Name != "Provider 1" || *booked.Remaining != 0 || *booked.Version != 2 || booked.Count != nil {
		t.Fatalf("booked: %+v %+v", booked, booked.Slot)
	}
	generated := nextChange(t, c, "1")
	if generated.Kind != "GENERATED" || generated.Slot != nil || *generated.Count != 24 ||
		*generated.ProviderID != fmt.Sprint(s.ProviderID) || generated.From == nil || generated.Remaining != nil {
		t.Fatalf("generated: %+v", generated)
	}
	if refetch := nextChange(t, c, "1"); refetch.Kind != "REFETCH" || refetch.Slot != nil || refetch.ProviderID != nil {
		t.Fatalf("refetch: %+v", refetch)
	}
	cancelled := nextChange(t, c, "1")
	if cancelled.Kind != "CANCELLED" || cancelled.Slot.Remaining != 1 || cancelled.Slot.Status != "AVAILABLE" || *cancelled.Version != 3 {
		t.Fatalf("cancelled: %+v %+v", cancelled, cancelled.Slot)
	}

	// complete ends the subscription: the server confirms, and the feed
	// lets go of it.
	complete(t, a.feed, c, "1", 0)
}

func TestSubscriptionsAreHeldToTheProtocol(t *testing.T) {
	t.Parallel()
	a := newLiveAPI(t, map[string]string{"WS_INIT_TIMEOUT": "300ms", "MAX_BODY_BYTES": "2048"})
	sub := func(id string) string {
		b, _ := json.Marshal(gqlws.Message{ID: id, Type: "subscribe",
			Payload: json.RawMessage(`{"query":"subscription { slotsChanged(filter: {providerId: 1}) { kind } }"}`)})
		return string(b)
	}
	for _, c := range []struct {
		name   string
		init   bool
		send   []string
		code   int
		reason string
	}{
		{"no connection_init in time", false, nil, 4408, "Connection initialisation timeout"},
		{"subscribe before connection_init", false, []string{sub("1")}, 4401, "Unauthorized"},
		{"a second connection_init", true, []string{`{"type":"connection_init"}`}, 4429, "Too many initialisation requests"},
		{"a connection_init payload that is not an object", false, []string{`{"type":"connection_init","payload":"admin"}`}, 4400, "payload must be an object"},
		{"a message that is not JSON", true, []string{`{"type":`}, 4400, "Invalid message received"},
		{"a message of no known type", true, []string{`{"type":"start","id":"1"}`}, 4400, "unknown type start"},
		{"a subscribe without id", true, []string{`{"type":"subscribe","payload":{"query":"subscription { __typename }"}}`}, 4400, "needs an id"},
		{"a subscribe without query", true, []string{`{"type":"subscribe","id":"1","payload":{}}`}, 4400, "needs an id and a payload with a query"},
		{"a duplicate subscription id", true, []string{sub("7"), sub("7")}, 4409, "Subscriber for 7 already exists"},
		{"a message over MAX_BODY_BYTES", true, []string{`{"type":"ping","payload":{"pad":"` + strings.Repeat("x", 4096) + `"}}`}, 1009, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := a.dial(t, noInit)
			if c.init {
				if err := conn.Init(t.Context(), nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, m := range c.send {
				if err := conn.SendRaw(t.Context(), []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			code, reason := closedWith(t, conn)
			if code != c.code || !strings.Contains(reason, c.reason) {
				t.Fatalf("closed %d %q, want %d %q", code, reason, c.code, c.reason)
			}
		})
	}
}

// refetchReaches publishes REFETCH on f and fails the test unless the
// subscriptions ids of c, and no other, each get it next.
func refetchReaches(t *testing.T, f *feed.Feed, c *gqlws.Conn, ids ...string) {
	t.Helper()
	f.Publish(feed.Event{Kind: feed.Refetch})
	got := map[string]bool{}
	for range ids {
		m, err := next(t, c)
		if err != nil || m.Type != "next" {
			t.Fatalf("%+v %v", m, err)
		}
		got[m.ID] = true
	}
	for _, id := range ids {
		if !got[id] {
			t.Fatalf("REFETCH reached %v, want %v", got, ids)
		}
	}
}

func TestSubscriptionRefusalsAreCoded(t *testing.T) {
	t.Parallel()
	// Without the rate of subscribe messages (below), which this many
	// subscribes would spend.
	a := newLiveAPI(t, map[string]string{"GRAPHQL_MAX_DEPTH": "3", "MAX_SUBSCRIPTIONS_PER_CONNECTION": "2", "WS_SUBSCRIBE_RPS": "0"})
	c := a.dial(t, nil)
	p := fmt.Sprint(a.providers[0])
	many := make([]string, graph.MaxSubscriptionProviders+1)
	for i := range many {
		many[i] = p
	}
	for i, r := range []struct {
		name, query string
		vars        map[string]any
		code, msg   string
	}{
		{"an unknown filter field", `subscription { slotsChanged(filter: {providerId: ` + p + `, day: "x"}) { kind } }`, nil, "BAD_USER_INPUT", "day"},
		{"an unknown filter field in a variable", `subscription($f: SlotChangeFilter!) { slotsChanged(filter: $f) { kind } }`,
			map[string]any{"f": map[string]any{"providerId": p, "day": "x"}}, "BAD_USER_INPUT", "day"},
		{"no provider", `subscription { slotsChanged(filter: {}) { kind } }`, nil, "BAD_USER_INPUT", "providerId or providerIds"},
		{"both provider fields", `subscription { slotsChanged(filter: {providerId: ` + p + `, providerIds: [` + p + `]}) { kind } }`, nil, "BAD_USER_INPUT", "not both"},
		{"too many providers", `subscription($f: SlotChangeFilter!) { slotsChanged(filter: $f) { kind } }`,
			map[string]any{"f": map[string]any{"providerIds": many}}, "BAD_USER_INPUT", "1 to 100"},
		{"to before from", `subscription { slotsChanged(filter: {providerId: ` + p + `, from: "2030-01-02T00:00:00Z", to: "2030-01-01T00:00:00Z"}) { kind } }`, nil, "BAD_USER_INPUT", "after filter.from"},
		{"an unknown provider", `subscription { slotsChanged(filter: {providerId: 999999}) { kind } }`, nil, "NOT_FOUND", "999999"},
		{"a document over the depth limit", `subscription { slotsChanged(filter: {providerId: ` + p + `}) { slot { provider { timeSlots { totalCount } } } } }`, nil, "QUERY_TOO_COMPLEX", "deep"},
		{"a query over the websocket", `{ __typename }`, nil, "BAD_USER_INPUT", "subscriptions only"},
	} {
		id := fmt.Sprint("r", i)
		if err := c.Subscribe(t.Context(), id, r.query, r.vars); err != nil {
			t.Fatal(err)
		}
		if code, msg := nextError(t, c, id); code != r.code || !strings.Contains(msg, r.msg) {
			t.Errorf("%s: %s %q, want %s naming %q", r.name, code, msg, r.code, r.msg)
		}
	}

	// The connection still serves, up to MAX_SUBSCRIPTIONS_PER_CONNECTION.
	q := `subscription { slotsChanged(filter: {providerId: ` + p + `}) { kind } }`
	for _, id := range []string{"a", "b", "c"} {
		if err := c.Subscribe(t.Context(), id, q, nil); err != nil {
			t.Fatal(err)
		}
	}
	if code, msg := nextError(t, c, "c"); code != "RATE_LIMITED" || !strings.Contains(msg, "MAX_SUBSCRIPTIONS_PER_CONNECTION") {
		t.Fatalf("third subscription: %s %q", code, msg)
	}
	waitSubscribers(t, a.feed, 2)
	complete(t, a.feed, c, "a", 1)
	if err := c.Subscribe(t.Context(), "a", q, nil); err != nil { // its id and its room are free again
		t.Fatal(err)
	}
	waitSubscribers(t, a.feed, 2)
	refetchReaches(t, a.feed, c, "a", "b")

	// A subscription by POST is refused before it runs.
	resp, err := http.Post(a.http, "application/json", strings.NewReader(`{"query":"`+q+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Errors []struct{ Extensions struct{ Code string } }
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity || len(body.Errors) == 0 || body.Errors[0].Extensions.Code != "BAD_USER_INPUT" {
		t.Fatalf("subscription by POST: HTTP %d %+v", resp.StatusCode, body)
	}
}

func TestWebsocketUpgradesAreChecked(t *testing.T) {
	t.Parallel()
	a := newLiveAPI(t, map[string]string{"CORS_ORIGINS": "https://app.example.com", "MAX_WS_CONNECTIONS": "2"})
	dial := func(h http.Header) (*gqlws.Conn, *http.Response, error) {
		c, resp, err := gqlws.Dial(t.Context(), a.url, h)
		if c != nil {
			t.Cleanup(func() { _ = c.CloseNow() })
		}
		return c, resp, err
	}
	refused := func(name string, resp *http.Response, err error, status int, code string) {
		t.Helper()
		if err == nil || resp == nil || resp.StatusCode != status {
			t.Fatalf("%s: %v, HTTP %v, want %d", name, err, resp, status)
		}
		var body struct {
			Errors []struct{ Extensions struct{ Code string } }
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if len(body.Errors) == 0 || body.Errors[0].Extensions.Code != code {
			t.Fatalf("%s: %+v, want %s", name, body, code)
		}
	}
	_, resp, err := dial(http.Header{"Origin": {"https://evil.example.com"}})
	refused("another origin", resp, err, http.StatusForbidden, "FORBIDDEN")

	if _, _, err := dial(http.Header{"Origin": {"https://app.example.com"}}); err != nil {
		t.Fatalf("an origin of CORS_ORIGINS: %v", err)
	}
	c, _, err := dial(http.Header{"Origin": {strings.TrimSuffix(a.http, "/graphql")}})
	if err != nil {
		t.Fatalf("the server's own origin: %v", err)
	}
	_, resp, err = dial(nil)
	refused("a third connection", resp, err, http.StatusServiceUnavailable, "UNAVAILABLE")
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// A closed connection makes room.
	_ = c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for a.live.Connections() > 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if _, _, err := dial(nil); err != nil {
		t.Fatalf("after a close: %v", err)
	}

	// An upgrade without the subprotocol is refused with a code.
	req, _ := http.NewRequest(http.MethodGet, a.http, nil)
	for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} {
		req.Header.Set(k, v)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	refused("no subprotocol", resp, fmt.Errorf("refused"), http.StatusBadRequest, "BAD_USER_INPUT")
}

// A connection that sends subscribe messages faster than WS_SUBSCRIBE_RPS
// (after a burst of MAX_SUBSCRIPTIONS_PER_CONNECTION) gets each refused
// with RATE_LIMITED before it runs, however many it sends; its running
// subscriptions go on, and other connections have their own budget.
func TestSubscribeMessagesAreRateLimitedPerConnection(t *testing.T) {
	t.Parallel()
	// Three subscribes, then one every 1000 s: no test waits for that.
	a := newLiveAPI(t, map[string]string{"MAX_SUBSCRIPTIONS_PER_CONNECTION": "3", "WS_SUBSCRIBE_RPS": "0.003"})
	c := a.dial(t, nil)
	q := fmt.Sprintf(`subscription { slotsChanged(filter: {providerId: %d}) { kind } }`, a.providers[0])
	subscribe := func(id string) {
		t.Helper()
		if err := c.Subscribe(t.Context(), id, q, nil); err != nil {
			t.Fatal(err)
		}
	}
	subscribe("a")
	subscribe("b")
	waitSubscribers(t, a.feed, 2)
	complete(t, a.feed, c, "a", 1)
	subscribe("a") // the third of the burst
	waitSubscribers(t, a.feed, 2)
	// Room for a third subscription, but no budget: refused, and so is
	// every one of a flood.
	const flood = 200
	for i := range flood {
		subscribe(fmt.Sprint("f", i))
	}
	for i := range flood {
		code, msg := nextError(t, c, fmt.Sprint("f", i))
		if code != "RATE_LIMITED" || !strings.Contains(msg, "WS_SUBSCRIBE_RPS") || !strings.Contains(msg, "retry in") {
			t.Fatalf("subscribe %d of the flood: %s %q, want RATE_LIMITED naming WS_SUBSCRIBE_RPS", i, code, msg)
		}
	}
	if n := a.feed.Subscribers(); n != 2 {
		t.Fatalf("%d subscriptions after the flood, want the 2 running", n)
	}
	// The running subscriptions still deliver.
	refetchReaches(t, a.feed, c, "a", "b")
	// Another connection has its own budget.
	other := a.dial(t, nil)
	if err := other.Subscribe(t.Context(), "1", q, nil); err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, a.feed, 3)
}

func TestInitPayloadTokensAreTheAdminGates(t *testing.T) {
	t.Parallel()
	a := newLiveAPI(t, map[string]string{"ADMIN_TOKEN": adminToken})
	// The admin token is accepted.
	a.dial(t, map[string]any{"Authorization": "Bearer " + adminToken})
	// A payload without one is anonymous, and subscriptions are open to it.
	a.dial(t, map[string]any{"client": "x"})

	for i := range httpx.AdminFailureLimit {
		c := a.dial(t, noInit)
		if err := c.Send(t.Context(), "connection_init", "", map[string]any{"Authorization": fmt.Sprint("Bearer wrong-token-", i)}); err != nil {
			t.Fatal(err)
		}
		if code, reason := closedWith(t, c); code != 4403 || !strings.HasPrefix(reason, "FORBIDDEN") {
			t.Fatalf("wrong token %d: %d %q", i, code, reason)
		}
	}
	// The client is now locked out, the right token included, on the
	// websocket and over HTTP alike.
	c := a.dial(t, noInit)
	if err := c.Send(t.Context(), "connection_init", "", map[string]any{"Authorization": "Bearer " + adminToken}); err != nil {
		t.Fatal(err)
	}
	if code, reason := closedWith(t, c); code != 4403 || !strings.HasPrefix(reason, "RATE_LIMITED") {
		t.Fatalf("locked out: %d %q", code, reason)
	}
	req, _ := http.NewRequest(http.MethodPost, a.http, strings.NewReader(`{"query":"{ __typename }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("HTTP with the token after the lockout: %d", resp.StatusCode)
	}
	// A malformed Authorization is refused as such, without counting.
	c = a.dial(t, noInit)
	if err := c.Send(t.Context(), "connection_init", "", map[string]any{"Authorization": 42}); err != nil {
		t.Fatal(err)
	}
	if code, reason := closedWith(t, c); code != 4403 || !strings.Contains(reason, "Bearer <token>") {
		t.Fatalf("malformed: %d %q", code, reason)
	}
}

func TestASlowSubscriberIsEndedNotBuffered(t *testing.T) {
	t.Parallel()
	a := newLiveAPI(t, map[string]string{"SUBSCRIPTION_BUFFER": "8"})
	slow := a.dial(t, nil)
	q := fmt.Sprintf(`subscription { slotsChanged(filter: {providerId: %d}) {
	  kind slot { id remaining status date capacity bookedCount startTime endTime durationMinutes } } }`, a.slot.ProviderID)
	if err := slow.Subscribe(t.Context(), "1", q, nil); err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, a.feed, 1)
	// The client reads nothing until the feed has dropped it. The feed's
	// publisher never waits for a subscriber: the subscription ends at the
	// first event that finds its 8 places taken, which happens as soon as
	// events come faster than the server writes them out, and at the
	// latest once the socket's buffers are full.
	published := 0
	for a.feed.Subscribers() == 1 {
		if published > 2_000_000 {
			t.Fatal("the slow subscriber was never dropped")
		}
		a.feed.Publish(a.slotEvent(feed.Booked, 0, int64(published)))
		published++
	}
	// It gets what was sent before it fell behind, then a last response
	// with the coded error, then complete.
	got := 0
	for {
		m, err := next(t, slow)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Errors []struct {
				Message    string
				Extensions struct{ Code string }
			}
		}
		if m.Type == "next" && json.Unmarshal(m.Payload, &p) == nil && len(p.Errors) == 0 {
			got++
			continue
		}
		if len(p.Errors) != 1 || p.Errors[0].Extensions.Code != "SUBSCRIPTION_OVERFLOW" || !strings.Contains(p.Errors[0].Message, "subscribe again") {
			t.Fatalf("after %d changes: %s %s", got, m.Type, m.Payload)
		}
		if m, err := next(t, slow); err != nil || m.Type != "complete" || m.ID != "1" {
			t.Fatalf("after the overflow: %+v %v", m, err)
		}
		break
	}
	if got >= published {
		t.Fatalf("the slow subscriber got all %d changes", got)
	}
	// The connection lives on: the id is free, and a new subscription
	// gets what comes next.
	if err := slow.Subscribe(t.Context(), "1", q, nil); err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, a.feed, 1)
	a.feed.Publish(a.slotEvent(feed.Cancelled, 1, -1))
	if c := nextChange(t, slow, "1"); c.Kind != "CANCELLED" {
		t.Fatalf("after the overflow: %+v", c)
	}
	t.Logf("%d published; the slow subscriber got %d before it was ended", published, got)
}

// TestWebsocketsLeakNothing runs connections through every way they end —
// a complete, a protocol error, a refused init, a client that vanishes,
// an overflow, the server's shutdown — and then finds the goroutines and
// connections the test started with, no more. It is not parallel, so that
// no other test's goroutines come and go meanwhile.
func TestWebsocketsLeakNothing(t *testing.T) {
	baseline := goleak.IgnoreCurrent()
	t.Run("every way a connection ends", func(t *testing.T) {
		a := newLiveAPI(t, map[string]string{"ADMIN_TOKEN": adminToken, "SUBSCRIPTION_BUFFER": "1", "WS_PING_INTERVAL": "200ms"})
		q := fmt.Sprintf(`subscription { slotsChanged(filter: {providerId: %d}) { kind slot { id provider { name } } } }`, a.slot.ProviderID)

		completed := a.dial(t, nil)
		_ = completed.Subscribe(t.Context(), "1", q, nil)
		waitSubscribers(t, a.feed, 1)
		a.feed.Publish(a.slotEvent(feed.Booked, 0, 1))
		nextChange(t, completed, "1")
		_ = completed.Send(t.Context(), "complete", "1", nil)
		if m, err := next(t, completed); err != nil || m.Type != "complete" {
			t.Fatalf("%+v %v", m, err)
		}
		_ = completed.Close()

		broken := a.dial(t, nil)
		_ = broken.SendRaw(t.Context(), []byte("{"))
		closedWith(t, broken)

		refused := a.dial(t, noInit)
		_ = refused.Send(t.Context(), "connection_init", "", map[string]any{"Authorization": "Bearer wrong"})
		closedWith(t, refused)

		vanished := a.dial(t, nil)
		_ = vanished.Subscribe(t.Context(), "1", q, nil)
		overflowed := a.dial(t, nil)
		_ = overflowed.Subscribe(t.Context(), "1", q, nil)
		waitSubscribers(t, a.feed, 2)
		_ = vanished.CloseNow() // no close frame: the pings find it gone
		a.feed.Publish(a.slotEvent(feed.Booked, 0, 2), a.slotEvent(feed.Booked, 0, 3))
		waitSubscribers(t, a.feed, 0)
		if code, _ := nextError(t, overflowed, "1"); code != "SUBSCRIPTION_OVERFLOW" {
			t.Fatalf("overflow: %s", code)
		}

		open := a.dial(t, nil)
		_ = open.Subscribe(t.Context(), "1", q, nil)
		waitSubscribers(t, a.feed, 1)
		a.live.Close() // the server's shutdown
		if code, _ := closedWith(t, open); code != 1001 {
			t.Fatalf("shutdown closed with %d", code)
		}
		_ = overflowed.Close()
		deadline := time.Now().Add(20 * time.Second)
		for a.live.Connections() > 0 || a.feed.Subscribers() > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections and %d subscriptions left", a.live.Connections(), a.feed.Subscribers())
			}
			time.Sleep(time.Millisecond)
		}
	})
	// The subtest's cleanups closed the server, feed and database; the
	// goroutines of every connection must be gone with them. Closing
	// handshakes finish in the background, so a loaded machine gets time
	// (goleak alone retries for about 2 s).
	for deadline := time.Now().Add(30 * time.Second); goleak.Find(baseline) != nil && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	goleak.VerifyNone(t, baseline)
}

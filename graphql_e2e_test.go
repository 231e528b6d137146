package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/gqlws"
	"timeslots/models"
)

type slotNode struct {
	ID        string    `json:"id"`
	StartTime time.Time `json:"startTime"`
	Capacity  int       `json:"capacity"`
	Remaining int       `json:"remaining"`
	Status    string    `json:"status"`
	Provider  struct {
		ID               string `json:"id"`
		MinNoticeMinutes int    `json:"minNoticeMinutes"`
	} `json:"provider"`
}

type slotPage struct {
	TimeSlots struct {
		TotalCount int `json:"totalCount"`
		Edges      []struct {
			Cursor string   `json:"cursor"`
			Node   slotNode `json:"node"`
		} `json:"edges"`
		PageInfo struct {
			HasNextPage     bool   `json:"hasNextPage"`
			HasPreviousPage bool   `json:"hasPreviousPage"`
			StartCursor     string `json:"startCursor"`
			EndCursor       string `json:"endCursor"`
		} `json:"pageInfo"`
	} `json:"timeSlots"`
}

const pageQuery = `query Page($first: Int, $after: String, $last: Int, $before: String) {
  timeSlots(first: $first, after: $after, last: $last, before: $before, filter: {status: [AVAILABLE, BOOKED]}) {
    totalCount
    edges { cursor node { id startTime capacity remaining status provider { id minNoticeMinutes } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`

// TestGraphQLPagesThroughEverySlot pages through the demo data forward
// with first/after and back with last/before, and must meet every slot
// exactly once, in (startTime, id) order, both ways.
func TestGraphQLPagesThroughEverySlot(t *testing.T) {
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testEnv(t, d, nil))

			var forward []slotNode
			total := -1
			vars := map[string]any{"first": 100}
			for page := 0; ; page++ {
				var p slotPage
				postGraphQL(t, srv.URL, pageQuery, vars, nil).Decode(t, &p)
				c := p.TimeSlots
				if total < 0 {
					total = c.TotalCount
				}
				if c.PageInfo.HasPreviousPage != (page > 0) {
					t.Fatalf("page %d: hasPreviousPage = %v", page, c.PageInfo.HasPreviousPage)
				}
				for _, e := range c.Edges {
					forward = append(forward, e.Node)
				}
				if !c.PageInfo.HasNextPage {
					break
				}
				vars = map[string]any{"first": 100, "after": c.PageInfo.EndCursor}
			}
			if total < 500 || len(forward) != total {
				t.Fatalf("forward: %d slots, totalCount %d (demo data has 7 days of 7 providers)", len(forward), total)
			}
			seen := map[string]bool{}
			for i, s := range forward {
				if seen[s.ID] {
					t.Fatalf("slot %s seen twice", s.ID)
				}
				seen[s.ID] = true
				if i > 0 && s.StartTime.Before(forward[i-1].StartTime) {
					t.Fatalf("slot %s at %s comes after %s", s.ID, s.StartTime, forward[i-1].StartTime)
				}
			}

			var backward []slotNode
			vars = map[string]any{"last": 100}
			for page := 0; ; page++ {
				var p slotPage
				postGraphQL(t, srv.URL, pageQuery, vars, nil).Decode(t, &p)
				c := p.TimeSlots
				if c.PageInfo.HasNextPage != (page > 0) {
					t.Fatalf("backward page %d: hasNextPage = %v", page, c.PageInfo.HasNextPage)
				}
				for i := len(c.Edges) - 1; i >= 0; i-- {
					backward = append(backward, c.Edges[i].Node)
				}
				if !c.PageInfo.HasPreviousPage {
					break
				}
				vars = map[string]any{"last": 100, "before": c.PageInfo.StartCursor}
			}
			if len(backward) != len(forward) {
				t.Fatalf("backward: %d slots, forward %d", len(backward), len(forward))
			}
			for i := range forward {
				if b := backward[len(backward)-1-i]; b.ID != forward[i].ID {
					t.Fatalf("position %d: forward %s, backward %s", i, forward[i].ID, b.ID)
				}
			}
		})
	}
}

// TestGraphQLBooksAndCancels books and cancels through the mutations and
// checks that every domain refusal reaches the client with its code.
func TestGraphQLBooksAndCancels(t *testing.T) {
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			const token = "the-e2e-admin-token"
			srv := startServer(t, testEnv(t, d, map[string]string{"ADMIN_TOKEN": token}))
			// gql asks as an anonymous client; admin with the admin token.
			gql := func(query string, vars map[string]any) gqlResult {
				t.Helper()
				return postGraphQL(t, srv.URL, query, vars, nil)
			}
			admin := func(query string, vars map[string]any) gqlResult {
				t.Helper()
				return postGraphQL(t, srv.URL, query, vars, bearer(token, false))
			}

			// Two bookable single-seat slots of a provider without notice.
			var p slotPage
			gql(pageQuery, map[string]any{"first": 100}).Decode(t, &p)
			var free []slotNode
			for _, e := range p.TimeSlots.Edges {
				if n := e.Node; n.Capacity == 1 && n.Provider.MinNoticeMinutes == 0 && n.StartTime.After(time.Now().Add(time.Hour)) {
					free = append(free, n)
				}
			}
			if len(free) < 2 {
				t.Fatalf("demo data has %d bookable single-seat slots in the first page", len(free))
			}

			const book = `mutation Book($input: BookSlotInput!) {
			  bookSlot(input: $input) {
			    booking { id reference status customer providerId slot { id } }
			    slot { id bookedCount remaining status }
			  }
			}`
			type booked struct {
				BookSlot struct {
					Booking struct {
						ID, Status, Customer, ProviderID string
						Reference                        *string
						Slot                             *struct{ ID string }
					}
					Slot struct {
						ID                     string
						BookedCount, Remaining int
						Status                 string
					}
				}
			}
			var b booked
			gql(book, map[string]any{"input": map[string]any{"slotId": free[0].ID, "customer": "Ann"}}).Decode(t, &b)
			if bk := b.BookSlot.Booking; bk.Status != "CONFIRMED" || bk.Customer != "Ann" || bk.Slot == nil || bk.Slot.ID != free[0].ID ||
				bk.Reference == nil || !strings.HasPrefix(*bk.Reference, "bk_") {
				t.Fatalf("booking = %+v", bk)
			}
			if s := b.BookSlot.Slot; s.Remaining != 0 || s.BookedCount != 1 || s.Status != "BOOKED" {
				t.Fatalf("slot after booking = %+v", s)
			}

			refusals := []struct {
				name  string
				input map[string]any
				code  string
			}{
				{"a full slot", map[string]any{"slotId": free[0].ID, "customer": "Bob"}, "SLOT_UNAVAILABLE"},
				{"a missing slot", map[string]any{"slotId": "987654321", "customer": "Bob"}, "NOT_FOUND"},
				{"an empty customer", map[string]any{"slotId": free[1].ID, "customer": " "}, "BAD_USER_INPUT"},
				{"a malformed slot id", map[string]any{"slotId": "12x", "customer": "Bob"}, "BAD_USER_INPUT"},
			}
			for _, r := range refusals {
				res := gql(book, map[string]any{"input": r.input})
				if res.Code() != r.code {
					t.Errorf("booking %s: code %q, want %s: %s", r.name, res.Code(), r.code, res.Body)
				}
			}
			if res := gql(book, map[string]any{"input": map[string]any{"slotId": "12x", "customer": "Bob"}}); !strings.Contains(res.Errors[0].Message, "input.slotId") {
				t.Errorf("malformed id error does not name input.slotId: %s", res.Body)
			}

			// The same idempotency key replays; with other input it conflicts.
			key := map[string]any{"slotId": free[1].ID, "customer": "Cy", "idempotencyKey": "retry-1"}
			var first, again booked
			gql(book, map[string]any{"input": key}).Decode(t, &first)
			gql(book, map[string]any{"input": key}).Decode(t, &again)
			if first.BookSlot.Booking.ID != again.BookSlot.Booking.ID || *first.BookSlot.Booking.Reference != *again.BookSlot.Booking.Reference {
				t.Fatalf("replay answered booking %s, first was %s", again.BookSlot.Booking.ID, first.BookSlot.Booking.ID)
			}
			key["customer"] = "Dee"
			if res := gql(book, map[string]any{"input": key}); res.Code() != "IDEMPOTENCY_CONFLICT" {
				t.Errorf("same key, other customer: %s", res.Body)
			}

			// A client cancels by the booking's reference; by id only an
			// admin (or the booking's signed-in owner) may.
			const cancelByID = `mutation($id: ID!) { cancelBooking(input: {bookingId: $id}) { booking { id status } } }`
			if res := gql(cancelByID, map[string]any{"id": b.BookSlot.Booking.ID}); res.Code() != "UNAUTHENTICATED" {
				t.Fatalf("an anonymous cancel by id: %s", res.Body)
			}
			if res := gql(`query($id: ID!) { booking(id: $id) { customer } }`, map[string]any{"id": b.BookSlot.Booking.ID}); res.Code() != "UNAUTHENTICATED" {
				t.Fatalf("an anonymous read by id: %s", res.Body)
			}

			// Cancelling frees the seat; the booking stays readable.
			const cancel = `mutation($ref: String!) { cancelBooking(input: {reference: $ref}) {
			  booking { id status cancelledAt } slot { id remaining status } } }`
			var c struct {
				CancelBooking struct {
					Booking struct {
						ID, Status  string
						CancelledAt *time.Time
					}
					Slot *struct {
						ID        string
						Remaining int
						Status    string
					}
				}
			}
			gql(cancel, map[string]any{"ref": *b.BookSlot.Booking.Reference}).Decode(t, &c)
			if c.CancelBooking.Booking.Status != "CANCELLED" || c.CancelBooking.Booking.CancelledAt == nil {
				t.Fatalf("cancelled booking = %+v", c.CancelBooking.Booking)
			}
			if s := c.CancelBooking.Slot; s == nil || s.Remaining != 1 || s.Status != "AVAILABLE" {
				t.Fatalf("slot after cancel = %+v", s)
			}
			var read struct {
				Booking struct {
					Status string
					Slot   struct{ ID string }
				}
			}
			gql(`query($ref: String!) { booking(reference: $ref) { status slot { id } } }`, map[string]any{"ref": *b.BookSlot.Booking.Reference}).Decode(t, &read)
			if read.Booking.Status != "CANCELLED" || read.Booking.Slot.ID != free[0].ID {
				t.Fatalf("booking read back by reference = %+v", read.Booking)
			}
			admin(`query($id: ID!) { booking(id: $id) { status slot { id } } }`, map[string]any{"id": b.BookSlot.Booking.ID}).Decode(t, &read)
			if read.Booking.Status != "CANCELLED" || read.Booking.Slot.ID != free[0].ID {
				t.Fatalf("booking read back by an admin = %+v", read.Booking)
			}
			if res := gql(cancel, map[string]any{"ref": "bk_AAAAAAAAAAAAAAAAAAAAAAAA"}); res.Code() != "NOT_FOUND" {
				t.Errorf("cancel by a reference of no booking: %s", res.Body)
			}
			if res := admin(cancelByID, map[string]any{"id": "987654321"}); res.Code() != "NOT_FOUND" {
				t.Errorf("an admin's cancel of a missing booking: %s", res.Body)
			}

			// SLOT_TOO_SOON: a provider whose notice covers every slot it has.
			var created struct{ CreateProvider struct{ ID string } }
			admin(`mutation { createProvider(input: {name: "Far Ahead", timeZone: "UTC", slotMinutes: 60,
			  minNoticeMinutes: 525600, workingHours: [
			    {weekday: MONDAY, start: "00:00", end: "24:00"}, {weekday: TUESDAY, start: "00:00", end: "24:00"},
			    {weekday: WEDNESDAY, start: "00:00", end: "24:00"}, {weekday: THURSDAY, start: "00:00", end: "24:00"},
			    {weekday: FRIDAY, start: "00:00", end: "24:00"}, {weekday: SATURDAY, start: "00:00", end: "24:00"},
			    {weekday: SUNDAY, start: "00:00", end: "24:00"}]}) { id } }`, nil).Decode(t, &created)
			pid := created.CreateProvider.ID
			var gen struct{ GenerateSlots struct{ Created int } }
			admin(`mutation($p: ID!) { generateSlots(input: {daysAhead: 2, providerIds: [$p]}) { created } }`,
				map[string]any{"p": pid}).Decode(t, &gen)
			if gen.GenerateSlots.Created == 0 {
				t.Fatal("generateSlots created nothing for the new provider")
			}
			var soon slotPage
			gql(`query($p: ID!) { timeSlots(first: 1, filter: {providerId: $p}) { edges { node { id } } } }`,
				map[string]any{"p": pid}).Decode(t, &soon)
			res := gql(book, map[string]any{"input": map[string]any{"slotId": soon.TimeSlots.Edges[0].Node.ID, "customer": "Eve"}})
			if res.Code() != "SLOT_TOO_SOON" {
				t.Errorf("booking inside the minimum notice: %s", res.Body)
			}

			// SLOT_IN_PAST: a slot that has already started, written as the
			// generator would have written it yesterday.
			db := openDatabase(t, srv.DatabaseURL)
			start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Minute)
			var pidNum int64
			fmt.Sscan(pid, &pidNum)
			past := models.TimeSlot{ProviderID: pidNum, StartTime: start.Add(-24 * time.Hour), EndTime: start.Add(-23 * time.Hour),
				Date: models.DateOf(start.Add(-24 * time.Hour)), Capacity: 1, Version: 1, CreatedAt: start, UpdatedAt: start}
			if err := db.Create(&past).Error; err != nil {
				t.Fatal(err)
			}
			res = gql(book, map[string]any{"input": map[string]any{"slotId": fmt.Sprint(past.ID), "customer": "Eve"}})
			if res.Code() != "SLOT_IN_PAST" {
				t.Errorf("booking a past slot: %s", res.Body)
			}
		})
	}
}

// TestGraphQLDatabaseFailureShowsOnlyARequestID breaks the database under
// a running server: the client must get INTERNAL_SERVER_ERROR and a request
// id, and nothing of the SQL, the driver or the stack; the log must have
// the cause under that id.
func TestGraphQLDatabaseFailureShowsOnlyARequestID(t *testing.T) {
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testEnv(t, d, map[string]string{"SEED_DEMO": "false"}))
			db := openDatabase(t, srv.DatabaseURL)
			if err := db.Exec("ALTER TABLE time_slots RENAME TO time_slots_gone").Error; err != nil {
				t.Fatal(err)
			}

			res := postGraphQL(t, srv.URL, `{ timeSlots(first: 5) { nodes { id } } }`, nil, nil)
			if res.Code() != "INTERNAL_SERVER_ERROR" {
				t.Fatalf("code %q: %s", res.Code(), res.Body)
			}
			id := res.Header.Get("X-Request-Id")
			if id == "" || res.Errors[0].Extensions["requestId"] != id || !strings.Contains(res.Errors[0].Message, id) {
				t.Fatalf("error does not carry the request id %q: %s", id, res.Body)
			}
			for _, leak := range []string{"time_slots", "SELECT", "select", "relation", "sqlite", "SQLSTATE", "pgx", "no such table", "goroutine", ".go:", "panic"} {
				if strings.Contains(string(res.Body), leak) {
					t.Errorf("answer leaks %q: %s", leak, res.Body)
				}
			}
			logged := false
			for _, line := range strings.Split(srv.Logs(), "\n") {
				if strings.Contains(line, `"request_id":"`+id+`"`) && strings.Contains(line, "time_slots") {
					logged = true
				}
			}
			if !logged {
				t.Errorf("no log line with request id %s and the cause:\n%s", id, srv.Logs())
			}
		})
	}
}

// TestPlaygroundRunsAQuery fetches GraphiQL from / (redirected) as a
// browser would, and sends a query to the endpoint the page names with the
// headers GraphiQL's fetcher sends.
func TestPlaygroundRunsAQuery(t *testing.T) {
	t.Parallel()
	srv := startServer(t, testEnv(t, database.SQLite, nil))
	page, err := getAnswer(nil, http.MethodGet, srv.URL+"/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusOK || page.URL.Path != "/playground" {
		t.Fatalf("GET / ended at %s with %d", page.URL.Path, page.Status)
	}
	html := string(page.Body)
	if !strings.Contains(page.Header.Get("Content-Type"), "text/html") || !strings.Contains(html, "GraphiQL") {
		t.Fatalf("not the GraphiQL page: %s", page.Header.Get("Content-Type"))
	}
	if !strings.Contains(html, "shouldPersistHeaders: false") || strings.Contains(html, "shouldPersistHeaders: true") {
		t.Fatal("the page would persist the headers editor (and an admin token) in localStorage")
	}
	m := regexp.MustCompile(`const endpoint = location\.origin \+ "([^"]+)";`).FindStringSubmatch(html)
	if m == nil {
		t.Fatal("the page names no endpoint")
	}
	body := `{"query":"query AvailableSlots { timeSlots(first: 3) { totalCount nodes { id provider { name } } } __schema { queryType { name } } }","variables":{},"operationName":"AvailableSlots"}`
	a, err := getAnswer(nil, http.MethodPost, srv.URL+m[1], http.Header{
		"Content-Type": {"application/json"},
		"Accept":       {"application/graphql-response+json, application/json, multipart/mixed"},
	}, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := parseGraphQL(a)
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		TimeSlots struct {
			TotalCount int
			Nodes      []struct{ Provider struct{ Name string } }
		}
		Schema struct{ QueryType struct{ Name string } } `json:"__schema"`
	}
	res.Decode(t, &data)
	if len(data.TimeSlots.Nodes) != 3 || data.TimeSlots.Nodes[0].Provider.Name == "" || data.Schema.QueryType.Name != "Query" {
		t.Fatalf("query through the playground's endpoint answered %+v", data)
	}

	// The page's subscription runs over the websocket it names, from the
	// page's origin, as its graphql-ws client would.
	ws := regexp.MustCompile(`const subscriptionEndpoint = location\.origin\.replace\(/\^http/, 'ws'\) \+ "([^"]+)";`).FindStringSubmatch(html)
	doc := regexp.MustCompile(`defaultQuery: "((?:[^"\\]|\\.)*)"`).FindStringSubmatch(html)
	if ws == nil || doc == nil {
		t.Fatal("the page names no subscription endpoint or default document")
	}
	var query string
	if err := json.Unmarshal([]byte(`"`+doc[1]+`"`), &query); err != nil || !strings.Contains(query, "subscription SlotsChanged") {
		t.Fatalf("default document %q: %v", doc[1], err)
	}
	c, _, err := gqlws.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http")+ws[1], http.Header{"Origin": {srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Init(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(t.Context(), "subscribe", "1", map[string]any{"query": query, "operationName": "SlotsChanged"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); activeSubscriptions(t, srv.URL) != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the playground's subscription never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPlaygroundInProductionIsForAdmins: with APP_ENV=production only a
// request with the admin token gets the page.
func TestPlaygroundInProductionIsForAdmins(t *testing.T) {
	t.Parallel()
	const token = "a-long-enough-admin-token"
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{"APP_ENV": "production", "ADMIN_TOKEN": token}))
	for _, c := range []struct {
		auth   string
		status int
	}{{"", http.StatusUnauthorized}, {"Bearer not-the-token", http.StatusForbidden}, {"Bearer " + token, http.StatusOK}} {
		header := http.Header{}
		if c.auth != "" {
			header.Set("Authorization", c.auth)
		}
		a, err := getAnswer(nil, http.MethodGet, srv.URL+"/playground", header, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != c.status {
			t.Errorf("Authorization %q: %d, want %d", c.auth, a.Status, c.status)
		}
	}
}

package graph_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/graph"
	"timeslots/internal/config"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/feed"
	"timeslots/internal/httpx"
	"timeslots/internal/readcache"
	"timeslots/internal/slots"
)

// manualClock is a settable clock shared by a manager and its cache.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// cachedAPI is a GraphQL handler with an answer cache beside one without,
// over the same manager, both behind the middleware the server uses; and
// a third with a cache of its own that also answers requests by their
// raw bytes (rawAnswers), counting those it answers that way.
type cachedAPI struct {
	cached, plain, raw http.Handler
	cache, rawCache    *readcache.Cache
	rawAnswered        *atomic.Int64
	m                  *slots.Manager
}

func newCachedAPI(t *testing.T, m *slots.Manager, now func() time.Time) *cachedAPI {
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cache := readcache.New(readcache.Options{MaxBytes: 8 << 20, MaxAge: time.Hour, Now: now})
	edge := func(h http.Handler) http.Handler {
		h = testCustomers(h)
		h = httpx.NewAdminGate("an-admin-token-of-some-length").Middleware(h)
		return httpx.LimitBody(cfg.MaxBodyBytes)(h)
	}
	opt := graph.OptionsOf(cfg)
	plain := edge(graph.NewHandler(opt, m))
	opt.Answers = cache
	a := &cachedAPI{cached: edge(graph.NewHandler(opt, m)), plain: plain, cache: cache, m: m, rawAnswered: &atomic.Int64{}}
	a.rawCache = readcache.New(readcache.Options{MaxBytes: 8 << 20, MaxAge: time.Hour, Now: now})
	opt.Answers, opt.AnswerAliasBytes = a.rawCache, 1<<20
	graph.CountRawAnswers(&opt, a.rawAnswered)
	a.raw = edge(graph.NewHandler(opt, m))
	return a
}

// gqlRequest is one GraphQL request, by POST or GET, with headers.
type gqlRequest struct {
	get     bool
	query   string
	op      string
	vars    map[string]any
	headers map[string]string
}

func (r gqlRequest) send(h http.Handler) (int, http.Header, string) {
	var req *http.Request
	if r.get {
		q := url.Values{"query": {r.query}}
		if r.op != "" {
			q.Set("operationName", r.op)
		}
		if r.vars != nil {
			b, _ := json.Marshal(r.vars)
			q.Set("variables", string(b))
		}
		req = httptest.NewRequest(http.MethodGet, "/graphql?"+q.Encode(), nil)
	} else {
		b, _ := json.Marshal(map[string]any{"query": r.query, "operationName": r.op, "variables": r.vars})
		req = httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header(), rec.Body.String()
}

// TestCachedAnswersAreThePlainAnswersBytes sends each request twice to the
// handler with the answer cache and once to one without: status, content
// type and body are identical each time, cacheable operations are answered
// from the cache the second time (a hit, and no SQL), and the others never.
func TestCachedAnswersAreThePlainAnswersBytes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		m := slots.New(db)
		ids := allDayProviders(t, m, 3)
		a := newCachedAPI(t, m, m.Now)
		page, err := m.ListSlots(t.Context(), slots.SlotFilter{}, slots.PageRequest{First: ptrTo(6)})
		if err != nil || len(page.Slots) != 6 {
			t.Fatalf("slots: %v", err)
		}
		for i, s := range page.Slots[:4] {
			if _, _, err := m.Book(t.Context(), slots.BookInput{SlotID: s.ID, Customer: fmt.Sprint("customer ", i)}); err != nil {
				t.Fatal(err)
			}
		}
		c2 := page.Cursor(2)
		tomorrow := m.Now().AddDate(0, 0, 1).Format("2006-01-02")
		pid := fmt.Sprint(ids[1])
		sqlLog := watchSQL(t, db)
		admin := map[string]string{"Authorization": "Bearer an-admin-token-of-some-length"}
		customer := map[string]string{customerHeader: "cust-1"}
		for _, tc := range []struct {
			name   string
			req    gqlRequest
			cached bool
		}{
			{"the bench's page", gqlRequest{query: `query Slots($p: ID!, $s: Date!, $e: Date!) { timeSlots(first: 20, filter: {providerId: $p, startDate: $s, endDate: $e}) { edges { cursor node { id providerId startTime endTime date status capacity bookedCount } } pageInfo { hasNextPage endCursor } } }`,
				vars: map[string]any{"p": pid, "s": tomorrow, "e": tomorrow}}, true},
			{"the bench's page by GET", gqlRequest{get: true, query: `query Slots($p: ID!) { timeSlots(first: 20, filter: {providerId: $p}) { nodes { id remaining } } }`,
				vars: map[string]any{"p": pid}}, true},
			{"the page with its providers", gqlRequest{query: `{ timeSlots(first: 10) { nodes { id startTime remaining provider { id name } } } }`}, true},
			{"every cached field", gqlRequest{query: `{ __typename timeSlots(first: 7, filter: {status: [AVAILABLE, BOOKED]}) { __typename edges { cursor node { __typename id providerId startTime endTime date durationMinutes capacity bookedCount remaining status provider { __typename id name timeZone slotMinutes bufferMinutes capacity minNoticeMinutes active workingHours { __typename weekday start end } } } } nodes { id } pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor } } }`}, true},
			{"for graphql-response+json", gqlRequest{query: `{ timeSlots(first: 3) { nodes { id } } }`, headers: map[string]string{"Accept": "application/graphql-response+json"}}, true},
			{"for an admin", gqlRequest{query: `{ timeSlots(first: 3) { nodes { id } } }`, headers: admin}, true},
			{"for a customer", gqlRequest{query: `{ timeSlots(first: 3) { nodes { id } } }`, headers: customer}, true},
			{"the full slots only", gqlRequest{query: `{ timeSlots(filter: {status: [BOOKED]}) { nodes { id bookedCount remaining status } } }`}, true},
			{"aliases and two pages", gqlRequest{query: `query($c: String) { a: timeSlots(first: 2) { edges { c1: cursor node { x: id id } } } b: timeSlots(first: 3, after: $c, filter: {providerIds: [` + pid + `]}) { p: pageInfo { hasPreviousPage } nodes { id } } }`,
				vars: map[string]any{"c": c2}}, true},
			{"fragments, @skip and @include", gqlRequest{query: `query($yes: Boolean!, $no: Boolean!) { timeSlots(first: 3) { ...Conn edges { ... on TimeSlotEdge { cursor @include(if: $yes) } node { ...Slot id @skip(if: $no) } } } } fragment Conn on TimeSlotConnection { pageInfo { endCursor } } fragment Slot on TimeSlot { endTime remaining provider { name } }`,
				vars: map[string]any{"yes": true, "no": false}}, true},
			{"a page backward", gqlRequest{query: `query($b: String!) { timeSlots(last: 2, before: $b) { edges { cursor } pageInfo { hasNextPage hasPreviousPage } } }`, vars: map[string]any{"b": c2}}, true},
			{"an empty page", gqlRequest{query: `{ timeSlots(first: 5, filter: {date: "2001-01-01"}) { nodes { id } pageInfo { hasNextPage } } }`}, true},
			{"a named operation among others", gqlRequest{query: `query Other { providers(first: 1) { nodes { id } } } query Mine { timeSlots(first: 1) { nodes { id } } }`, op: "Mine"}, true},
			{"a text that needs HTML escaping", gqlRequest{query: `{ timeSlots(first: 1) { nodes { id } } } # <&>`}, true},

			{"totalCount is answered afresh", gqlRequest{query: `{ timeSlots(first: 2) { totalCount nodes { id } } }`}, false},
			{"Provider.timeSlots is answered afresh", gqlRequest{query: `{ timeSlots(first: 1) { nodes { provider { timeSlots(first: 1) { nodes { id } } } } } }`}, false},
			{"another root field is answered afresh", gqlRequest{query: `{ timeSlots(first: 1) { nodes { id } } providers(first: 1) { nodes { name } } }`}, false},
			{"myBookings is answered afresh", gqlRequest{query: `{ myBookings { nodes { id } } }`, headers: customer}, false},
			{"an admin field is answered afresh", gqlRequest{query: `{ slotStats { totalSlots } }`, headers: admin}, false},
			{"a refused admin field is answered afresh", gqlRequest{query: `{ slotStats { totalSlots } }`}, false},
			{"introspection is answered afresh", gqlRequest{query: `{ __schema { queryType { name } } }`}, false},
			{"a bad cursor is answered afresh", gqlRequest{query: `{ timeSlots(after: "nope") { nodes { id } } }`}, false},
			{"a page too large is answered afresh", gqlRequest{query: `{ timeSlots(first: 101) { nodes { id } } }`}, false},
			{"a bad date variable is answered afresh", gqlRequest{query: `query($d: Date) { timeSlots(filter: {date: $d}) { nodes { id } } }`, vars: map[string]any{"d": "2025-02-30"}}, false},
			{"an empty providerIds is answered afresh", gqlRequest{query: `{ timeSlots(filter: {providerIds: []}) { nodes { id } } }`}, false},
			{"a missing variable is refused", gqlRequest{query: `query($c: String!) { timeSlots(after: $c) { nodes { id } } }`}, false},
			{"an unknown field is refused", gqlRequest{query: `{ timeSlots { nodes { id colour } } }`}, false},
			{"a mutation is answered afresh", gqlRequest{query: `mutation { cancelBooking(input: {bookingId: "999999"}) { booking { id } } }`}, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ps, ph, pb := tc.req.send(a.plain)
				for round := range 2 {
					before := a.cache.Stats()
					sqlLog.Reset()
					cs, ch, cb := tc.req.send(a.cached)
					if cs != ps || cb != pb || ch.Get("Content-Type") != ph.Get("Content-Type") {
						t.Fatalf("round %d: cached HTTP %d %s\n%s\nplain HTTP %d %s\n%s", round, cs, ch.Get("Content-Type"), cb, ps, ph.Get("Content-Type"), pb)
					}
					hits := a.cache.Stats().Hits - before.Hits
					stmts := sqlLog.Reset()
					wantHit := tc.cached && round == 1
					if (hits == 1) != wantHit {
						t.Fatalf("round %d: %d hits, want a hit: %v; %s", round, hits, wantHit, cb)
					}
					if wantHit && len(stmts) > 0 {
						t.Fatalf("a hit ran SQL: %v", stmts)
					}
				}
				if tc.cached && (ps != http.StatusOK || strings.Contains(pb, `"errors"`)) {
					t.Fatalf("HTTP %d: %s", ps, pb)
				}
				// By the raw bytes: the first answer is kept, the second
				// answered before gqlgen reads the request; once the cache
				// lost it, a request is answered the plain way (one miss)
				// and kept again.
				for round := range 4 {
					if round == 2 {
						a.rawCache.Purge()
					}
					before, raw := a.rawCache.Stats(), a.rawAnswered.Load()
					sqlLog.Reset()
					rs, rh, rb := tc.req.send(a.raw)
					if rs != ps || rb != pb || fmt.Sprint(rh) != fmt.Sprint(ph) {
						t.Fatalf("raw round %d: HTTP %d %v\n%s\nplain HTTP %d %v\n%s", round, rs, rh, rb, ps, ph, pb)
					}
					after, stmts := a.rawCache.Stats(), sqlLog.Reset()
					wantHit := tc.cached && (round == 1 || round == 3)
					if got := a.rawAnswered.Load() - raw; (got == 1) != wantHit || int64(after.Hits-before.Hits) != got {
						t.Fatalf("raw round %d: %d raw answers, %d hits, want one of each: %v", round, got, after.Hits-before.Hits, wantHit)
					}
					if wantHit && len(stmts) > 0 {
						t.Fatalf("a raw hit ran SQL: %v", stmts)
					}
					if tc.cached && !wantHit && after.Misses-before.Misses != 1 {
						t.Fatalf("raw round %d: %d misses counted, want 1", round, after.Misses-before.Misses)
					}
				}
			})
		}
	})
}

func ptrTo[T any](v T) *T { return &v }

// TestACachedPageLeavesWhenItsFirstSlotStarts: with the manager's clock
// injected into the cache, a kept page is answered until the instant its
// first free slot starts, and from then on the fresh page, without it.
func TestACachedPageLeavesWhenItsFirstSlotStarts(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		clk := &manualClock{t: time.Now().UTC().Truncate(time.Hour).Add(time.Minute)}
		m := slots.New(db, slots.WithClock(clk.Now))
		allDayProviders(t, m, 1)
		a := newCachedAPI(t, m, clk.Now)
		req := gqlRequest{query: `{ timeSlots(first: 3) { nodes { id startTime } } }`}
		_, _, first := req.send(a.cached)
		var page struct {
			Data struct {
				TimeSlots struct {
					Nodes []struct{ ID, StartTime string }
				}
			}
		}
		if err := json.Unmarshal([]byte(first), &page); err != nil || len(page.Data.TimeSlots.Nodes) != 3 {
			t.Fatalf("%v: %s", err, first)
		}
		start, err := time.Parse(time.RFC3339, page.Data.TimeSlots.Nodes[0].StartTime)
		if err != nil {
			t.Fatal(err)
		}
		clk.Set(start.Add(-time.Nanosecond))
		hits := a.cache.Stats().Hits
		if _, _, b := req.send(a.cached); b != first || a.cache.Stats().Hits != hits+1 {
			t.Fatalf("1ns before the first slot starts: %s (hits %d → %d)", b, hits, a.cache.Stats().Hits)
		}
		clk.Set(start)
		_, _, fresh := req.send(a.cached)
		_, _, plain := req.send(a.plain)
		if fresh != plain || fresh == first || strings.Contains(fresh, `"`+page.Data.TimeSlots.Nodes[0].ID+`"`) {
			t.Fatalf("when the first slot starts: cached %s, plain %s, was %s", fresh, plain, first)
		}
	})
}

// TestRawAnswersAreKeptPerCallerClass: the same body from an anonymous
// caller, an admin and a customer is three requests to the raw path, each
// answered from the cache by its bytes only after its own class asked.
func TestRawAnswersAreKeptPerCallerClass(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		m := slots.New(db)
		allDayProviders(t, m, 1)
		a := newCachedAPI(t, m, m.Now)
		query := `{ timeSlots(first: 2) { nodes { id remaining } } }`
		for i, class := range []map[string]string{
			nil, nil,
			{"Authorization": "Bearer an-admin-token-of-some-length"},
			{customerHeader: "cust-1"}, {customerHeader: "cust-2"},
			{"Authorization": "Bearer an-admin-token-of-some-length"}, nil,
		} {
			raw, misses := a.rawAnswered.Load(), a.rawCache.Stats().Misses
			code, _, body := gqlRequest{query: query, headers: class}.send(a.raw)
			if code != http.StatusOK || !strings.Contains(body, `"remaining"`) {
				t.Fatalf("request %d: HTTP %d %s", i, code, body)
			}
			first := i == 0 || i == 2 || i == 3 // of its class
			if got := a.rawAnswered.Load() - raw; (got == 0) != first {
				t.Fatalf("request %d: %d raw answers, want one unless first of its class", i, got)
			}
			if got := a.rawCache.Stats().Misses - misses; (got == 1) != first {
				t.Fatalf("request %d: %d misses, want one if first of its class", i, got)
			}
		}
	})
}

// TestAPageIsKeptThroughChangesBeyondIt: a kept page of a provider's first
// two slots (the third read past it) stays kept when a later slot is
// booked, and is dropped when the third or one of its own is; every read
// is the plain answer.
func TestAPageIsKeptThroughChangesBeyondIt(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		changes := feed.NewLocal()
		m := slots.New(db, slots.WithFeed(changes))
		ids := allDayProviders(t, m, 1)
		a := newCachedAPI(t, m, m.Now)
		defer a.rawCache.Follow(changes)()
		page, err := m.ListSlots(t.Context(), slots.SlotFilter{ProviderID: &ids[0]}, slots.PageRequest{First: ptrTo(6)})
		if err != nil || len(page.Slots) != 6 {
			t.Fatalf("slots: %v", err)
		}
		req := gqlRequest{query: `query($p: ID!) { timeSlots(first: 2, filter: {providerId: $p, status: [AVAILABLE, BOOKED]}) { nodes { id remaining } pageInfo { hasNextPage } } }`,
			vars: map[string]any{"p": fmt.Sprint(ids[0])}}
		for i, tc := range []struct {
			book int  // the index of the slot booked before the read
			kept bool // the read is answered from the cache
		}{{-1, false}, {-1, true}, {5, true}, {3, true}, {2, false}, {-1, true}, {0, false}, {4, true}} {
			if tc.book >= 0 {
				if _, _, err := m.Book(t.Context(), slots.BookInput{SlotID: page.Slots[tc.book].ID, Customer: fmt.Sprint("c", i)}); err != nil {
					t.Fatal(err)
				}
			}
			hits := a.rawCache.Stats().Hits
			_, _, got := req.send(a.raw)
			if _, _, want := req.send(a.plain); got != want {
				t.Fatalf("step %d: cached %s, plain %s", i, got, want)
			}
			if kept := a.rawCache.Stats().Hits > hits; kept != tc.kept {
				t.Fatalf("step %d (booked slot %d): kept %v, want %v", i, tc.book, kept, tc.kept)
			}
		}
	})
}

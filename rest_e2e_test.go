package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"timeslots/internal/dbtest"
	"timeslots/internal/rest/openapitest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// restClient speaks to a started server and checks every answer against
// the OpenAPI document.
type restClient struct {
	t     *testing.T
	base  string
	api   *openapitest.Validator
	http  *http.Client
	token string
}

func newRESTClient(t *testing.T, srv *testServer) *restClient {
	return &restClient{t: t, base: srv.URL, api: openapitest.New(t, srv.URL), http: &http.Client{Timeout: 60 * time.Second}}
}

// do sends a request and checks its answer; body, when not nil, goes with
// contentType.
func (c *restClient) do(method, path, contentType string, body []byte) answer {
	c.t.Helper()
	header := http.Header{}
	if contentType != "" {
		header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		header.Set("Authorization", "Bearer "+c.token)
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	a, err := getAnswer(c.http, method, c.base+path, header, r)
	if err != nil {
		c.t.Fatal(err)
	}
	c.check(c.t, method, path, header, body, a)
	return a
}

// check validates a, the answer to method path with header and body,
// against the OpenAPI document.
func (c *restClient) check(t testing.TB, method, path string, header http.Header, body []byte, a answer) {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	c.api.Check(t, req, a.Status, a.Header, a.Body)
}

// keysOf answers the keys of the JSON object raw, in the order written.
func keysOf(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("bad JSON object: %v: %s", err, raw)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("bad JSON value: %v: %s", err, raw)
		}
	}
	return keys
}

// slotList is the answer of GET /api/time-slots, with the raw slots kept
// for checking their spelling.
type slotList struct {
	Data       []json.RawMessage `json:"data"`
	Pagination struct {
		Limit      int     `json:"limit"`
		HasMore    bool    `json:"hasMore"`
		NextCursor *string `json:"nextCursor"`
	} `json:"pagination"`
}

type slotOut struct {
	ID          int64  `json:"id"`
	ProviderID  int64  `json:"providerId"`
	StartTime   string `json:"startTime"`
	EndTime     string `json:"endTime"`
	Date        string `json:"date"`
	Status      string `json:"status"`
	Capacity    int    `json:"capacity"`
	BookedCount int    `json:"bookedCount"`
}

var slotKeys = []string{"id", "providerId", "startTime", "endTime", "date", "status", "capacity", "bookedCount"}

// decodeList reads a 200 answer of GET /api/time-slots and checks its
// spelling: key order, IDs as JSON numbers, instants in UTC with Z.
func decodeList(t *testing.T, resp answer) ([]slotOut, slotList) {
	t.Helper()
	if resp.Status != http.StatusOK {
		t.Fatalf("want 200, got %s", resp)
	}
	if got := keysOf(t, resp.Body); !slices.Equal(got, []string{"data", "pagination"}) {
		t.Fatalf("top-level keys %v", got)
	}
	var l slotList
	if err := json.Unmarshal(resp.Body, &l); err != nil {
		t.Fatal(err)
	}
	if l.Data == nil {
		t.Fatalf("data must be an array, even when empty: %s", resp.Body)
	}
	var raw struct {
		Pagination json.RawMessage `json:"pagination"`
	}
	_ = json.Unmarshal(resp.Body, &raw)
	if got := keysOf(t, raw.Pagination); !slices.Equal(got, []string{"limit", "hasMore", "nextCursor"}) {
		t.Fatalf("pagination keys %v", got)
	}
	out := make([]slotOut, len(l.Data))
	for i, d := range l.Data {
		if got := keysOf(t, d); !slices.Equal(got, slotKeys) {
			t.Fatalf("slot keys %v, want %v", got, slotKeys)
		}
		var generic map[string]any
		_ = json.Unmarshal(d, &generic)
		for _, k := range []string{"id", "providerId"} {
			if _, ok := generic[k].(float64); !ok {
				t.Fatalf("%s must be a JSON number: %s", k, d)
			}
		}
		if err := json.Unmarshal(d, &out[i]); err != nil {
			t.Fatal(err)
		}
		for _, ts := range []string{out[i].StartTime, out[i].EndTime} {
			if _, err := time.Parse(time.RFC3339, ts); err != nil || !strings.HasSuffix(ts, "Z") {
				t.Fatalf("instant %q is not RFC 3339 UTC with Z", ts)
			}
		}
	}
	if l.Pagination.HasMore != (l.Pagination.NextCursor != nil) {
		t.Fatalf("hasMore %v but nextCursor %v", l.Pagination.HasMore, l.Pagination.NextCursor)
	}
	return out, l
}

// errorOf reads an error answer, checking its status and shape.
func errorOf(t *testing.T, resp answer, status int) (code, message string) {
	t.Helper()
	if resp.Status != status {
		t.Fatalf("want %d, got %s", status, resp)
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(resp.Body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not the error shape: %s", resp.Body)
	}
	return e.Error.Code, e.Error.Message
}

// managerIDs pages through the manager with the filter GraphQL would pass
// and answers the ids in order.
func managerIDs(t *testing.T, m *slots.Manager, f slots.SlotFilter) []int64 {
	t.Helper()
	var ids []int64
	var after *string
	for {
		n := 100
		page, err := m.ListSlots(context.Background(), f, slots.PageRequest{First: &n, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Slots {
			ids = append(ids, s.ID)
		}
		if !page.HasNextPage {
			return ids
		}
		c := page.Cursor(len(page.Slots) - 1)
		after = &c
	}
}

// TestRESTEndToEnd runs the documented curl commands, the paging contract
// and every refused input against the real server, on both databases.
func TestRESTEndToEnd(t *testing.T) {
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			srv := startServer(t, testEnv(t, d, map[string]string{"MAX_BODY_BYTES": "4096", "LOG_LEVEL": "warn"}))
			c := newRESTClient(t, srv)
			// The server's database opened beside it, to compare the REST
			// answers with what the manager (and so GraphQL) answers.
			m := slots.New(openDatabase(t, srv.DatabaseURL))

			t.Run("the six documented commands answer 200 in the documented shape", func(t *testing.T) {
				documentedCommands(t, c)
			})
			t.Run("following nextCursor returns every matching slot once in GraphQL's order", func(t *testing.T) {
				pagingMatchesManager(t, c, m)
			})
			t.Run("bad input answers the error shape naming the parameter", func(t *testing.T) {
				badInputs(t, c)
			})
		})
	}
}

func documentedCommands(t *testing.T, c *restClient) {
	// curl "http://localhost:3000/api/time-slots?limit=10"
	got, l := decodeList(t, c.do(http.MethodGet, "/api/time-slots?limit=10", "", nil))
	if len(got) != 10 || l.Pagination.Limit != 10 || !l.Pagination.HasMore {
		t.Fatalf("limit=10: %d slots, pagination %+v; want 10 of the demo slots and more", len(got), l.Pagination)
	}
	for _, s := range got {
		if s.Status != "available" || s.BookedCount >= s.Capacity {
			t.Fatalf("default status must be available: %+v", s)
		}
	}

	// curl "http://localhost:3000/api/time-slots?providerId=36&limit=5"
	// The demo has 7 providers, so 36 has no slots; the same query for a
	// demo provider shows the filter at work.
	got, l = decodeList(t, c.do(http.MethodGet, "/api/time-slots?providerId=36&limit=5", "", nil))
	if len(got) != 0 || l.Pagination.HasMore || l.Pagination.Limit != 5 {
		t.Fatalf("providerId=36: %d slots, %+v", len(got), l.Pagination)
	}
	got, l = decodeList(t, c.do(http.MethodGet, "/api/time-slots?providerId=3&limit=5", "", nil))
	if len(got) != 5 || !l.Pagination.HasMore {
		t.Fatalf("providerId=3&limit=5: %d slots, %+v", len(got), l.Pagination)
	}
	for _, s := range got {
		if s.ProviderID != 3 {
			t.Fatalf("providerId=3 answered a slot of provider %d", s.ProviderID)
		}
	}

	// curl "http://localhost:3000/api/time-slots?startDate=2025-09-09&endDate=2025-09-15"
	// Those dates are past, and only future slots are generated.
	got, l = decodeList(t, c.do(http.MethodGet, "/api/time-slots?startDate=2025-09-09&endDate=2025-09-15", "", nil))
	if len(got) != 0 || l.Pagination.Limit != 20 || l.Pagination.NextCursor != nil {
		t.Fatalf("past week: %d slots, %+v", len(got), l.Pagination)
	}

	// curl "http://localhost:3000/api/admin/time-slots"
	resp := c.do(http.MethodGet, "/api/admin/time-slots", "", nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("stats: %s", resp)
	}
	wantStats := []string{"totalSlots", "availableSlots", "bookedSlots", "availablePercent", "bookedPercent", "providers",
		"daysGenerated", "firstSlotAt", "lastSlotAt", "utilizationByProvider", "maintenance", "performance"}
	if got := keysOf(t, resp.Body); !slices.Equal(got, wantStats) {
		t.Fatalf("stats keys %v, want %v", got, wantStats)
	}
	var st struct {
		TotalSlots  int `json:"totalSlots"`
		Providers   int `json:"providers"`
		Utilization []struct {
			Provider struct {
				ID   json.Number `json:"id"`
				Name string      `json:"name"`
			} `json:"provider"`
			TotalSlots int `json:"totalSlots"`
		} `json:"utilizationByProvider"`
		Maintenance map[string]any `json:"maintenance"`
		Performance map[string]any `json:"performance"`
	}
	if err := json.Unmarshal(resp.Body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Providers != 7 || len(st.Utilization) != 7 || st.TotalSlots == 0 || st.Utilization[0].Provider.Name == "" {
		t.Fatalf("stats of the demo data: %s", resp.Body)
	}
	if st.Maintenance == nil || st.Performance == nil {
		t.Fatalf("maintenance and performance must be objects: %s", resp.Body)
	}
	before := st.TotalSlots

	// curl -X POST ".../api/admin/time-slots" -H "Content-Type: application/json" -d '{"daysAhead": 30}'
	resp = c.do(http.MethodPost, "/api/admin/time-slots", "application/json", []byte(`{"daysAhead": 30}`))
	if resp.Status != http.StatusOK {
		t.Fatalf("generate: %s", resp)
	}
	if got, want := keysOf(t, resp.Body), []string{"created", "skipped", "providers", "days", "batches", "durationMs"}; !slices.Equal(got, want) {
		t.Fatalf("generate keys %v, want %v", got, want)
	}
	var gen struct{ Created, Skipped, Providers, Days, Batches int }
	_ = json.Unmarshal(resp.Body, &gen)
	if gen.Created == 0 || gen.Providers != 7 || gen.Days != 30 || gen.Batches == 0 {
		t.Fatalf("generate 30 days over the 7-day demo: %s", resp.Body)
	}
	after := c.do(http.MethodGet, "/api/admin/time-slots", "", nil)
	_ = json.Unmarshal(after.Body, &st)
	if st.TotalSlots != before+gen.Created {
		t.Fatalf("stats after generate: %d slots, want %d + %d", st.TotalSlots, before, gen.Created)
	}

	// curl -X DELETE "http://localhost:3000/api/admin/time-slots?daysOld=30"
	resp = c.do(http.MethodDelete, "/api/admin/time-slots?daysOld=30", "", nil)
	if resp.Status != http.StatusOK {
		t.Fatalf("cleanup: %s", resp)
	}
	if got, want := keysOf(t, resp.Body), []string{"deleted", "durationMs"}; !slices.Equal(got, want) {
		t.Fatalf("cleanup keys %v, want %v", got, want)
	}
	var cl struct{ Deleted int }
	_ = json.Unmarshal(resp.Body, &cl)
	if cl.Deleted != 0 {
		t.Fatalf("no slot of a fresh database ended 30 days ago, yet %d were deleted", cl.Deleted)
	}

	// The document itself is served and is OpenAPI 3.1.
	resp = c.do(http.MethodGet, "/api/openapi.json", "", nil)
	var doc struct{ OpenAPI string }
	if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &doc) != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json: %d %.200s", resp.Status, resp.Body)
	}
}

func pagingMatchesManager(t *testing.T, c *restClient, m *slots.Manager) {
	ctx := context.Background()
	// Fill some slots so status=booked and status=all differ from the
	// default; provider 1 has capacity 1, so one booking fills a slot.
	n := 200
	one := int64(1)
	page, err := m.ListSlots(ctx, slots.SlotFilter{ProviderID: &one}, slots.PageRequest{First: &n, Max: n})
	if err != nil || len(page.Slots) < 40 {
		t.Fatalf("demo slots of provider 1: %d, %v", len(page.Slots), err)
	}
	for i := 0; i < len(page.Slots); i += 7 {
		if _, _, err := m.Book(ctx, slots.BookInput{SlotID: page.Slots[i].ID, Customer: fmt.Sprintf("c%d", i)}); err != nil {
			t.Fatalf("book: %v", err)
		}
	}
	mid := page.Slots[len(page.Slots)/2].Date
	from, to := models.Date(mid).AddDays(-1), models.Date(mid).AddDays(2)
	date := models.Date(mid)
	three := int64(3)
	all := []models.SlotStatus{models.SlotAvailable, models.SlotBooked}

	cases := []struct {
		name   string
		query  url.Values
		filter slots.SlotFilter
	}{
		{"every slot, odd page size", url.Values{"status": {"all"}, "limit": {"37"}}, slots.SlotFilter{Statuses: all}},
		{"default status and limit", url.Values{}, slots.SlotFilter{}},
		{"booked slots of one provider", url.Values{"providerId": {"1"}, "status": {"booked"}, "limit": {"2"}},
			slots.SlotFilter{ProviderID: &one, Statuses: []models.SlotStatus{models.SlotBooked}}},
		{"an inclusive local date range", url.Values{"startDate": {string(from)}, "endDate": {string(to)}, "limit": {"50"}},
			slots.SlotFilter{StartDate: &from, EndDate: &to}},
		{"one local date of one provider", url.Values{"date": {string(date)}, "providerId": {"3"}, "status": {"all"}, "limit": {"4"}},
			slots.SlotFilter{Date: &date, ProviderID: &three, Statuses: all}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := managerIDs(t, m, tc.filter)
			if len(want) == 0 {
				t.Fatal("the case matches no slot; it would prove nothing")
			}
			var got []int64
			seen := map[int64]bool{}
			q := tc.query
			for pages := 0; ; pages++ {
				if pages > len(want)+1 {
					t.Fatal("nextCursor never ends")
				}
				slotsOut, l := decodeList(t, c.do(http.MethodGet, "/api/time-slots?"+q.Encode(), "", nil))
				for _, s := range slotsOut {
					if seen[s.ID] {
						t.Fatalf("slot %d answered twice", s.ID)
					}
					seen[s.ID] = true
					got = append(got, s.ID)
					if tc.filter.StartDate != nil && (s.Date < string(from) || s.Date > string(to)) {
						t.Fatalf("slot %d has date %s outside %s..%s", s.ID, s.Date, from, to)
					}
				}
				if !l.Pagination.HasMore {
					break
				}
				q = cloneValues(q)
				q.Set("cursor", *l.Pagination.NextCursor)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("REST paged %d slots, the manager lists %d; or in another order\nrest:    %v\nmanager: %v",
					len(got), len(want), got, want)
			}
		})
	}

	// Each answered slot is the stored slot, spelled out.
	l, _ := decodeList(t, c.do(http.MethodGet, "/api/time-slots?providerId=1&status=booked&limit=1", "", nil))
	s, err := m.Slot(ctx, l[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	want := slotOut{ID: s.ID, ProviderID: s.ProviderID, StartTime: s.StartTime.UTC().Format(time.RFC3339),
		EndTime: s.EndTime.UTC().Format(time.RFC3339), Date: string(s.Date), Status: "booked", Capacity: 1, BookedCount: 1}
	if l[0] != want {
		t.Fatalf("answered %+v, stored %+v", l[0], want)
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func badInputs(t *testing.T, c *restClient) {
	providerCursor := slots.EncodeProviderCursor(1)
	cases := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		status      int
		code        string
		mentions    string // the parameter the message must name
	}{
		{"a negative limit", "GET", "/api/time-slots?limit=-1", "", "", 400, "BAD_USER_INPUT", "limit"},
		{"a limit of 0", "GET", "/api/time-slots?limit=0", "", "", 400, "BAD_USER_INPUT", "limit must be between 1 and 200"},
		{"a limit past int64", "GET", "/api/time-slots?limit=99999999999999999999", "", "", 400, "BAD_USER_INPUT", "limit"},
		{"a fractional limit", "GET", "/api/time-slots?limit=1.5", "", "", 400, "BAD_USER_INPUT", "limit"},
		{"an empty limit", "GET", "/api/time-slots?limit=", "", "", 400, "BAD_USER_INPUT", "limit"},
		{"a limit over 200", "GET", "/api/time-slots?limit=201", "", "", 400, "BAD_USER_INPUT", "limit"},
		{"a limit that is not a number", "GET", "/api/time-slots?limit=abc", "", "", 400, "BAD_USER_INPUT", "limit"},
		{"an impossible date", "GET", "/api/time-slots?startDate=2025-13-45", "", "", 400, "BAD_USER_INPUT",
			"startDate must be a date like 2025-09-09"},
		{"a date in another spelling", "GET", "/api/time-slots?date=09/09/2025", "", "", 400, "BAD_USER_INPUT", "date"},
		{"endDate before startDate", "GET", "/api/time-slots?startDate=2025-09-15&endDate=2025-09-09", "", "", 400, "BAD_USER_INPUT", "endDate"},
		{"a garbage cursor", "GET", "/api/time-slots?cursor=garbage", "", "", 400, "BAD_USER_INPUT", "cursor"},
		{"a provider list's cursor", "GET", "/api/time-slots?cursor=" + providerCursor, "", "", 400, "BAD_USER_INPUT", "cursor"},
		{"an unknown status", "GET", "/api/time-slots?status=free", "", "", 400, "BAD_USER_INPUT", "status"},
		{"a providerId that is not an id", "GET", "/api/time-slots?providerId=x", "", "", 400, "BAD_USER_INPUT", "providerId"},
		{"a misspelt parameter", "GET", "/api/time-slots?providerID=1", "", "", 400, "BAD_USER_INPUT", "providerID"},
		{"a repeated parameter", "GET", "/api/time-slots?limit=1&limit=2", "", "", 400, "BAD_USER_INPUT", "limit"},
		{"a negative daysOld", "DELETE", "/api/admin/time-slots?daysOld=-5", "", "", 400, "BAD_USER_INPUT", "daysOld"},
		{"no daysOld", "DELETE", "/api/admin/time-slots", "", "", 400, "BAD_USER_INPUT", "daysOld"},
		{"daysAhead 0", "POST", "/api/admin/time-slots", "application/json", `{"daysAhead": 0}`, 400, "BAD_USER_INPUT", "daysAhead"},
		{"daysAhead 10000", "POST", "/api/admin/time-slots", "application/json", `{"daysAhead": 10000}`, 400, "BAD_USER_INPUT", "daysAhead"},
		{"no daysAhead", "POST", "/api/admin/time-slots", "application/json", `{}`, 400, "BAD_USER_INPUT", "daysAhead"},
		{"daysAhead as text", "POST", "/api/admin/time-slots", "application/json", `{"daysAhead": "30"}`, 400, "BAD_USER_INPUT", "daysAhead"},
		{"an empty providerIds", "POST", "/api/admin/time-slots", "application/json", `{"daysAhead": 1, "providerIds": []}`, 400, "BAD_USER_INPUT", "providerIds"},
		{"an unknown provider", "POST", "/api/admin/time-slots", "application/json", `{"daysAhead": 1, "providerIds": [999]}`, 400, "BAD_USER_INPUT", "providerIds"},
		{"an unknown field", "POST", "/api/admin/time-slots", "application/json", `{"daysAhead": 1, "days": 2}`, 400, "BAD_USER_INPUT", `"days"`},
		{"a repeated key, the last null", "POST", "/api/admin/time-slots", "application/json",
			`{"daysAhead":1,"providerIds":[1],"providerIds":null}`, 400, "BAD_USER_INPUT", `"providerIds" appears more than once`},
		{"a repeated key of equal values", "POST", "/api/admin/time-slots", "application/json",
			`{"daysAhead":1,"daysAhead":1}`, 400, "BAD_USER_INPUT", `"daysAhead" appears more than once`},
		{"a key in capitals", "POST", "/api/admin/time-slots", "application/json", `{"DAYSAHEAD":1}`, 400, "BAD_USER_INPUT", `"DAYSAHEAD"`},
		{"a key in another case beside the right one", "POST", "/api/admin/time-slots", "application/json",
			`{"daysAhead":1,"daysahead":2}`, 400, "BAD_USER_INPUT", `"daysahead"`},
		{"arrays nested nine deep", "POST", "/api/admin/time-slots", "application/json",
			`{"daysAhead":1,"providerIds":[[[[[[[[1]]]]]]]]}`, 400, "BAD_USER_INPUT", "deeper than 8 levels"},
		{"a top-level array", "POST", "/api/admin/time-slots", "application/json", `[{"daysAhead":1}]`, 400, "BAD_USER_INPUT", "JSON object"},
		{"a top-level null", "POST", "/api/admin/time-slots", "application/json", `null`, 400, "BAD_USER_INPUT", "JSON object"},
		{"a body that is not JSON", "POST", "/api/admin/time-slots", "application/json", `daysAhead=30`, 400, "BAD_USER_INPUT", "JSON"},
		{"trailing garbage", "POST", "/api/admin/time-slots", "application/json", `{"daysAhead": 1} {"daysAhead": 2}`, 400, "BAD_USER_INPUT", "one JSON object"},
		{"an empty body", "POST", "/api/admin/time-slots", "application/json", ``, 400, "BAD_USER_INPUT", "body"},
		{"a non-JSON content type", "POST", "/api/admin/time-slots", "text/plain", `{"daysAhead": 1}`, 415, "BAD_USER_INPUT", "Content-Type"},
		{"no content type", "POST", "/api/admin/time-slots", "", `{"daysAhead": 1}`, 415, "BAD_USER_INPUT", "Content-Type"},
		{"a body over the limit", "POST", "/api/admin/time-slots", "application/json",
			`{"daysAhead": 1` + strings.Repeat(" ", 5000) + `}`, 413, "BAD_USER_INPUT", "4096 bytes"},
		{"an unknown path", "GET", "/api/time-slot", "", "", 404, "NOT_FOUND", "/api/time-slot"},
		{"an unknown admin path", "POST", "/api/admin/slots", "application/json", `{}`, 404, "NOT_FOUND", "/api/admin/slots"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" || tc.contentType != "" {
				body = []byte(tc.body)
			}
			code, msg := errorOf(t, c.do(tc.method, tc.path, tc.contentType, body), tc.status)
			if code != tc.code || !strings.Contains(msg, tc.mentions) {
				t.Fatalf("got %s %q; want %s naming %q", code, msg, tc.code, tc.mentions)
			}
		})
	}

	t.Run("a wrong method answers 405 with Allow", func(t *testing.T) {
		for _, tc := range []struct{ method, path, allow string }{
			{"POST", "/api/time-slots", "GET"},
			{"DELETE", "/api/time-slots", "GET"},
			{"PUT", "/api/admin/time-slots", "GET, POST, DELETE"},
			{"PATCH", "/api/admin/time-slots", "GET, POST, DELETE"},
			{"POST", "/api/openapi.json", "GET"},
		} {
			resp := c.do(tc.method, tc.path, "", nil)
			code, msg := errorOf(t, resp, http.StatusMethodNotAllowed)
			if got := resp.Header.Get("Allow"); got != tc.allow || code != "BAD_USER_INPUT" || !strings.Contains(msg, tc.method) {
				t.Fatalf("%s %s: Allow %q, %s %q; want Allow %q", tc.method, tc.path, got, code, msg, tc.allow)
			}
		}
	})

	t.Run("a streamed body over the limit answers 413", func(t *testing.T) {
		// No Content-Length: the limit must hold while reading, too.
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write([]byte(`{"daysAhead": 1, "providerIds": [` + strings.Repeat("1,", 4000) + `1]}`))
			_ = pw.Close()
		}()
		header := http.Header{"Content-Type": {"application/json"}}
		a, err := getAnswer(c.http, http.MethodPost, c.base+"/api/admin/time-slots", header, pr)
		if err != nil {
			t.Fatal(err)
		}
		c.check(t, http.MethodPost, "/api/admin/time-slots", header, nil, a)
		errorOf(t, a, http.StatusRequestEntityTooLarge)
	})
}

// TestRESTAdminAccess shows the admin endpoints keep GraphQL's admin rule:
// with ADMIN_TOKEN set, no token is 401, a wrong one 403, the right one
// passes, and the public list needs none.
func TestRESTAdminAccess(t *testing.T) {
	const token = "test-admin-token-0123456789"
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			srv := startServer(t, testEnv(t, d, map[string]string{"ADMIN_TOKEN": token, "SEED_DEMO": "false", "LOG_LEVEL": "warn"}))
			c := newRESTClient(t, srv)
			admin := []struct{ method, path, ct, body string }{
				{"GET", "/api/admin/time-slots", "", ""},
				{"POST", "/api/admin/time-slots", "application/json", `{"daysAhead": 1}`},
				{"DELETE", "/api/admin/time-slots?daysOld=30", "", ""},
			}
			for _, cred := range []struct {
				token  string
				status int
				code   string
			}{
				{"", http.StatusUnauthorized, "UNAUTHENTICATED"},
				{"wrong-token-0123456789", http.StatusForbidden, "FORBIDDEN"},
			} {
				c.token = cred.token
				for _, a := range admin {
					var body []byte
					if a.body != "" {
						body = []byte(a.body)
					}
					code, _ := errorOf(t, c.do(a.method, a.path, a.ct, body), cred.status)
					if code != cred.code {
						t.Fatalf("%s %s with token %q: %s, want %s", a.method, a.path, cred.token, code, cred.code)
					}
				}
			}
			c.token = ""
			if _, l := decodeList(t, c.do(http.MethodGet, "/api/time-slots", "", nil)); l.Pagination.Limit != 20 {
				t.Fatalf("public list without a token: %+v", l.Pagination)
			}
			c.token = token
			for _, a := range admin {
				var body []byte
				if a.body != "" {
					body = []byte(a.body)
				}
				if resp := c.do(a.method, a.path, a.ct, body); resp.Status != http.StatusOK {
					t.Fatalf("%s %s with the token: %s", a.method, a.path, resp)
				}
			}
		})
	}
}

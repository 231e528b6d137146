package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// bookingKeys are the keys of a booking in the admin listing, in order.
var bookingKeys = []string{"id", "reference", "slotId", "providerId", "startTime", "endTime", "customer", "customerId", "status", "createdAt", "cancelledAt"}

// secretName is a customer's name that no log line may carry.
const secretName = "Zelda Secretname"

// TestRESTAdminBookings lists bookings through GET /api/admin/bookings with
// every filter and by pages, as the manager lists them, and checks that
// only admins get them, that they are not cached, and that neither a
// customer's name nor a reference reaches the logs.
func TestRESTAdminBookings(t *testing.T) {
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			const token = "the-rest-admin-token"
			srv := startServer(t, testEnv(t, d, map[string]string{"ADMIN_TOKEN": token, "LOG_LEVEL": "debug"}))
			c := newRESTClient(t, srv)
			m := slots.New(openDatabase(t, srv.DatabaseURL))

			// Bookings of two demo providers, one owned, one cancelled, one
			// made through GraphQL as a client would.
			_, list := decodeList(t, c.do(http.MethodGet, "/api/time-slots?limit=200&status=available", "", nil))
			var free []slotOut
			var last time.Time
			for _, raw := range list.Data {
				var s slotOut
				_ = json.Unmarshal(raw, &s)
				// Start times strictly increase, whatever the hour the test
				// runs at: the from/to case counts bookings by start time,
				// and demo providers share start times.
				st, _ := time.Parse(time.RFC3339, s.StartTime)
				if !st.After(time.Now().Add(24 * time.Hour)) {
					continue
				}
				if !st.After(last) {
					continue
				}
				free, last = append(free, s), st
			}
			if len(free) < 6 {
				t.Fatalf("%d free slots a day ahead", len(free))
			}
			var refs []string
			book := func(s slotOut, name, owner string) *models.Booking {
				b, _, err := m.Book(context.Background(), slots.BookInput{SlotID: s.ID, Customer: name, CustomerID: owner})
				if err != nil {
					t.Fatalf("book slot %d: %v", s.ID, err)
				}
				refs = append(refs, b.Reference)
				return b
			}
			book(free[0], "Ann", "")
			owned := book(free[1], "Bea", "sub-bea")
			gone := book(free[2], "Cy", "")
			if _, _, err := m.Cancel(context.Background(), slots.Actor{}, slots.BookingRef{Reference: &gone.Reference}); err != nil {
				t.Fatal(err)
			}
			book(free[3], "Ann", "")
			var viaGraphQL struct {
				BookSlot struct{ Booking struct{ Reference string } }
			}
			postGraphQL(t, srv.URL, `mutation($s: ID!, $c: String!) { bookSlot(input: {slotId: $s, customer: $c}) { booking { reference } } }`,
				map[string]any{"s": fmt.Sprint(free[4].ID), "c": secretName}, nil).Decode(t, &viaGraphQL)
			refs = append(refs, viaGraphQL.BookSlot.Booking.Reference)
			// A read whose query string carries the name and the reference.
			q := url.Values{"query": {fmt.Sprintf(`{ booking(reference: %q) { customer } }`, viaGraphQL.BookSlot.Booking.Reference)}}
			if a, err := getAnswer(nil, http.MethodGet, srv.URL+"/graphql?"+q.Encode(), nil, nil); err != nil || !strings.Contains(string(a.Body), secretName) {
				t.Fatalf("GET booking by reference: %v %s", err, a)
			}

			t.Run("only admins list bookings", func(t *testing.T) {
				c.token = ""
				if code, _ := errorOf(t, c.do(http.MethodGet, "/api/admin/bookings", "", nil), http.StatusUnauthorized); code != "UNAUTHENTICATED" {
					t.Fatalf("code %s", code)
				}
				c.token = "a-wrong-token-of-some-length"
				if code, _ := errorOf(t, c.do(http.MethodGet, "/api/admin/bookings?customer="+url.QueryEscape(secretName), "", nil), http.StatusForbidden); code != "FORBIDDEN" {
					t.Fatalf("code %s", code)
				}
				c.token = token
			})

			// listIDs pages through GET /api/admin/bookings with query and
			// limit, checking each page's spelling and caching.
			listIDs := func(t *testing.T, query url.Values, limit int) []int64 {
				t.Helper()
				var ids []int64
				for page := 0; ; page++ {
					query.Set("limit", fmt.Sprint(limit))
					a := c.do(http.MethodGet, "/api/admin/bookings?"+query.Encode(), "", nil)
					if a.Status != http.StatusOK || a.Header.Get("Cache-Control") != "no-store" {
						t.Fatalf("want 200 with Cache-Control: no-store, got %s %v", a, a.Header)
					}
					var out struct {
						Data       []json.RawMessage `json:"data"`
						Pagination struct {
							HasMore    bool    `json:"hasMore"`
							NextCursor *string `json:"nextCursor"`
						} `json:"pagination"`
					}
					if err := json.Unmarshal(a.Body, &out); err != nil || out.Data == nil {
						t.Fatalf("%v: %s", err, a.Body)
					}
					for _, raw := range out.Data {
						if got := keysOf(t, raw); !slices.Equal(got, bookingKeys) {
							t.Fatalf("booking keys %v, want %v", got, bookingKeys)
						}
						var b struct{ ID int64 }
						_ = json.Unmarshal(raw, &b)
						ids = append(ids, b.ID)
					}
					if !out.Pagination.HasMore {
						return ids
					}
					query.Set("cursor", *out.Pagination.NextCursor)
					if page > 20 {
						t.Fatal("paging does not end")
					}
				}
			}
			managerIDs := func(t *testing.T, f slots.BookingFilter) []int64 {
				t.Helper()
				p, err := m.ListBookings(context.Background(), f, slots.PageRequest{First: ptrTo(100)})
				if err != nil {
					t.Fatal(err)
				}
				ids := []int64{}
				for _, b := range p.Bookings {
					ids = append(ids, b.ID)
				}
				return ids
			}
			from := free[1].StartTime
			fromT, _ := time.Parse(time.RFC3339, from)
			toT, _ := time.Parse(time.RFC3339, free[3].StartTime)
			confirmed, cancelled := models.BookingConfirmed, models.BookingCancelled
			for _, tc := range []struct {
				name  string
				query url.Values
				f     slots.BookingFilter
				n     int
			}{
				{"every booking, two at a time", url.Values{}, slots.BookingFilter{}, 5},
				{"every booking, in one page", url.Values{"status": {"all"}}, slots.BookingFilter{}, 5},
				{"by provider", url.Values{"providerId": {fmt.Sprint(free[0].ProviderID)}}, slots.BookingFilter{ProviderID: &free[0].ProviderID}, -1},
				{"by slot", url.Values{"slotId": {fmt.Sprint(free[3].ID)}}, slots.BookingFilter{SlotID: &free[3].ID}, 1},
				{"confirmed", url.Values{"status": {"confirmed"}}, slots.BookingFilter{Status: &confirmed}, 4},
				{"cancelled", url.Values{"status": {"cancelled"}}, slots.BookingFilter{Status: &cancelled}, 1},
				{"from and to", url.Values{"from": {from}, "to": {free[3].StartTime}}, slots.BookingFilter{From: &fromT, To: &toT}, 2},
				{"by name", url.Values{"customer": {"Ann"}}, slots.BookingFilter{Customer: ptrTo("Ann")}, 2},
				{"by owner", url.Values{"customerId": {"sub-bea"}}, slots.BookingFilter{CustomerID: ptrTo("sub-bea")}, 1},
			} {
				t.Run(tc.name, func(t *testing.T) {
					limit := 2
					if tc.query.Has("status") && tc.query.Get("status") == "all" {
						limit = 200
					}
					got, want := listIDs(t, tc.query, limit), managerIDs(t, tc.f)
					if fmt.Sprint(got) != fmt.Sprint(want) || (tc.n >= 0 && len(got) != tc.n) {
						t.Fatalf("REST listed %v, the manager %v (want %d)", got, want, tc.n)
					}
				})
			}
			t.Run("the owner's booking carries its owner and reference", func(t *testing.T) {
				a := c.do(http.MethodGet, "/api/admin/bookings?customerId=sub-bea", "", nil)
				var out struct {
					Data []struct {
						ID         int64
						Reference  string
						CustomerID *string
					}
				}
				_ = json.Unmarshal(a.Body, &out)
				if len(out.Data) != 1 || out.Data[0].ID != owned.ID || out.Data[0].Reference != owned.Reference || *out.Data[0].CustomerID != "sub-bea" {
					t.Fatalf("%s", a.Body)
				}
			})
			slotCursor := slots.EncodeSlotCursor(slots.SlotKey{Start: fromT, ID: 1})
			for _, tc := range []struct{ query, param string }{
				{"status=lost", "status"},
				{"from=2025-09-09", "from"},
				{"to=tomorrow", "to"},
				{"from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(from), "to"},
				{"providerId=0", "providerId"},
				{"slotId=x", "slotId"},
				{"limit=201", "limit"},
				{"limit=0", "limit must be between 1 and 200"},
				{"cursor=" + slotCursor, "cursor"},
				{"customer=%20", "customer"},
				{"customerId=", "customerId"},
				{"customer=ann%00smith", "customer"},
				{"customer=ann%FF", "customer"},
				{"customerId=sub%00", "customerId"},
				{"providerID=1", "providerID"},
				{"status=all&status=all", "status"},
			} {
				t.Run("bad input "+tc.query, func(t *testing.T) {
					code, msg := errorOf(t, c.do(http.MethodGet, "/api/admin/bookings?"+tc.query, "", nil), http.StatusBadRequest)
					if code != "BAD_USER_INPUT" || !strings.Contains(msg, tc.param) {
						t.Fatalf("%s: %s", code, msg)
					}
				})
			}
			t.Run("no log line carries a customer's name or a reference", func(t *testing.T) {
				c.do(http.MethodGet, "/api/admin/bookings?customer="+url.QueryEscape(secretName), "", nil)
				logs := srv.Logs()
				if !strings.Contains(logs, `"path":"/api/admin/bookings"`) {
					t.Fatalf("the listing's request was not logged:\n%s", logs)
				}
				for _, secret := range append([]string{secretName, "Zelda"}, refs...) {
					if strings.Contains(logs, secret) || strings.Contains(logs, url.QueryEscape(secret)) {
						t.Fatalf("the logs carry %q:\n%s", secret, logs)
					}
				}
			})
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

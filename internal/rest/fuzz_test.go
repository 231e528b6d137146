package rest

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"timeslots/internal/apperr"
)

// Whatever a client puts in the query string, parsing answers either a
// request or a BAD_USER_INPUT error whose message names its parameter.
func FuzzParseListQuery(f *testing.F) {
	for _, seed := range []string{
		"", "limit=10", "providerId=36&limit=5", "startDate=2025-09-09&endDate=2025-09-15",
		"limit=-1", "limit=abc", "startDate=2025-13-45", "cursor=garbage", "status=all", "status=booked",
		"date=2025-02-29", "limit=1&limit=2", "x=1", "%zz", "limit=99999999999999999999", "providerId=0",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseListQuery(raw)
		if err != nil {
			e, ok := apperr.As(err)
			if !ok || e.Code != apperr.BadUserInput || e.Field == "" || !names(e.Message, e.Field) {
				t.Fatalf("%q: %v does not name its parameter", raw, err)
			}
			return
		}
		if q.page.First == nil || *q.page.First != q.limit || q.page.FirstName != "limit" || q.page.AfterName != "cursor" {
			t.Fatalf("%q: page request %+v does not carry limit %d", raw, q.page, q.limit)
		}
	})
}

// FuzzParseBookingQuery is FuzzParseListQuery for GET /api/admin/bookings.
func FuzzParseBookingQuery(f *testing.F) {
	for _, seed := range []string{
		"", "limit=10", "providerId=36&slotId=5", "from=2025-09-09T07:00:00Z&to=2025-09-10T07:00:00%2B02:00",
		"from=2025-09-09", "status=cancelled", "status=all", "status=lost", "customer=Ann", "customerId=sub-1",
		"slotId=-3", "customer=a&customer=b", "cursor=garbage", "%zz", "limit=x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseBookingQuery(raw)
		if err != nil {
			e, ok := apperr.As(err)
			if !ok || e.Code != apperr.BadUserInput || e.Field == "" || !names(e.Message, e.Field) {
				t.Fatalf("%q: %v does not name its parameter", raw, err)
			}
			return
		}
		if q.page.First == nil || *q.page.First != q.limit || q.page.FirstName != "limit" || q.page.AfterName != "cursor" {
			t.Fatalf("%q: page request %+v does not carry limit %d", raw, q.page, q.limit)
		}
		if st := q.filter.Status; st != nil && *st != "confirmed" && *st != "cancelled" {
			t.Fatalf("%q: status %q", raw, *st)
		}
	})
}

// Whatever body a client sends, decoding answers either a generate request
// or a 400 refusal whose message names the field at fault.
func FuzzDecodeGenerateBody(f *testing.F) {
	for _, seed := range []string{
		`{"daysAhead": 30}`, `{"daysAhead": 30, "providerIds": [1, 2]}`, `{"daysAhead": 0}`, `{}`, `[]`, `null`,
		`{"daysAhead": "30"}`, `{"daysAhead": 1.5}`, `{"daysAhead": 1} x`, `{"bogus": 1}`, `{"providerIds": ["a"]}`,
		``, `{`, `{"daysAhead": 1e400}`, strings.Repeat(" ", 300) + `{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, _ := http.NewRequest(http.MethodPost, "/api/admin/time-slots", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var dst generateBody
		berr := decodeJSON(r, &dst, generateTypes)
		if berr == nil {
			return
		}
		if berr.status != http.StatusBadRequest {
			t.Fatalf("%q: status %d", body, berr.status)
		}
		if berr.err.Code != apperr.BadUserInput || berr.err.Field == "" || !names(berr.err.Message, berr.err.Field) {
			t.Fatalf("%q: %v does not name its field", body, berr.err)
		}
	})
}

// names reports whether message names field, as is or quoted.
func names(message, field string) bool {
	return strings.Contains(message, field) || strings.Contains(message, strconv.Quote(field))
}

package rest

import (
	"bytes"
	"encoding/json"
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

// Whatever body a client sends to the REST decoder, it answers either a
// request or a 400 refusal whose message names the key or part at fault.
// An accepted body is exactly one JSON object whose keys are the
// endpoint's fields, spelled exactly, each once, nested at most
// MaxBodyDepth deep, and the request holds what the body says.
func FuzzRESTBody(f *testing.F) {
	for _, seed := range []string{
		`{"daysAhead": 30}`, `{"daysAhead": 30, "providerIds": [1, 2]}`, `{"daysAhead": 0}`, `{}`, `[]`, `null`,
		`{"daysAhead": "30"}`, `{"daysAhead": 1.5}`, `{"daysAhead": 1} x`, `{"bogus": 1}`, `{"providerIds": ["a"]}`,
		``, `{`, `{"daysAhead": 1e400}`, strings.Repeat(" ", 300) + `{}`,
		`{"daysAhead":1,"providerIds":[1],"providerIds":null}`, `{"DAYSAHEAD":1}`, `{"daysahead":1,"daysAhead":2}`,
		`{"daysAhead":1,"daysAhead":1}`, `{"providerIds":[[[[[[[[[1]]]]]]]]]}`, `{"providerIds":[{"a":1,"a":2}]}`,
		`{"daysAhead":99999999999999999999999}`, `{"daysAhead":-1}`, `{"daysAhead":true}`, `{"daysAhead":{}}`,
		`{"providerIds":{"0":1}}`, "{\"daysAhead\":1,\"\xff\":2}", `{"daysAhead\u0000":1}`, `{"":1}`,
		`{"daysAhead":1}{"daysAhead":2}`, `{"daysAhead":1,}`, "\xef\xbb\xbf{\"daysAhead\":1}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, _ := http.NewRequest(http.MethodPost, "/api/admin/time-slots", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var dst generateBody
		berr := decodeJSON(r, &dst, generateTypes)
		if berr != nil {
			if berr.status != http.StatusBadRequest {
				t.Fatalf("%q: status %d", body, berr.status)
			}
			if berr.err.Code != apperr.BadUserInput || berr.err.Field == "" || !names(berr.err.Message, berr.err.Field) {
				t.Fatalf("%q: %v does not name its field", body, berr.err)
			}
			return
		}
		var whole any
		if err := json.Unmarshal(body, &whole); err != nil {
			t.Fatalf("%q: accepted, yet not one JSON value: %v", body, err)
		}
		if d := depth(whole); d > MaxBodyDepth {
			t.Fatalf("%q: accepted at depth %d", body, d)
		}
		values := map[string]json.RawMessage{}
		for _, key := range topLevelKeys(t, body) {
			if _, ok := generateTypes[key]; !ok {
				t.Fatalf("%q: accepted the key %q", body, key)
			}
			if _, dup := values[key]; dup {
				t.Fatalf("%q: accepted the key %q twice", body, key)
			}
			values[key] = nil
		}
		if err := json.Unmarshal(body, &values); err != nil {
			t.Fatal(err)
		}
		var days *int
		if raw, ok := values["daysAhead"]; ok && string(raw) != "null" {
			days = new(int)
			if err := json.Unmarshal(raw, days); err != nil {
				t.Fatal(err)
			}
		}
		if (days == nil) != (dst.DaysAhead == nil) || (days != nil && *days != *dst.DaysAhead) {
			t.Fatalf("%q: decoded daysAhead %v, the body says %v", body, dst.DaysAhead, days)
		}
	})
}

// topLevelKeys answers the keys of the JSON object body in the order
// written, repeats included.
func topLevelKeys(t *testing.T, body []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%q: accepted, yet not an object", body)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// depth answers how deeply v's arrays and objects nest (a scalar: 0).
func depth(v any) int {
	d := 0
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			d = max(d, depth(e))
		}
	case map[string]any:
		for _, e := range v {
			d = max(d, depth(e))
		}
	default:
		return 0
	}
	return d + 1
}

// names reports whether message names field, as is or quoted.
func names(message, field string) bool {
	return strings.Contains(message, field) || strings.Contains(message, strconv.Quote(field))
}

package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"timeslots/internal/dbtest"
)

// hostileRequest is one request an attacker sends to the REST API, and
// the status it must be refused with.
type hostileRequest struct {
	name        string
	method      string
	path        string
	contentType string // "" for none
	body        string
	header      http.Header
	status      int
}

// hostileRequests covers each class of hostile input: NUL bytes, invalid
// UTF-8 and control characters in text, huge numbers, wrong types, arrays
// where objects belong, deep nesting, repeated and case-variant keys,
// overlong strings and keys, and requests no route takes.
func hostileRequests() []hostileRequest {
	const (
		list     = "/api/time-slots"
		bookings = "/api/admin/bookings"
		generate = "/api/admin/time-slots"
		jsonType = "application/json"
	)
	get := func(name, path string, status int) hostileRequest {
		return hostileRequest{name: name, method: http.MethodGet, path: path, status: status}
	}
	post := func(name, body string) hostileRequest {
		return hostileRequest{name: name, method: http.MethodPost, path: generate, contentType: jsonType, body: body, status: http.StatusBadRequest}
	}
	long := strings.Repeat("n", 10_000)
	return []hostileRequest{
		// Text the database cannot store, or should not.
		get("a NUL byte in customer", bookings+"?customer=ann%00smith", 400),
		get("a lone NUL in customer", bookings+"?customer=%00", 400),
		get("invalid UTF-8 in customer", bookings+"?customer=ann%FF", 400),
		get("an overlong UTF-8 encoding in customer", bookings+"?customer=%C0%AF", 400),
		get("an escape sequence in customer", bookings+"?customer=ann%1B%5B31m", 400),
		get("a NUL byte in customerId", bookings+"?customerId=sub%00", 400),
		get("invalid UTF-8 in customerId", bookings+"?customerId=%FE%FF", 400),
		get("a 10 KB customer", bookings+"?customer="+long, 400),
		get("a 10 KB customerId", bookings+"?customerId="+long, 400),
		get("a NUL byte in status", list+"?status=available%00", 400),
		get("a NUL byte in a date", list+"?date=2025-09-0%00", 400),
		get("a NUL byte in a cursor", list+"?cursor=%00", 400),
		get("a 10 KB cursor", list+"?cursor="+long, 400),
		get("invalid UTF-8 in a parameter name", list+"?%FF=1", 400),
		get("a malformed query string", list+"?limit=%zz", 400),
		// Numbers.
		get("limit 0", list+"?limit=0", 400),
		get("a negative limit", list+"?limit=-1", 400),
		get("a limit past int64", list+"?limit=99999999999999999999", 400),
		get("a limit in exponent form", list+"?limit=1e2", 400),
		get("a limit with a sign and spaces", list+"?limit=+%2010", 400),
		get("a providerId past int64", list+"?providerId=9223372036854775808", 400),
		get("a negative slotId", bookings+"?slotId=-1", 400),
		get("a repeated parameter", list+"?limit=1&limit=2", 400),
		{name: "a daysOld past int64", method: http.MethodDelete, path: generate + "?daysOld=99999999999999999999", status: 400},
		{name: "a huge negative daysOld", method: http.MethodDelete, path: generate + "?daysOld=-9999999999", status: 400},
		post("daysAhead past float64", `{"daysAhead": 1e400}`),
		post("daysAhead past int64", `{"daysAhead": 99999999999999999999}`),
		post("daysAhead past the horizon", `{"daysAhead": 2147483648}`),
		post("a negative daysAhead", `{"daysAhead": -1}`),
		post("a provider id past int64", `{"daysAhead": 1, "providerIds": [9223372036854775808]}`),
		post("a fractional provider id", `{"daysAhead": 1, "providerIds": [1.5]}`),
		post("10,001 provider ids", `{"daysAhead": 1, "providerIds": [`+strings.Repeat("1,", 10_000)+`1]}`),
		// Wrong types, arrays where objects belong.
		post("daysAhead as text", `{"daysAhead": "1"}`),
		post("daysAhead as a boolean", `{"daysAhead": true}`),
		post("daysAhead as null", `{"daysAhead": null}`),
		post("daysAhead as an array", `{"daysAhead": [1]}`),
		post("daysAhead as an object", `{"daysAhead": {"value": 1}}`),
		post("providerIds as text", `{"daysAhead": 1, "providerIds": "1,2"}`),
		post("providerIds as an object", `{"daysAhead": 1, "providerIds": {"0": 1}}`),
		post("a null provider id", `{"daysAhead": 1, "providerIds": [null]}`),
		post("an array body", `[{"daysAhead": 1}]`),
		post("a string body", `"daysAhead"`),
		post("a number body", `1`),
		post("a null body", `null`),
		post("an empty body", ``),
		// Nesting, repeated and case-variant keys.
		post("arrays nested 9 deep", `{"daysAhead": 1, "providerIds": [[[[[[[[1]]]]]]]]}`),
		post("arrays nested 100,000 deep", `{"providerIds": `+strings.Repeat("[", 100_000)+strings.Repeat("]", 100_000)+`}`),
		post("objects nested 10,000 deep", strings.Repeat(`{"a":`, 10_000)+`1`+strings.Repeat("}", 10_000)),
		post("a repeated key, the last null", `{"daysAhead": 1, "providerIds": [1], "providerIds": null}`),
		post("a repeated daysAhead", `{"daysAhead": 1, "daysAhead": 365}`),
		post("a key in capitals", `{"DAYSAHEAD": 1}`),
		post("a key in another case beside the right one", `{"daysAhead": 1, "daysahead": 365}`),
		post("an unknown key", `{"daysAhead": 1, "admin": true}`),
		post("a key with a NUL", `{"daysAhead\u0000": 1}`),
		post("a key of invalid UTF-8", "{\"daysAhead\": 1, \"\xff\": 1}"),
		post("a value of invalid UTF-8", "{\"daysAhead\": \"\xff\"}"),
		post("a raw NUL byte", "{\"daysAhead\": 1\x00}"),
		post("an empty key", `{"": 1}`),
		post("a 500 KB key", `{"`+strings.Repeat("k", 500_000)+`": 1}`),
		post("a 500 KB string value", `{"daysAhead": "`+strings.Repeat("v", 500_000)+`"}`),
		post("a trailing second object", `{"daysAhead": 1}{"daysAhead": 2}`),
		post("a trailing comma", `{"daysAhead": 1,}`),
		post("a byte order mark", "\xef\xbb\xbf{\"daysAhead\": 1}"),
		post("UTF-16", "\xff\xfe{\x00}\x00"),
		{name: "no Content-Type", method: http.MethodPost, path: generate, body: `{"daysAhead": 1}`, status: 415},
		{name: "a form Content-Type", method: http.MethodPost, path: generate, contentType: "application/x-www-form-urlencoded",
			body: "daysAhead=1", status: 415},
		{name: "a malformed Content-Type", method: http.MethodPost, path: generate, contentType: "application/json;;;", body: `{}`, status: 415},
		// Sizes and routes.
		{name: "a body over the limit", method: http.MethodPost, path: generate, contentType: jsonType,
			body: `{"daysAhead": 1, "x": "` + strings.Repeat("x", 1<<20) + `"}`, status: 413},
		get("a 120 KB URL", list+"?cursor="+strings.Repeat("c", 120_000), 431),
		{name: "100 KiB of headers", method: http.MethodGet, path: list, header: http.Header{"X-Pad": {strings.Repeat("p", 100<<10)}}, status: 431},
		get("an unknown path", "/wp-login.php", 404),
		get("an unknown path with a NUL", "/%00", 404),
		get("an unknown API path", "/api/time-slots/1", 404),
		get("a path climbing out", "/api/../../etc/passwd", 404),
		{name: "a wrong method", method: http.MethodPut, path: list, status: 405},
		{name: "TRACE", method: http.MethodTrace, path: "/healthz", status: 405},
		{name: "a made-up method", method: "BREW", path: generate, status: 405},
	}
}

// Hostile input to the REST API of a production server is refused with a
// coded 4xx naming what is at fault, on both databases: never a 500, never
// SQL, driver or stack text, never the input echoed whole, and nothing
// logged at error level. Every answer is held to the OpenAPI document.
func TestHostileInputIsRefusedWithACode(t *testing.T) {
	const token = "hostile-admin-token-0123456789"
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testEnv(t, d, map[string]string{
				"APP_ENV": "production", "HOST": "127.0.0.1", "ADMIN_TOKEN": token, "SEED_DEMO": "true", "LOG_LEVEL": "warn",
			}))
			c := newRESTClient(t, srv)
			for _, tc := range hostileRequests() {
				t.Run(tc.name, func(t *testing.T) {
					header := http.Header{"Authorization": {"Bearer " + token}}
					for k, v := range tc.header {
						header[k] = v
					}
					if tc.contentType != "" {
						header.Set("Content-Type", tc.contentType)
					}
					var body []byte
					if tc.body != "" || tc.contentType != "" {
						body = []byte(tc.body)
					}
					a, err := getAnswer(c.http, tc.method, srv.URL+tc.path, header, bytes.NewReader(body))
					if err != nil {
						t.Fatal(err)
					}
					if a.Status != tc.status {
						t.Fatalf("%.300s, want %d", a, tc.status)
					}
					var e struct {
						Error struct{ Code, Message string } `json:"error"`
					}
					if err := json.Unmarshal(a.Body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" ||
						e.Error.Code == "INTERNAL_SERVER_ERROR" {
						t.Fatalf("not a coded refusal: %.300s", a)
					}
					if len(a.Body) > 2000 {
						t.Errorf("a refusal of %d bytes echoes the input: %.300s", len(a.Body), a.Body)
					}
					c.check(t, tc.method, tc.path, header, body, a)
				})
			}
			for _, line := range strings.Split(srv.Logs(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) {
					t.Errorf("logged at error level: %.500s", line)
				}
			}
		})
	}
}

// The GraphQL inputs that reach the database refuse NUL bytes, invalid
// UTF-8 and control characters with BAD_USER_INPUT naming the argument, on
// a production server of either database, and nothing is logged at error
// level.
func TestHostileGraphQLTextIsBadUserInput(t *testing.T) {
	const token = "hostile-admin-token-0123456789"
	admin := http.Header{"Authorization": {"Bearer " + token}}
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testEnv(t, d, map[string]string{
				"APP_ENV": "production", "HOST": "127.0.0.1", "ADMIN_TOKEN": token, "SEED_DEMO": "true", "LOG_LEVEL": "warn",
			}))
			var page struct {
				TimeSlots struct{ Nodes []struct{ ID string } }
			}
			postGraphQL(t, srv.URL, `{ timeSlots(first: 1) { nodes { id } } }`, nil, nil).Decode(t, &page)
			if len(page.TimeSlots.Nodes) == 0 {
				t.Fatal("no slot to book")
			}
			slot := page.TimeSlots.Nodes[0].ID
			book := `mutation($in: BookSlotInput!) { bookSlot(input: $in) { booking { id } } }`
			provider := `mutation($in: ProviderInput!) { createProvider(input: $in) { id } }`
			// (JSON carries no invalid UTF-8: Go's decoder reads such bytes as
			// U+FFFD. A query in the URL of a GET does, below.)
			for _, bad := range []string{"ann\x00smith", "ann\x1b[2J", "ann\u0085smith"} {
				for _, tc := range []struct {
					argument, query string
					vars            map[string]any
					header          http.Header
				}{
					{"customer", book, map[string]any{"in": map[string]any{"slotId": slot, "customer": bad}}, nil},
					{"idempotencyKey", book, map[string]any{"in": map[string]any{"slotId": slot, "customer": "ann", "idempotencyKey": bad}}, nil},
					{"reference", `query($r: String) { booking(reference: $r) { id } }`, map[string]any{"r": "bk_" + bad}, nil},
					{"name", provider, map[string]any{"in": map[string]any{"name": bad, "timeZone": "UTC", "slotMinutes": 30, "workingHours": []any{}}}, admin},
					{"customer", `mutation($c: String) { deleteCustomerData(customer: $c) { erased } }`, map[string]any{"c": bad}, admin},
				} {
					res := postGraphQL(t, srv.URL, tc.query, tc.vars, tc.header)
					if res.Code() != "BAD_USER_INPUT" || res.Errors[0].Extensions["argument"] != tc.argument {
						t.Errorf("%s = %q: %.300s, want BAD_USER_INPUT naming %s", tc.argument, bad, res.Body, tc.argument)
					}
				}
			}
			for _, literal := range []string{`bk_%FF`, `bk_%C3`, `bk_\u0000`} {
				a, err := getAnswer(nil, http.MethodGet, srv.URL+`/graphql?query={booking(reference:"`+literal+`"){id}}`, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				res, err := parseGraphQL(a)
				if err != nil || res.Code() != "BAD_USER_INPUT" || res.Errors[0].Extensions["argument"] != "reference" {
					t.Errorf("GET with reference %s: %.300s %v, want BAD_USER_INPUT naming reference", literal, a, err)
				}
			}
			for _, line := range strings.Split(srv.Logs(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) {
					t.Errorf("logged at error level: %.500s", line)
				}
			}
		})
	}
}

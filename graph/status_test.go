package graph_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// aliased answers a selection set of n copies of field, each under its
// own alias.
func aliased(n int, field string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " a%d: %s", i, field)
	}
	return b.String()
}

// TestRefusalsBeforeExecutionShareOneStatus: every operation refused before
// it runs — it does not parse, fails validation, names no operation, has
// variables that do not fit, or is over a limit — is 422 for a client
// reading application/json and 400 for one reading
// application/graphql-response+json, by POST and by GET, with a coded
// error and no data. Errors of an operation that ran stay 200.
func TestRefusalsBeforeExecutionShareOneStatus(t *testing.T) {
	a := newAPI(t, dbtest.Open(t, database.SQLite), nil)
	ids := allDayProviders(t, a.slots, 1)
	type op struct {
		query, operationName string
		variables            map[string]any
		extensions           map[string]any
	}
	refused := []struct {
		name string
		op   op
		code string
	}{
		{"a syntax error", op{query: `{ providers(`}, "BAD_USER_INPUT"},
		{"an empty document", op{query: ``}, "BAD_USER_INPUT"},
		{"a persisted-query hash without its query", op{extensions: map[string]any{
			"persistedQuery": map[string]any{"version": 1, "sha256Hash": strings.Repeat("ab", 32)}}}, "BAD_USER_INPUT"},
		{"an unknown field", op{query: `{ colour }`}, "BAD_USER_INPUT"},
		{"an argument literal of the wrong type", op{query: `{ timeSlots(first: "ten") { totalCount } }`}, "BAD_USER_INPUT"},
		{"an operation name the document lacks", op{query: `query A { __typename } query B { __typename }`, operationName: "C"}, "BAD_USER_INPUT"},
		{"several operations and no name", op{query: `query A { __typename } query B { __typename }`}, "BAD_USER_INPUT"},
		{"a missing variable", op{query: `query($c: String!) { timeSlots(after: $c) { totalCount } }`}, "BAD_USER_INPUT"},
		{"a variable of the wrong type", op{query: `query($n: Int) { timeSlots(first: $n) { totalCount } }`, variables: map[string]any{"n": 1.5}}, "BAD_USER_INPUT"},
		{"too many parser tokens", op{query: "{" + aliased(4000, "__typename") + " }"}, "BAD_USER_INPUT"},
		{"over the complexity limit", op{query: "{" + aliased(200, "timeSlots(first: 100) { nodes { id } }") + " }"}, "QUERY_TOO_COMPLEX"},
		{"too deep", op{query: `{ timeSlots(first: 1) { edges { node { provider { timeSlots(first: 1) { edges { node {
			provider { timeSlots(first: 1) { edges { node { id } } } } } } } } } } } }`}, "QUERY_TOO_COMPLEX"},
		{"too many mutation fields", op{query: "mutation {" + aliased(11, `cancelBooking(input: {bookingId: "1"}) { booking { id } }`) + " }"}, "QUERY_TOO_COMPLEX"},
	}
	executed := []struct {
		name string
		op   op
		code string
	}{
		{"a query that runs", op{query: `{ providers(first: 1) { totalCount } }`}, ""},
		{"a resolver's refusal", op{query: `{ timeSlots(after: "nope") { totalCount } }`}, "BAD_USER_INPUT"},
		{"a field that finds nothing", op{query: fmt.Sprintf(`{ provider(id: "%d") { id } }`, ids[0]+1000)}, ""},
		{"a mutation that fails", op{query: `mutation { cancelBooking(input: {reference: "bk_nothing"}) { booking { id } } }`}, "NOT_FOUND"},
	}
	accepts := []struct {
		accept      string
		refusal     int
		contentType string
	}{
		{"", http.StatusUnprocessableEntity, "application/json"},
		{"application/json", http.StatusUnprocessableEntity, "application/json"},
		{"application/graphql-response+json", http.StatusBadRequest, "application/graphql-response+json"},
		{"application/graphql-response+json, application/json;q=0.9", http.StatusBadRequest, "application/graphql-response+json"},
	}
	send := func(t *testing.T, method string, o op, accept string) result {
		t.Helper()
		req := request{method: method, header: map[string]string{}}
		if accept != "" {
			req.header["Accept"] = accept
		}
		if method == http.MethodPost {
			body := map[string]any{"query": o.query}
			if o.operationName != "" {
				body["operationName"] = o.operationName
			}
			if o.variables != nil {
				body["variables"] = o.variables
			}
			if o.extensions != nil {
				body["extensions"] = o.extensions
				if o.query == "" {
					delete(body, "query")
				}
			}
			b, _ := json.Marshal(body)
			req.body = string(b)
			return a.do(t, req)
		}
		q := url.Values{"query": {o.query}}
		if o.operationName != "" {
			q.Set("operationName", o.operationName)
		}
		for k, v := range map[string]map[string]any{"variables": o.variables, "extensions": o.extensions} {
			if v != nil {
				b, _ := json.Marshal(v)
				q.Set(k, string(b))
			}
		}
		req.query = "?" + q.Encode()
		return a.do(t, req)
	}
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		for _, acc := range accepts {
			for _, c := range refused {
				if method == http.MethodGet && strings.HasPrefix(c.op.query, "mutation") {
					continue // GET refuses mutations with 405 before they are read
				}
				t.Run(fmt.Sprintf("%s %s with Accept %q", method, c.name, acc.accept), func(t *testing.T) {
					res := send(t, method, c.op, acc.accept)
					if res.Status != acc.refusal || res.Code() != c.code || len(res.Data) > 0 && string(res.Data) != "null" {
						t.Errorf("HTTP %d %.300s; want %d with %s and no data", res.Status, res.Body, acc.refusal, c.code)
					}
					if ct := res.Header.Get("Content-Type"); ct != acc.contentType {
						t.Errorf("Content-Type %q, want %q", ct, acc.contentType)
					}
				})
			}
			for _, c := range executed {
				if method == http.MethodGet && strings.HasPrefix(c.op.query, "mutation") {
					continue
				}
				t.Run(fmt.Sprintf("%s %s with Accept %q", method, c.name, acc.accept), func(t *testing.T) {
					res := send(t, method, c.op, acc.accept)
					if res.Status != http.StatusOK || res.Code() != c.code || len(res.Data) == 0 {
						t.Errorf("HTTP %d %.300s; want 200 with data and code %q", res.Status, res.Body, c.code)
					}
				})
			}
		}
	}
}

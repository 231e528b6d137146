package graph_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"timeslots/graph"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// The POST transport writes responses itself; clients must get the very
// bytes encoding/json gave them before, HTML escaping included.
func TestResponsesAreWrittenAsEncodingJSONWritesThem(t *testing.T) {
	t.Parallel()
	yes := true
	for _, tc := range []struct {
		name string
		resp graphql.Response
	}{
		{"data alone goes out as encoded", graphql.Response{Data: json.RawMessage(`{"timeSlots":{"edges":[{"cursor":"czE6MTo","node":{"id":"1"}}]}}`)}},
		{"HTML characters in data are escaped", graphql.Response{Data: json.RawMessage(`{"provider":{"name":"<b>Ann & Bob</b>"}}`)}},
		{"line and paragraph separators in data are escaped", graphql.Response{Data: json.RawMessage("{\"provider\":{\"name\":\"a\u2028b\u2029c – d\"}}")}},
		{"null data", graphql.Response{Data: json.RawMessage(`null`)}},
		{"no data", graphql.Response{Errors: gqlerror.List{{Message: "bad <input>"}}}},
		{"data with errors", graphql.Response{Data: json.RawMessage(`{"a":null}`), Errors: gqlerror.List{{Message: "x", Extensions: map[string]any{"code": "NOT_FOUND"}}}}},
		{"data with extensions", graphql.Response{Data: json.RawMessage(`{"a":1}`), Extensions: map[string]any{"cost": 3}}},
		{"an incremental part", graphql.Response{Data: json.RawMessage(`{"a":1}`), Label: "l", HasNext: &yes}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(&tc.resp)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			graph.WriteJSON(&got, &tc.resp)
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("wrote\n  %s\nwant\n  %s", got.Bytes(), want)
			}
		})
	}
}

// transportServer is gqlgen's server over the schema with one transport.
func transportServer(m *slots.Manager, tr graphql.Transport) http.Handler {
	srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Slots: m}}))
	srv.AddTransport(tr)
	return srv
}

// transportCases are operations that succeed, fail in the executor, or are
// refused while the request is read, parsed or validated.
var transportCases = []struct{ name, query, operationName string }{
	{"a query", `{ __typename providers(first: 3) { nodes { id name } } }`, ""},
	{"data that json.Marshal escapes", `{ providers(first: 3) { nodes { name } } }`, ""},
	{"a page of slots", `{ timeSlots(first: 3) { edges { cursor node { id startTime status } } pageInfo { hasNextPage endCursor } } }`, ""},
	{"a syntax error", `{ providers(`, ""},
	{"an unknown field", `{ colour }`, ""},
	{"a missing variable", `query($c: String!) { timeSlots(after: $c) { nodes { id } } }`, ""},
	{"an operation name the document lacks", `query A { __typename } query B { __typename }`, "C"},
	{"an error of the resolver", `{ timeSlots(after: "nope") { nodes { id } } }`, ""},
}

// TestPOSTAnswersAsGQLGensTransport: the POST transport of the handler
// answers every request — operations that succeed or fail, bodies that are
// not a request, each Accept header — with the status, headers and bytes
// of gqlgen's own transport.POST. It only writes them more cheaply.
func TestPOSTAnswersAsGQLGensTransport(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		m := slots.New(db)
		if _, err := m.CreateProvider(t.Context(), models.ProviderInput{Name: "<b>Ann & Bob</b>", TimeZone: "UTC", SlotMinutes: 30}); err != nil {
			t.Fatal(err)
		}
		allDayProviders(t, m, 1)
		ours, theirs := transportServer(m, graph.POSTTransport), transportServer(m, transport.POST{})
		var bodies []struct{ name, body string }
		for _, tc := range transportCases {
			b, _ := json.Marshal(map[string]string{"query": tc.query, "operationName": tc.operationName})
			bodies = append(bodies, struct{ name, body string }{tc.name, string(b)})
		}
		bodies = append(bodies, []struct{ name, body string }{
			{"a body cut short", `{"query": "{ __typename }"`},
			{"an empty body", ``},
			{"variables that are not an object", `{"query": "{ __typename }", "variables": [1]}`},
			{"a mutation that fails", `{"query": "mutation { cancelBooking(input: {bookingId: \"999999\"}) { booking { id } } }"}`},
		}...)
		for _, b := range bodies {
			for _, accept := range []string{"", "application/json", "application/graphql-response+json", "*/*", "text/html"} {
				send := func(h http.Handler) *httptest.ResponseRecorder {
					req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(b.body))
					req.Header.Set("Content-Type", "application/json")
					if accept != "" {
						req.Header.Set("Accept", accept)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					return rec
				}
				got, want := send(ours), send(theirs)
				if got.Code != want.Code || !reflect.DeepEqual(got.Header(), want.Header()) || got.Body.String() != want.Body.String() {
					t.Errorf("%s, Accept %q:\nours:   HTTP %d %v\n  %s\ngqlgen: HTTP %d %v\n  %s", b.name, accept,
						got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
				}
			}
		}
	})
}

// TestGETAnswersAsGQLGensTransport: where the GET transport of the handler
// does not refuse (mutations, websocket upgrades and undecodable variables
// are refused with a code, which gqlgen's GET does not give), it answers
// with the status, headers and bytes of gqlgen's transport.GET, followed
// by a newline.
func TestGETAnswersAsGQLGensTransport(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		m := slots.New(db)
		allDayProviders(t, m, 1)
		ours, theirs := transportServer(m, graph.GETTransport), transportServer(m, transport.GET{})
		for _, tc := range transportCases {
			q := url.Values{"query": {tc.query}}
			if tc.operationName != "" {
				q.Set("operationName", tc.operationName)
			}
			for _, accept := range []string{"", "application/json"} {
				send := func(h http.Handler) *httptest.ResponseRecorder {
					req := httptest.NewRequest(http.MethodGet, "/graphql?"+q.Encode(), nil)
					if accept != "" {
						req.Header.Set("Accept", accept)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					return rec
				}
				got, want := send(ours), send(theirs)
				if got.Code != want.Code || !reflect.DeepEqual(got.Header(), want.Header()) || got.Body.String() != want.Body.String()+"\n" {
					t.Errorf("%s, Accept %q:\nours:   HTTP %d %v\n  %s\ngqlgen: HTTP %d %v\n  %s", tc.name, accept,
						got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
				}
			}
		}
	})
}

package graph_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/models"
)

// TestExpensiveOperationsAreRefusedBeforeAnySQL: 200 aliased
// timeSlots(first: 100) are QUERY_TOO_COMPLEX, and 50 aliased bookSlot
// are refused with nothing booked, both before a single statement runs.
func TestExpensiveOperationsAreRefusedBeforeAnySQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		a := newAPI(t, db, nil)
		allDayProviders(t, a.slots, 1)

		var q strings.Builder
		q.WriteString("{")
		for i := range 200 {
			fmt.Fprintf(&q, " a%d: timeSlots(first: 100) { nodes { id } }", i)
		}
		q.WriteString(" }")
		a.sql.Reset()
		res := a.gql(t, q.String(), nil)
		if res.Code() != "QUERY_TOO_COMPLEX" || len(res.Data) > 0 && string(res.Data) != "null" {
			t.Fatalf("200 x timeSlots(first: 100): %.300s", res.Body)
		}
		if stmts := a.sql.Reset(); len(stmts) != 0 {
			t.Fatalf("statements ran before the refusal: %v", stmts)
		}
		// One such field is fine: the limit is not simply "no lists".
		if res := a.gql(t, `{ timeSlots(first: 100) { nodes { id } } }`, nil); res.Code() != "" {
			t.Fatalf("one timeSlots(first: 100): %s", res.Body)
		}

		var page struct {
			TimeSlots struct{ Nodes []struct{ ID string } }
		}
		a.gql(t, `{ timeSlots(first: 50) { nodes { id } } }`, nil).Decode(t, &page)
		var m strings.Builder
		m.WriteString("mutation {")
		for i, n := range page.TimeSlots.Nodes {
			fmt.Fprintf(&m, ` b%d: bookSlot(input: {slotId: "%s", customer: "c%d"}) { booking { id } }`, i, n.ID, i)
		}
		m.WriteString(" }")
		a.sql.Reset()
		res = a.gql(t, m.String(), nil)
		if res.Code() != "QUERY_TOO_COMPLEX" || !strings.Contains(res.Errors[0].Message, "mutation fields") {
			t.Fatalf("50 x bookSlot: %.300s", res.Body)
		}
		if stmts := a.sql.Reset(); len(stmts) != 0 {
			t.Fatalf("statements ran before the refusal: %v", stmts)
		}
		var booked int64
		if err := db.Model(&models.Booking{}).Count(&booked).Error; err != nil || booked != 0 {
			t.Fatalf("%d bookings exist after the refusal (%v)", booked, err)
		}
	})
}

// TestRequestLimits: each limit of the endpoint refuses what exceeds it and
// lets through what does not.
func TestRequestLimits(t *testing.T) {
	a := newAPI(t, dbtest.Open(t, database.SQLite), nil)

	t.Run("depth", func(t *testing.T) {
		deep := `{ timeSlots(first: 1) { edges { node { provider { timeSlots(first: 1) { edges { node {
		  provider { timeSlots(first: 1) { edges { node { id } } } } } } } } } } } }`
		res := a.gql(t, deep, nil)
		if res.Code() != "QUERY_TOO_COMPLEX" || !strings.Contains(res.Errors[0].Message, "deep") {
			t.Fatalf("12 levels: %s", res.Body)
		}
		if res := a.gql(t, `{ timeSlots(first: 1) { edges { node { provider { timeSlots(first: 1) { nodes { id } } } } } } }`, nil); res.Code() != "" {
			t.Fatalf("6 levels: %s", res.Body)
		}
	})

	t.Run("parser tokens", func(t *testing.T) {
		var q strings.Builder
		q.WriteString("{")
		for i := range 4000 {
			fmt.Fprintf(&q, " t%d: __typename", i)
		}
		q.WriteString(" }")
		res := a.gql(t, q.String(), nil)
		if res.Code() != "BAD_USER_INPUT" || !strings.Contains(res.Errors[0].Message, "token limit") {
			t.Fatalf("12,000 tokens: %.300s", res.Body)
		}
	})

	t.Run("body size", func(t *testing.T) {
		big := `{"query": "{ __typename }", "pad": "` + strings.Repeat("x", 10<<20) + `"}`
		if res := a.do(t, request{body: big}); res.Status != http.StatusRequestEntityTooLarge || res.Code() != "BAD_USER_INPUT" {
			t.Fatalf("10 MB body: HTTP %d %.200s", res.Status, res.Body)
		}
		// Without a Content-Length the limit still holds while reading.
		rec := a.doChunked(t, big)
		if rec.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("10 MB chunked body: HTTP %d", rec.Status)
		}
	})

	t.Run("malformed JSON is not echoed", func(t *testing.T) {
		res := a.do(t, request{body: `{"query": "{ __typename }", "secret": "ECHO-ME-NOT-1234`})
		if res.Status != http.StatusBadRequest || res.Code() != "BAD_USER_INPUT" || strings.Contains(res.Body, "ECHO-ME-NOT") {
			t.Fatalf("HTTP %d: %s", res.Status, res.Body)
		}
	})

	t.Run("transports", func(t *testing.T) {
		for _, c := range []struct {
			name string
			req  request
			ok   bool
		}{
			{"POST JSON", request{body: `{"query":"{ __typename }"}`}, true},
			{"GET query", request{method: http.MethodGet, query: "?query=%7B__typename%7D"}, true},
			{"GET mutation", request{method: http.MethodGet, query: "?query=mutation%7BcleanupSlots(input%3A%7BdaysOld%3A0%7D)%7Bdeleted%7D%7D"}, false},
			{"GET with variables that are not JSON", request{method: http.MethodGet, query: "?query=%7B__typename%7D&variables=%7Bx"}, false},
			{"multipart form", request{contentType: "multipart/form-data; boundary=x", body: "--x\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"{ __typename }\"}\r\n--x--\r\n"}, false},
			{"urlencoded form", request{contentType: "application/x-www-form-urlencoded", body: "query=%7B__typename%7D"}, false},
			{"websocket upgrade", request{method: http.MethodGet, query: "?query=%7B__typename%7D", header: map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}}, false},
		} {
			res := a.do(t, c.req)
			ok := res.Status == http.StatusOK && strings.Contains(res.Body, `"__typename":"Query"`)
			if ok != c.ok || !ok && (res.Status < 400 || res.Code() != "BAD_USER_INPUT") {
				t.Errorf("%s: HTTP %d %s, want a 4xx refusal with BAD_USER_INPUT", c.name, res.Status, res.Body)
			}
			if c.req.method == "" && !ok && (res.Status != http.StatusUnsupportedMediaType || res.Code() != "BAD_USER_INPUT") {
				t.Errorf("%s: HTTP %d %s, want 415 BAD_USER_INPUT", c.name, res.Status, res.Body)
			}
		}
		// GraphQL over HTTP: a mutation by GET is 405, pointing at POST.
		if res := a.do(t, request{method: http.MethodGet, query: "?query=mutation%7BcleanupSlots(input%3A%7BdaysOld%3A0%7D)%7Bdeleted%7D%7D"}); res.Status != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
			t.Errorf("GET mutation: HTTP %d, Allow %q", res.Status, res.Header.Get("Allow"))
		}
		if res := a.do(t, request{method: http.MethodOptions}); res.Status != http.StatusOK || !strings.Contains(res.Header.Get("Allow"), "POST") {
			t.Errorf("OPTIONS: HTTP %d, Allow %q", res.Status, res.Header.Get("Allow"))
		}
	})
}

// TestRequestErrorsNameTheParameter: refusals about the request itself
// name the parameter at fault in the message and in extensions.argument:
// operationName when the operation cannot be chosen (not gqlgen's
// "operation  not found"), the variable when its value does not fit (not
// gqlparser's bare "must be defined").
func TestRequestErrorsNameTheParameter(t *testing.T) {
	a := newAPI(t, dbtest.Open(t, database.SQLite), nil)
	two := `query A { __typename } query B { __typename }`
	book := `mutation($i: BookSlotInput!) { bookSlot(input: $i) { booking { id } } }`
	page := `query($first: Int) { timeSlots(first: $first) { totalCount } }`
	ids := `query($ids: [ID!]) { timeSlots(filter: {providerIds: $ids}) { totalCount } }`
	for _, c := range []struct {
		name, body, want, argument string
	}{
		{"several operations and no name", fmt.Sprintf(`{"query":%q}`, two), "operationName is required", "operationName"},
		{"a name the document lacks", fmt.Sprintf(`{"query":%q,"operationName":"C"}`, two), `operationName "C" names no operation`, "operationName"},
		{"a missing input field", fmt.Sprintf(`{"query":%q,"variables":{"i":{"slotId":"1"}}}`, book), "variable $i.customer: must be defined", "$i.customer"},
		{"an unknown input field", fmt.Sprintf(`{"query":%q,"variables":{"i":{"slotId":"1","customer":"A","x":1}}}`, book), "variable $i.x: unknown field", "$i.x"},
		{"a fraction for an Int", fmt.Sprintf(`{"query":%q,"variables":{"first":1.5}}`, page), "variable $first: cannot use 1.5 as Int", "$first"},
		{"a string for an Int", fmt.Sprintf(`{"query":%q,"variables":{"first":"ten"}}`, page), `variable $first: cannot use "ten" as Int`, "$first"},
		{"an Int beyond 64 bits", fmt.Sprintf(`{"query":%q,"variables":{"first":1e30}}`, page), "variable $first: cannot use 1e30 as Int", "$first"},
		{"a boolean in a list of IDs", fmt.Sprintf(`{"query":%q,"variables":{"ids":["1",true]}}`, ids), "variable $ids[1]: cannot use true as ID", "$ids[1]"},
	} {
		res := a.do(t, request{body: c.body})
		if res.Status != http.StatusUnprocessableEntity || res.Code() != "BAD_USER_INPUT" ||
			res.Errors[0].Extensions["argument"] != c.argument || !strings.Contains(res.Errors[0].Message, c.want) {
			t.Errorf("%s: HTTP %d %s", c.name, res.Status, res.Body)
		}
	}
	if res := a.do(t, request{body: fmt.Sprintf(`{"query":%q,"operationName":"B"}`, two)}); res.Status != http.StatusOK || len(res.Errors) != 0 {
		t.Errorf("operationName B: HTTP %d %s", res.Status, res.Body)
	}
}

// suggestive are operations that each trip one validation rule that can
// append "Did you mean …?".
var suggestive = map[string]string{
	"FieldsOnCorrectType": `{ timeSlotz { totalCount } }`,
	"KnownArgumentNames":  `{ timeSlots(frist: 1) { totalCount } }`,
	"KnownTypeNames":      `query($f: TimeSlotFiltr) { timeSlots(filter: $f) { totalCount } }`,
	"ValuesOfCorrectType": `{ timeSlots(filter: {status: [AVAILABLE, BOOKD]}) { totalCount } }`,
	"input field names":   `{ timeSlots(filter: {providerIdz: "1"}) { totalCount } }`,
	"ScalarLeafs":         `{ timeSlots }`,
}

// TestProductionGivesNoHints: in development validation errors suggest
// names; in production none does, for every rule that could.
func TestProductionGivesNoHints(t *testing.T) {
	db := dbtest.Open(t, database.SQLite)
	dev := newAPI(t, db, nil)
	prod := newAPI(t, db, map[string]string{"APP_ENV": "production", "ADMIN_TOKEN": "a-long-enough-admin-token"})
	hinted := 0
	for rule, q := range suggestive {
		if res := dev.gql(t, q, nil); res.Code() != "BAD_USER_INPUT" {
			t.Errorf("%s in development: %s", rule, res.Body)
		} else if strings.Contains(res.Body, "Did you mean") {
			hinted++
		}
		res := prod.gql(t, q, nil)
		if res.Code() != "BAD_USER_INPUT" || strings.Contains(res.Body, "Did you mean") {
			t.Errorf("%s in production: %s", rule, res.Body)
		}
	}
	if hinted < len(suggestive)-1 {
		t.Errorf("only %d of %d operations get hints in development: the cases do not trip their rules", hinted, len(suggestive))
	}
}

// introspectionQuery is what GraphiQL sends first to learn the schema.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name kind }
    mutationType { name kind }
    subscriptionType { name kind }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL isOneOf
  fields(includeDeprecated: true) { name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue isDeprecated deprecationReason }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } } }
`

// TestIntrospectionFollowsTheEnvironment: on in development, off in
// production, on again in production with INTROSPECTION=true. Off means
// off for clients that are not admins: they get FORBIDDEN (never
// INTERNAL_SERVER_ERROR, and nothing logged as an error), through
// fragments too, while an admin's bearer token still introspects.
// GraphiQL's full introspection query passes the depth, complexity and
// token limits.
func TestIntrospectionFollowsTheEnvironment(t *testing.T) {
	db := dbtest.Open(t, database.SQLite)
	const token = "a-long-enough-admin-token"
	prod := map[string]string{"APP_ENV": "production", "ADMIN_TOKEN": token}
	for _, c := range []struct {
		name  string
		env   map[string]string
		auth  string
		query string
		code  string // "" when the schema is answered
	}{
		{"development", nil, "", introspectionQuery, ""},
		{"production refuses an anonymous client", prod, "", introspectionQuery, "FORBIDDEN"},
		{"production refuses __type alone", prod, "", `{ __type(name: "TimeSlot") { name } }`, "FORBIDDEN"},
		{"production refuses __schema in a fragment", prod, "", `query { ...F } fragment F on Query { __schema { queryType { name } } }`, "FORBIDDEN"},
		{"production answers an admin", prod, "Bearer " + token, introspectionQuery, ""},
		{"production refuses a wrong token", prod, "Bearer wrong-token-of-some-length", introspectionQuery, "FORBIDDEN"},
		{"production with INTROSPECTION=true", map[string]string{"APP_ENV": "production", "ADMIN_TOKEN": token, "INTROSPECTION": "true"}, "", introspectionQuery, ""},
	} {
		a := newAPI(t, db, c.env)
		body, _ := json.Marshal(map[string]any{"query": c.query})
		res := a.do(t, request{body: string(body), auth: c.auth})
		if res.Code() != c.code {
			t.Errorf("%s: code %q, want %q: %s", c.name, res.Code(), c.code, res.Body)
		}
		if c.code == "" && c.query == introspectionQuery && !strings.Contains(res.Body, `"name":"TimeSlotConnection"`) {
			t.Errorf("%s: no schema: %s", c.name, res.Body)
		}
		if strings.Contains(a.logs.String(), `"level":"ERROR"`) {
			t.Errorf("%s: logged an error:\n%s", c.name, a.logs.String())
		}
	}
	// __typename is not introspection.
	if res := newAPI(t, db, prod).gql(t, `{ __typename }`, nil); res.Code() != "" {
		t.Errorf("__typename in production: %s", res.Body)
	}
}

// TestPanicIsRecovered: a resolver that panics (here: no manager wired)
// answers INTERNAL_SERVER_ERROR without the panic's text, and the same
// handler goes on serving.
func TestPanicIsRecovered(t *testing.T) {
	broken := newBrokenAPI(t)
	res := broken.gql(t, `{ timeSlots { totalCount } }`, nil)
	if res.Code() != "INTERNAL_SERVER_ERROR" {
		t.Fatalf("panicking resolver: %s", res.Body)
	}
	for _, leak := range []string{"nil pointer", "panic", "goroutine", ".go:", "runtime"} {
		if strings.Contains(res.Body, leak) {
			t.Errorf("answer leaks %q: %s", leak, res.Body)
		}
	}
	if !strings.Contains(broken.logs.String(), "nil pointer") || !strings.Contains(broken.logs.String(), res.Header.Get("X-Request-Id")) {
		t.Errorf("the panic is not logged with the request id:\n%s", broken.logs.String())
	}
	if res := broken.gql(t, `{ __typename }`, nil); res.Code() != "" || res.Status != http.StatusOK {
		t.Fatalf("after the panic: %s", res.Body)
	}
}

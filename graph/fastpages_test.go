package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"timeslots/graph"
	"timeslots/internal/config"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/httpx"
	"timeslots/internal/slots"
)

// TestSlotPagesAnswerTheExecutorsBytes sends each query to the handler with
// the slot-page fast path and to one where the executor runs everything:
// status and body must be identical, byte for byte, and the fast path
// must have answered exactly the operations it is meant to take.
func TestSlotPagesAnswerTheExecutorsBytes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		cfg, err := config.Load(func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		m := slots.New(db)
		ids := allDayProviders(t, m, 3)
		// Some seats taken, one slot full: bookedCount, remaining and status vary.
		var first []struct{ ID string }
		a := wrap(t, nil, m)
		res := a.gql(t, `{ timeSlots(first: 6) { nodes { id } } }`, nil)
		var page struct {
			TimeSlots struct{ Nodes []struct{ ID string } }
		}
		res.Decode(t, &page)
		first = page.TimeSlots.Nodes
		for i, s := range first[:4] {
			r := a.gql(t, `mutation($s: ID!, $c: String!) { bookSlot(input: {slotId: $s, customer: $c}) { booking { id } } }`,
				map[string]any{"s": s.ID, "c": "customer " + string(rune('A'+i))})
			if len(r.Errors) > 0 {
				t.Fatalf("book %s: %s", s.ID, r.Body)
			}
		}

		var answered atomic.Int64
		fast := graph.NewHandlerCountingSlotPages(cfg, m, &answered)
		slow := graph.NewHandlerCountingSlotPages(cfg, m, nil)
		send := func(h http.Handler, body string) (int, string) {
			req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code, rec.Body.String()
		}
		post := func(query string, vars map[string]any) string {
			req := map[string]any{"query": query, "variables": vars}
			if name, ok := vars["operationName"]; ok {
				req["operationName"] = name
				delete(vars, "operationName")
			}
			b, _ := json.Marshal(req)
			return string(b)
		}
		_, cursorBody := send(slow, post(`{ timeSlots(first: 5) { edges { cursor } } }`, nil))
		var cur struct {
			Data struct {
				TimeSlots struct{ Edges []struct{ Cursor string } }
			}
		}
		if err := json.Unmarshal([]byte(cursorBody), &cur); err != nil || len(cur.Data.TimeSlots.Edges) != 5 {
			t.Fatalf("cursors: %v %s", err, cursorBody)
		}
		c2, c4 := cur.Data.TimeSlots.Edges[2].Cursor, cur.Data.TimeSlots.Edges[4].Cursor
		pid := ids[1]
		tomorrow := m.Now().AddDate(0, 0, 1).Format("2006-01-02")

		var tooComplex strings.Builder
		tooComplex.WriteString("{")
		for i := range 200 {
			fmt.Fprintf(&tooComplex, " a%d: timeSlots(first: 100) { nodes { id } }", i)
		}
		tooComplex.WriteString(" }")
		schema := graph.NewExecutableSchema(graph.Config{}).Schema()
		for _, tc := range []struct {
			name  string
			query string
			vars  map[string]any
			fast  bool
		}{
			{"the bench's page", `query Slots($p: ID!, $s: Date!, $e: Date!) { timeSlots(first: 20, filter: {providerId: $p, startDate: $s, endDate: $e}) { edges { cursor node { id providerId startTime endTime date status capacity bookedCount } } pageInfo { hasNextPage endCursor } } }`,
				map[string]any{"p": pid, "s": tomorrow, "e": tomorrow}, true},
			{"every field of every type", `{ __typename timeSlots(first: 7, filter: {status: [AVAILABLE, BOOKED]}) ` + everyField(schema, "TimeSlotConnection") + ` }`, nil, true},
			{"the full slots only", `{ timeSlots(filter: {status: [BOOKED]}) { nodes { id bookedCount remaining status } pageInfo { startCursor endCursor hasNextPage } } }`, nil, true},
			{"aliases, repeated fields and two pages", `query($c: String) { a: timeSlots(first: 2) { edges { c1: cursor c2: cursor node { x: id id } } edges { node { date } } } b: timeSlots(first: 3, after: $c) { p: pageInfo { hasPreviousPage } nodes { id } } }`,
				map[string]any{"c": c2}, true},
			{"fragments, @skip and @include", `query($yes: Boolean!, $no: Boolean!) { timeSlots(first: 3) { ...Conn edges { ... on TimeSlotEdge { cursor @include(if: $yes) } node { ...Slot id @skip(if: $no) capacity @skip(if: $yes) } } } } fragment Conn on TimeSlotConnection { pageInfo { endCursor } edges { node { startTime } } } fragment Slot on TimeSlot { endTime remaining }`,
				map[string]any{"yes": true, "no": false}, true},
			{"a page backward", `query($b: String!) { timeSlots(last: 2, before: $b) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
				map[string]any{"b": c4}, true},
			{"an empty page", `{ timeSlots(first: 5, filter: {date: "2001-01-01"}) { edges { cursor } nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`, nil, true},
			{"first: 0 after a cursor", `query($c: String) { timeSlots(first: 0, after: $c) { nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
				map[string]any{"c": c2}, true},
			{"a named operation among others", `query Other { providers(first: 1) { nodes { id } } } query Mine { timeSlots(first: 1) { nodes { id } } }`,
				map[string]any{"operationName": "Mine"}, true},

			{"totalCount goes to the executor", `{ timeSlots(first: 2) { totalCount nodes { id } } }`, nil, false},
			{"provider goes to the executor", `{ timeSlots(first: 2) { nodes { id provider { name } } } }`, nil, false},
			{"another root field goes to the executor", `{ timeSlots(first: 1) { nodes { id } } providers(first: 1) { nodes { name } } }`, nil, false},
			{"a bad cursor is the executor's error", `{ timeSlots(after: "nope") { nodes { id } } }`, nil, false},
			{"a page too large is the executor's error", `{ timeSlots(first: 101) { nodes { id } } }`, nil, false},
			{"a bad date variable is the executor's error", `query($d: Date) { timeSlots(filter: {date: $d}) { nodes { id } } }`, map[string]any{"d": "2025-02-30"}, false},
			{"a bad provider id is the executor's error", `{ timeSlots(filter: {providerId: "x1"}) { nodes { id } } }`, nil, false},
			{"a missing variable is refused before either", `query($c: String!) { timeSlots(after: $c) { nodes { id } } }`, nil, false},
			{"an operation over the complexity limit is refused before either", tooComplex.String(), nil, false},
			{"an operation nested too deep is refused before either", `{ timeSlots { edges { node { provider { timeSlots { edges { node { provider { timeSlots { nodes { id } } } } } } } } } } }`, nil, false},
			{"an unknown field is refused before either", `{ timeSlots { nodes { id colour } } }`, nil, false},
			{"a mutation goes to the executor", `mutation { cancelBooking(input: {bookingId: "999999"}) { booking { id } } }`, nil, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := post(tc.query, tc.vars)
				before := answered.Load()
				fs, fb := send(fast, body)
				took := answered.Load() - before
				ss, sb := send(slow, body)
				if fs != ss || fb != sb {
					t.Fatalf("fast path: HTTP %d\n%s\nexecutor: HTTP %d\n%s", fs, fb, ss, sb)
				}
				if want := map[bool]int64{true: 1, false: 0}[tc.fast]; took != want {
					t.Fatalf("the fast path answered %d operations, want %d: %s", took, want, fb)
				}
				if tc.fast && (fs != http.StatusOK || strings.Contains(fb, `"errors"`) || !strings.HasPrefix(fb, `{"data":{"`)) {
					t.Fatalf("HTTP %d: %s", fs, fb)
				}
			})
		}
	})
}

// declinedFields are the fields of the slot-page types that the fast path
// leaves to the executor: they have resolvers (a COUNT, a dataloader).
var declinedFields = []string{"TimeSlotConnection.totalCount", "TimeSlot.provider"}

// everyField answers a selection of every field the schema gives the
// named type and the object types under it, but the declined ones.
func everyField(schema *ast.Schema, name string) string {
	var b strings.Builder
	b.WriteString("{ __typename")
	for _, f := range schema.Types[name].Fields {
		if strings.HasPrefix(f.Name, "__") || slices.Contains(declinedFields, name+"."+f.Name) {
			continue
		}
		b.WriteString(" " + f.Name)
		if def := schema.Types[f.Type.Name()]; def.Kind == ast.Object {
			b.WriteString(" " + everyField(schema, def.Name))
		}
	}
	b.WriteString(" }")
	return b.String()
}

// TestSlotPageFieldsHaveNoArgumentOrDirective walks the schema: every
// field the fast path answers has no argument (Query.timeSlots exactly
// those its resolver is called with) and no directive, and every other
// field of its types is declined on purpose. A schema that gives one of
// them an argument or a directive is refused, and the handler then leaves
// every operation to the executor.
func TestSlotPageFieldsHaveNoArgumentOrDirective(t *testing.T) {
	t.Parallel()
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	if err := graph.CheckSlotPageSchema(schema); err != nil {
		t.Fatalf("the schema of the handler: %v", err)
	}
	answered := graph.SlotPageFields()
	for typ, fields := range answered {
		def := schema.Types[typ]
		for _, f := range def.Fields {
			name := typ + "." + f.Name
			if strings.HasPrefix(f.Name, "__") || slices.Contains(fields, f.Name) || slices.Contains(declinedFields, name) {
				continue
			}
			if typ != "Query" {
				t.Errorf("%s is neither answered by the fast path (slotPageFields in fastpages.go) nor declined here", name)
			}
		}
	}
	for _, name := range declinedFields {
		typ, field, _ := strings.Cut(name, ".")
		if schema.Types[typ].Fields.ForName(field) == nil || slices.Contains(answered[typ], field) {
			t.Errorf("declined field %s is not in the schema, or is answered by the fast path", name)
		}
	}

	for _, tc := range []struct {
		name   string
		change func(*ast.Schema)
		want   string
	}{
		{"an argument on a slot field", func(s *ast.Schema) {
			f := s.Types["TimeSlot"].Fields.ForName("remaining")
			f.Arguments = append(f.Arguments, &ast.ArgumentDefinition{Name: "at", Type: ast.NamedType("Time", nil)})
		}, "TimeSlot.remaining takes arguments (at)"},
		{"a directive on a page info field", func(s *ast.Schema) {
			f := s.Types["PageInfo"].Fields.ForName("endCursor")
			f.Directives = append(f.Directives, &ast.Directive{Name: "admin"})
		}, "PageInfo.endCursor has a directive"},
		{"a directive on Query.timeSlots", func(s *ast.Schema) {
			f := s.Types["Query"].Fields.ForName("timeSlots")
			f.Directives = append(f.Directives, &ast.Directive{Name: "admin"})
		}, "Query.timeSlots has a directive"},
		{"another argument of Query.timeSlots", func(s *ast.Schema) {
			f := s.Types["Query"].Fields.ForName("timeSlots")
			f.Arguments = append(f.Arguments, &ast.ArgumentDefinition{Name: "orderBy", Type: ast.NamedType("String", nil)})
		}, "Query.timeSlots takes arguments (first, after, last, before, filter, orderBy)"},
		{"a directive on an argument of Query.timeSlots", func(s *ast.Schema) {
			a := s.Types["Query"].Fields.ForName("timeSlots").Arguments.ForName("first")
			a.Directives = append(a.Directives, &ast.Directive{Name: "deprecated"})
		}, "Query.timeSlots(first) has a directive"},
		{"a directive on the slot type", func(s *ast.Schema) {
			s.Types["TimeSlot"].Directives = append(s.Types["TimeSlot"].Directives, &ast.Directive{Name: "admin"})
		}, "type TimeSlot has a directive"},
		{"an answered field gone", func(s *ast.Schema) {
			def := s.Types["TimeSlotEdge"]
			def.Fields = slices.DeleteFunc(def.Fields, func(f *ast.FieldDefinition) bool { return f.Name == "cursor" })
		}, "TimeSlotEdge.cursor is not in the schema"},
		{"an answered field of an object type", func(s *ast.Schema) {
			s.Types["TimeSlot"].Fields.ForName("capacity").Type = ast.NonNullNamedType("Provider", nil)
		}, "TimeSlot.capacity is of type Provider"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := loadSchema(t)
			tc.change(s)
			if err := graph.CheckSlotPageSchema(s); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// loadSchema parses the schema files afresh, for a test to change.
func loadSchema(t *testing.T) *ast.Schema {
	t.Helper()
	files, err := filepath.Glob("*.graphqls")
	if err != nil || len(files) == 0 {
		t.Fatalf("schema files: %v %v", files, err)
	}
	var sources []*ast.Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, &ast.Source{Name: f, Input: string(b)})
	}
	s, gerr := gqlparser.LoadSchema(sources...)
	if gerr != nil {
		t.Fatal(gerr)
	}
	return s
}

// fieldRecorder intercepts fields, as tracing or field-level authorization
// would, and records each field it sees with whether it has a resolver.
type fieldRecorder struct {
	mu       sync.Mutex
	resolver map[string]bool // "Type.field" → IsResolver
}

func (*fieldRecorder) ExtensionName() string                   { return "FieldRecorder" }
func (*fieldRecorder) Validate(graphql.ExecutableSchema) error { return nil }

func (r *fieldRecorder) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	r.mu.Lock()
	r.resolver[fc.Object+"."+fc.Field.Name] = fc.IsResolver
	r.mu.Unlock()
	return next(ctx)
}

// rootRecorder intercepts root fields and counts them.
type rootRecorder struct{ seen atomic.Int64 }

func (*rootRecorder) ExtensionName() string                   { return "RootRecorder" }
func (*rootRecorder) Validate(graphql.ExecutableSchema) error { return nil }

func (r *rootRecorder) InterceptRootField(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	r.seen.Add(1)
	return next(ctx)
}

// responseRecorder intercepts whole responses only, as the operation
// metrics do, and counts them.
type responseRecorder struct{ seen atomic.Int64 }

func (*responseRecorder) ExtensionName() string                   { return "ResponseRecorder" }
func (*responseRecorder) Validate(graphql.ExecutableSchema) error { return nil }

func (r *responseRecorder) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	r.seen.Add(1)
	return next(ctx)
}

// TestSlotPageFieldsHaveNoResolver runs a page selecting every answered
// field through the executor, with a field interceptor that records the
// executor's own word on each field: none has a resolver but
// Query.timeSlots, whose resolver the fast path calls.
func TestSlotPageFieldsHaveNoResolver(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, database.SQLite)
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	m := slots.New(db)
	allDayProviders(t, m, 1)
	rec := &fieldRecorder{resolver: map[string]bool{}}
	var answered atomic.Int64
	// The warning that the fast path is off goes to a log nobody reads.
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	h := httpx.RequestLog(quiet)(graph.NewHandlerCountingSlotPages(cfg, m, &answered, rec))
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	body, _ := json.Marshal(map[string]string{"query": `{ timeSlots(first: 2) ` + everyField(schema, "TimeSlotConnection") + ` }`})
	if code, out := serve(h, string(body)); code != http.StatusOK || strings.Contains(out, `"errors"`) || !strings.Contains(out, `"remaining"`) {
		t.Fatalf("HTTP %d: %s", code, out)
	}
	for typ, fields := range graph.SlotPageFields() {
		for _, f := range fields {
			if f == "__typename" {
				continue
			}
			name := typ + "." + f
			isResolver, seen := rec.resolver[name]
			switch {
			case !seen:
				t.Errorf("%s did not reach the field interceptor", name)
			case name == "Query.timeSlots" && !isResolver:
				t.Errorf("%s has no resolver: the fast path calls one", name)
			case name != "Query.timeSlots" && isResolver:
				t.Errorf("%s has a resolver, which the fast path would not call: answer it on the executor (slotPageFields in fastpages.go)", name)
			}
		}
	}
}

// TestSlotPagesStepAsideForFieldInterceptors: with an extension that
// intercepts fields or root fields, the handler leaves slot pages to the
// executor, so the interceptor sees them, and the first operation logs why;
// an extension that sees only whole responses leaves the fast path on.
func TestSlotPagesStepAsideForFieldInterceptors(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, database.SQLite)
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	m := slots.New(db)
	allDayProviders(t, m, 1)
	const page = `{"query":"{ timeSlots(first: 3) { edges { cursor node { id startTime status } } pageInfo { hasNextPage endCursor } } }"}`
	_, want := serve(graph.NewHandlerCountingSlotPages(cfg, m, nil), page)

	fields := &fieldRecorder{resolver: map[string]bool{}}
	roots := &rootRecorder{}
	responses := &responseRecorder{}
	for _, tc := range []struct {
		name     string
		ext      graphql.HandlerExtension
		saw      func() bool
		fastPath bool
	}{
		{"a field interceptor", fields, func() bool { _, ok := fields.resolver["TimeSlot.startTime"]; return ok }, false},
		{"a root-field interceptor", roots, func() bool { return roots.seen.Load() == 2 }, false},
		{"a response interceptor", responses, func() bool { return responses.seen.Load() == 2 }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var answered atomic.Int64
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(lockedWriter{&sync.Mutex{}, &logs}, nil))
			h := httpx.RequestLog(logger)(graph.NewHandlerCountingSlotPages(cfg, m, &answered, tc.ext))
			for range 2 {
				if code, got := serve(h, page); code != http.StatusOK || got != want {
					t.Fatalf("HTTP %d\n%s\nwant\n%s", code, got, want)
				}
			}
			if !tc.saw() {
				t.Errorf("the extension did not see the pages")
			}
			warnings := strings.Count(logs.String(), "the slot-page fast path is off")
			if tc.fastPath {
				if answered.Load() != 2 || warnings != 0 {
					t.Errorf("the fast path answered %d of 2 pages, %d warnings:\n%s", answered.Load(), warnings, logs.String())
				}
				return
			}
			if answered.Load() != 0 {
				t.Errorf("the fast path answered %d pages around %s", answered.Load(), tc.ext.ExtensionName())
			}
			if warnings != 1 || !strings.Contains(logs.String(), "extension "+tc.ext.ExtensionName()+" intercepts fields") {
				t.Errorf("want one warning naming %s, got:\n%s", tc.ext.ExtensionName(), logs.String())
			}
		})
	}
}

// serve answers h's status and body for a JSON POST of body.
func serve(h http.Handler, body string) (int, string) {
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

package graph

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// parseValid parses and validates query against the schema, as the
// executor does before it caches a document.
func parseValid(t *testing.T, schema *ast.Schema, query string) *ast.QueryDocument {
	t.Helper()
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, ParserTokenLimit)
	if err != nil {
		t.Fatal(err)
	}
	if errs := validator.ValidateWithRules(schema, doc, rules.NewDefaultRules()); len(errs) > 0 {
		t.Fatal(errs)
	}
	return doc
}

func testSchema() *ast.Schema {
	return NewExecutableSchema(Config{Resolvers: &Resolver{}, Directives: DirectiveRoot{Admin: adminDirective}, Complexity: complexityRoot()}).Schema()
}

// liveHeap answers the bytes of the heap's live objects.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Each document is counted as at least the memory it holds, whatever its
// shape: the estimate per node is an upper bound of what gqlparser
// allocates.
func TestDocumentBytesBoundTheMemoryOfADocument(t *testing.T) {
	schema := testSchema()
	repeat := func(n int, format string) func(int) string {
		return func(i int) string {
			var b strings.Builder
			fmt.Fprintf(&b, "query Q%d {", i)
			for j := range n {
				fmt.Fprintf(&b, format, j)
			}
			return b.String() + " }"
		}
	}
	for _, tc := range []struct {
		name  string
		query func(i int) string
	}{
		{"aliased __typename fields", repeat(3000, " t%d: __typename")},
		{"fields with an id argument", repeat(600, " t%[1]d: timeSlot(id: %[1]d) { id }")},
		{"list and object literals", repeat(100, ` t%d: timeSlots(first: 1, filter: {providerIds: ["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17","18","19","20"], startDate: "2025-01-01"}) { nodes { id } }`)},
		{"fragments and variables", func(i int) string {
			var b strings.Builder
			fmt.Fprintf(&b, "query Q%d($a: ID!, $f: Int = 3) {", i)
			for j := range 300 {
				fmt.Fprintf(&b, " t%d: timeSlot(id: $a) { ...F @include(if: true) }", j)
			}
			return b.String() + " timeSlots(first: $f) { nodes { id } } } fragment F on TimeSlot { id startTime provider { name } }"
		}},
		{"directives", repeat(900, " t%d: __typename @skip(if: false)")},
		{"nested selections", repeat(300, " t%d: timeSlots { nodes { provider { timeSlots { edges { node { id } } } } } }")},
		{"a comment", func(i int) string {
			return fmt.Sprintf("query Q%d { __typename }\n#%s", i, strings.Repeat("x", 100_000))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 20
			queries := make([]string, n)
			for i := range queries {
				queries[i] = tc.query(i)
			}
			docs := make([]*ast.QueryDocument, n)
			before := liveHeap()
			for i, q := range queries {
				docs[i] = parseValid(t, schema, q)
			}
			held := float64(liveHeap()-before) / n
			counted := float64(documentBytes(queries[0], docs[0]) - uint64(len(queries[0])))
			t.Logf("%d nodes: %.0f bytes held, %.0f counted besides the text", documentNodes(docs[0]), held, counted)
			if counted < held {
				t.Errorf("a document holds %.0f bytes besides its text, but is counted as %.0f", held, counted)
			}
			runtime.KeepAlive(docs)
		})
	}
}

func TestQueryCacheKeepsDocumentsWithinItsBudget(t *testing.T) {
	schema := testSchema()
	ctx := t.Context()
	t.Run("a budget of 0 keeps nothing", func(t *testing.T) {
		if _, ok := newQueryCache(0).(graphql.NoCache[*ast.QueryDocument]); !ok {
			t.Fatalf("a budget of 0 gave %T", newQueryCache(0))
		}
	})
	t.Run("a query sent again is answered from the cache", func(t *testing.T) {
		c := newQueryCache(1 << 20)
		q := "{ __typename }"
		doc := parseValid(t, schema, q)
		c.Add(ctx, q, doc)
		if got, ok := c.Get(ctx, q); !ok || got != doc {
			t.Fatalf("Get answered %p, %v; want the document added", got, ok)
		}
	})
	t.Run("a query counted as more than the budget is not kept", func(t *testing.T) {
		c := newQueryCache(64 << 10)
		q := "{ __typename }\n#" + strings.Repeat("x", 64<<10)
		c.Add(ctx, q, parseValid(t, schema, q))
		if _, ok := c.Get(ctx, q); ok {
			t.Fatal("a query over the whole budget was kept")
		}
	})
	t.Run("distinct queries never hold more than the budget", func(t *testing.T) {
		const budget = 256 << 10
		c := newQueryCache(budget).(*queryCache)
		var counted uint64
		for i := range 200 {
			q := fmt.Sprintf("query Q%d { __typename }\n#%s", i, strings.Repeat("x", 10_000))
			doc := parseValid(t, schema, q)
			counted += documentBytes(q, doc)
			c.Add(ctx, q, doc)
			if w := c.entries.WeightedSize(); w > budget {
				t.Fatalf("after %d queries the cache holds %d bytes, over its budget of %d", i+1, w, budget)
			}
		}
		if counted < 4*budget || c.entries.WeightedSize() == 0 {
			t.Fatalf("the queries add up to %d bytes and the cache holds %d: the test proves nothing", counted, c.entries.WeightedSize())
		}
	})
}

package graph

import (
	"context"
	"math"

	"github.com/99designs/gqlgen/graphql"
	"github.com/maypok86/otter/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// What one cached document is counted as, besides its query text. A
// parsed and validated document holds a few hundred bytes per node of its
// syntax tree: a field, argument, value, directive, fragment or variable
// (gqlparser v2.5 holds from about 160 bytes per node for fields with
// arguments and fragments to 403 for aliased __typename fields, the
// costliest shape; a test checks the estimate against each). The document
// shares the query text it was parsed from, which the cache's key keeps
// anyway.
const (
	documentNodeBytes  = 448
	documentEntryBytes = 256 // the cache's own entry, hash slot and document header
)

// queryCache keeps parsed and validated documents by query text, up to a
// budget in bytes rather than a number of entries: a client that sends
// distinct large queries (a 1 MiB body padded by a comment parses to a
// tiny document) fills the budget, not the memory. Each document is
// counted as its query text plus an estimate of its syntax tree
// (documentBytes); one larger than the whole budget is not kept.
//
// It is otter's W-TinyLFU cache: when the budget is full, a new query is
// kept only if it has been asked for more often than the one it would
// displace, so a flood of queries sent once does not push out the ones
// frontends repeat.
type queryCache struct {
	budget  uint64
	entries *otter.Cache[string, cachedDocument]
}

// cachedDocument is a document and the bytes it is counted as.
type cachedDocument struct {
	doc   *ast.QueryDocument
	bytes uint32
}

var _ graphql.Cache[*ast.QueryDocument] = (*queryCache)(nil)

// newQueryCache answers a cache of at most budget bytes of documents, or
// no cache at all for a budget of 0.
func newQueryCache(budget int64) graphql.Cache[*ast.QueryDocument] {
	if budget <= 0 {
		return graphql.NoCache[*ast.QueryDocument]{}
	}
	return &queryCache{
		budget: uint64(budget),
		entries: otter.Must(&otter.Options[string, cachedDocument]{
			MaximumWeight: uint64(budget),
			Weigher:       func(_ string, d cachedDocument) uint32 { return d.bytes },
			// Evictions run in the request that adds a document, so the
			// budget holds when Add returns and no goroutine is started.
			// The cache runs no function of ours under its locks but the
			// weigher, which is safe there.
			Executor: func(fn func()) { fn() },
		}),
	}
}

// Get implements graphql.Cache.
func (c *queryCache) Get(_ context.Context, query string) (*ast.QueryDocument, bool) {
	d, ok := c.entries.GetIfPresent(query)
	return d.doc, ok
}

// Add implements graphql.Cache; a document counted as more than the whole
// budget is not kept.
func (c *queryCache) Add(_ context.Context, query string, doc *ast.QueryDocument) {
	n := documentBytes(query, doc)
	if n > c.budget {
		return
	}
	c.entries.Set(query, cachedDocument{doc: doc, bytes: uint32(n)})
}

// documentBytes is what a cached document is counted as: its query text,
// a fixed cost per node of its syntax tree, and the entry itself.
func documentBytes(query string, doc *ast.QueryDocument) uint64 {
	n := uint64(len(query)) + documentEntryBytes + documentNodeBytes*uint64(documentNodes(doc))
	return min(n, math.MaxUint32)
}

// documentNodes counts the nodes of doc's syntax tree: operations,
// fragments, selections, arguments, values, directives and variables.
func documentNodes(doc *ast.QueryDocument) int {
	n := 0
	var value func(*ast.Value)
	value = func(v *ast.Value) {
		if v == nil {
			return
		}
		n++
		for _, c := range v.Children {
			value(c.Value)
		}
	}
	arguments := func(args ast.ArgumentList) {
		for _, a := range args {
			n++
			value(a.Value)
		}
	}
	directives := func(ds ast.DirectiveList) {
		for _, d := range ds {
			n++
			arguments(d.Arguments)
		}
	}
	var selections func(ast.SelectionSet)
	selections = func(set ast.SelectionSet) {
		for _, s := range set {
			n++
			switch s := s.(type) {
			case *ast.Field:
				arguments(s.Arguments)
				directives(s.Directives)
				selections(s.SelectionSet)
			case *ast.InlineFragment:
				directives(s.Directives)
				selections(s.SelectionSet)
			case *ast.FragmentSpread:
				directives(s.Directives)
			}
		}
	}
	for _, op := range doc.Operations {
		n++
		for _, v := range op.VariableDefinitions {
			n++
			value(v.DefaultValue)
			directives(v.Directives)
		}
		directives(op.Directives)
		selections(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		n++
		directives(f.Directives)
		selections(f.SelectionSet)
	}
	return n
}

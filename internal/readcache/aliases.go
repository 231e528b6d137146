package readcache

import (
	"math"

	"github.com/maypok86/otter/v2"
)

// aliasOverhead is what one alias costs besides its request key and its
// value's own bytes: the entry, its node and hash slot in the cache.
const aliasOverhead = 160

// Aliases remembers, by the raw bytes of a request (a GraphQL body, a REST
// query string), what an edge needs to answer it again from a Cache
// without parsing it: the key its answer is kept under, which the edge
// computed from the parsed request, and what the edge records for it. The
// edge then looks the answer up by that key and, when the Cache no longer
// holds it (a change dropped it, its time is up), serves the request the
// plain way. An alias is therefore never stale in a way that matters: it
// only names a key, and it may outlive the answer, never stand for
// another one, since the key is a function of the request's bytes.
//
// It is bounded in bytes (each alias counted as its request key, the
// value's size as the edge gives it, and aliasOverhead) by otter's
// W-TinyLFU, so requests sent once do not push out those sent over and
// over. A nil *Aliases remembers nothing; it is safe for concurrent use.
type Aliases[V any] struct {
	entries *otter.Cache[string, alias[V]]
}

type alias[V any] struct {
	v    V
	cost uint32
}

// NewAliases answers aliases of at most maxBytes, or nil for 0.
func NewAliases[V any](maxBytes int64) *Aliases[V] {
	if maxBytes <= 0 {
		return nil
	}
	return &Aliases[V]{entries: otter.Must(&otter.Options[string, alias[V]]{
		MaximumWeight: uint64(maxBytes),
		Weigher:       func(_ string, a alias[V]) uint32 { return a.cost },
		// Evictions run in the request that adds an alias, so the budget
		// holds when Set returns and no goroutine is started.
		Executor: func(fn func()) { fn() },
	})}
}

// Get answers what was remembered for the request whose raw key is req.
func (a *Aliases[V]) Get(req string) (V, bool) {
	if a == nil {
		var zero V
		return zero, false
	}
	e, ok := a.entries.GetIfPresent(req)
	return e.v, ok
}

// Set remembers v for the request whose raw key is req; size is what v
// holds besides itself (its strings' bytes).
func (a *Aliases[V]) Set(req string, v V, size int) {
	if a == nil {
		return
	}
	cost := min(uint64(len(req))+uint64(size)+aliasOverhead, math.MaxUint32)
	if cost > a.entries.GetMaximum() {
		return
	}
	a.entries.Set(req, alias[V]{v: v, cost: uint32(cost)})
}

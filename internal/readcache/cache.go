// Package readcache keeps whole answers of public slot reads (a GraphQL
// operation's data, a REST page's body) so that a read asked again costs
// neither SQL nor the edge's per-field work. It knows nothing of GraphQL or
// HTTP: an edge decides what is cacheable, under which key, and what each
// answer depends on (a Scope: the providers and the range of slot start
// times it lists) and until when time alone leaves it true; the cache
// drops an answer when a change to a slot in its scope is reported
// (Invalidate, from the change feed), when its time is up, or when it is
// evicted to stay within its budget of bytes.
//
// A read that began before a change and finishes after it must not leave
// its answer behind: Begin hands out a ticket, and Put refuses an answer
// whose scope a change reported since its ticket touches. A Cache is
// safe for concurrent use; a nil *Cache is a cache that is off.
package readcache

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// entryOverhead is what one entry costs besides its key and answer: the
// entry itself, its scope, its place in the index and the cache's node
// (measured with the heap profile of a full cache; see bench/README.md).
const entryOverhead = 320

// recentChanges is how many changes Put remembers to judge the tickets of
// reads still running; a read that saw more changes than these go by
// stores nothing, which only costs a later miss.
const recentChanges = 1024

// Options configure a cache.
type Options struct {
	// MaxBytes bounds the answers kept, each counted as its key, its bytes
	// and entryOverhead. 0 (or less) turns the cache off: New answers nil.
	MaxBytes int64
	// MaxAge bounds how long any answer is kept, whatever its scope: what
	// the change feed does not bring to this replica (the last events of
	// a replica that died before sending them, a one-shot command's on
	// SQLite) shows on it within that time. 0: no bound but the answers'
	// own.
	MaxAge time.Duration
	// Now is the clock answers expire by: the slot manager's, so that
	// "has not started" means the same to both. Nil: time.Now.
	Now func() time.Time
}

// Scope is what an answer lists: the slots of Providers (nil: any
// provider) whose start lies in [From, Before) (nil: unbounded). A change
// to a slot outside every scope of an answer leaves it as it is.
type Scope struct {
	Providers    []int64
	From, Before *time.Time
}

// Change is a reported change to slots: those of Provider (0: any, as for
// a change that may have been missed) starting within [From, To] (zero
// times: unbounded; a change to one slot has From = To = its start).
type Change struct {
	Provider int64
	From, To time.Time
}

// touches reports whether c may change an answer listing s.
func (s Scope) touches(c Change) bool {
	if c.Provider != 0 && s.Providers != nil && !slices.Contains(s.Providers, c.Provider) {
		return false
	}
	if s.Before != nil && !c.From.IsZero() && !c.From.Before(*s.Before) {
		return false
	}
	if s.From != nil && !c.To.IsZero() && c.To.Before(*s.From) {
		return false
	}
	return true
}

// Stats are the cache's counters since it was made, for metrics.
type Stats struct {
	Hits, Misses uint64
	// Evictions counts answers dropped to stay within MaxBytes.
	Evictions uint64
	// Invalidations counts answers dropped by a reported change, by
	// Purge, or because their time was up when read.
	Invalidations uint64
	// Bytes is what the answers kept are counted as now; Entries how many.
	Bytes   uint64
	Entries int
	// Enabled is false while the feed is down (SetEnabled).
	Enabled bool
}

// Cache keeps answers by key; see the package documentation.
type Cache struct {
	now    func() time.Time
	maxAge time.Duration

	entries *otter.Cache[string, *entry]

	// mu orders Put, Invalidate, Purge and SetEnabled: an answer enters
	// the cache and the index together, and a change removes it from both
	// or keeps it out.
	mu       sync.Mutex
	enabled  atomic.Bool
	seq      atomic.Uint64               // changes reported (Purge and SetEnabled count as one touching everything); written under mu
	recent   [recentChanges]Change       // the last changes, recent[seq%recentChanges] the newest
	byOwner  map[int64]map[string]*entry // answers of one provider, by key
	anyOwner map[string]*entry           // answers of any provider, by key
	scopes   map[string]*entry           // every indexed answer, by key

	// gone queues the answers the cache deleted by itself (evicted,
	// expired), for the next holder of mu to unindex; gmu is taken only
	// for the queue, never while calling the cache.
	gmu  sync.Mutex
	gone []otter.DeletionEvent[string, *entry]

	hits, misses, evictions, invalidations atomic.Uint64
}

// entry is one kept answer.
type entry struct {
	body    []byte
	scopes  []Scope
	expires time.Time     // zero: never, but by MaxAge
	ttl     time.Duration // expires as a duration from Put, for the cache's own clean-up
	cost    uint32
}

// forever is the ttl of an answer without an expiry of its own.
const forever = 100 * 365 * 24 * time.Hour

// New answers a cache of at most opt.MaxBytes, or nil (off) for 0.
func New(opt Options) *Cache {
	if opt.MaxBytes <= 0 {
		return nil
	}
	c := &Cache{
		now: opt.Now, maxAge: opt.MaxAge,
		byOwner: map[int64]map[string]*entry{}, anyOwner: map[string]*entry{}, scopes: map[string]*entry{},
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.enabled.Store(true)
	c.entries = otter.Must(&otter.Options[string, *entry]{
		MaximumWeight: uint64(opt.MaxBytes),
		Weigher:       func(_ string, e *entry) uint32 { return e.cost },
		// The cache frees an answer's memory once its time is up (by the
		// real clock); Get decides by opt.Now whether it is still true.
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *entry]) time.Duration { return e.Value.ttl }),
		// Evictions run in the request that adds an answer, so the budget
		// holds when Put returns and no goroutine is started per task;
		// deletion events may then run under the cache's locks, so they
		// only queue the answer for unindexing (see deleted).
		Executor:   func(fn func()) { fn() },
		OnDeletion: c.deleted,
	})
	return c
}

// Ticket is what a read got from Begin: the number of changes reported
// before it read anything.
type Ticket struct{ seq uint64 }

// Begin is called before a read that may Put its answer reads the
// database. It answers false when the cache is off or disabled: the read
// then neither looks up nor stores.
func (c *Cache) Begin() (Ticket, bool) {
	if c == nil || !c.enabled.Load() {
		return Ticket{}, false
	}
	return Ticket{seq: c.seq.Load()}, true
}

// Get answers the kept answer of key, if there is one and its time is not
// up. The bytes are shared: never modify them.
func (c *Cache) Get(key string) ([]byte, bool) {
	if c == nil || !c.enabled.Load() {
		return nil, false
	}
	e, ok := c.entries.GetIfPresent(key)
	if ok && !e.expires.IsZero() && !c.now().Before(e.expires) {
		c.mu.Lock()
		if c.scopes[key] == e {
			c.dropLocked(key)
		}
		c.mu.Unlock()
		ok = false
	}
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return e.body, true
}

// Put keeps body as the answer of key, read under ticket t, listing
// scopes, until expires (zero: no bound of its own). It keeps nothing when
// a change reported since t touches one of scopes, when the cache was
// disabled meanwhile, or when the answer's time is already up.
func (c *Cache) Put(t Ticket, key string, body []byte, scopes []Scope, expires time.Time) {
	if c == nil {
		return
	}
	now := c.now()
	if c.maxAge > 0 {
		if limit := now.Add(c.maxAge); expires.IsZero() || limit.Before(expires) {
			expires = limit
		}
	}
	if !expires.IsZero() && !now.Before(expires) {
		return
	}
	cost := uint64(len(key)) + uint64(len(body)) + entryOverhead + uint64(len(scopes))*48
	if cost > 1<<31 {
		return
	}
	e := &entry{body: body, scopes: scopes, expires: expires, ttl: forever, cost: uint32(cost)}
	if !expires.IsZero() {
		e.ttl = expires.Sub(now)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled.Load() || !c.unchangedSince(t, scopes) {
		return
	}
	c.unindexLocked(key, nil)
	c.scopes[key] = e
	for _, s := range scopes {
		if s.Providers == nil {
			c.anyOwner[key] = e
			continue
		}
		for _, p := range s.Providers {
			m := c.byOwner[p]
			if m == nil {
				m = map[string]*entry{}
				c.byOwner[p] = m
			}
			m[key] = e
		}
	}
	c.entries.Set(key, e)
	c.unindexGoneLocked()
}

// unchangedSince reports whether no change reported after t touches one
// of scopes. The caller holds mu.
func (c *Cache) unchangedSince(t Ticket, scopes []Scope) bool {
	seq := c.seq.Load()
	if seq-t.seq >= recentChanges {
		return false
	}
	for s := t.seq + 1; s <= seq; s++ {
		ch := c.recent[s%recentChanges]
		for _, sc := range scopes {
			if sc.touches(ch) {
				return false
			}
		}
	}
	return true
}

// Invalidate drops every answer the change may touch, before it returns:
// the change feed calls it before the mutation that made the change
// answers, so a read on this replica after the answer is a fresh one.
func (c *Cache) Invalidate(ch Change) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unindexGoneLocked()
	c.note(ch)
	var drop []string
	consider := func(m map[string]*entry) {
		for key, e := range m {
			for _, s := range e.scopes {
				if s.touches(ch) {
					drop = append(drop, key)
					break
				}
			}
		}
	}
	if ch.Provider == 0 {
		consider(c.scopes)
	} else {
		consider(c.byOwner[ch.Provider])
		consider(c.anyOwner)
	}
	for _, key := range drop {
		c.dropLocked(key)
	}
}

// note records a change for the tickets of reads still running. The
// caller holds mu.
func (c *Cache) note(ch Change) {
	seq := c.seq.Load() + 1
	c.recent[seq%recentChanges] = ch
	c.seq.Store(seq)
}

// dropLocked removes key's answer from the index and the cache. The
// caller holds mu.
func (c *Cache) dropLocked(key string) {
	c.unindexLocked(key, nil)
	if _, gone := c.entries.Invalidate(key); gone {
		c.invalidations.Add(1)
	}
}

// Purge drops every answer, and keeps out those of reads running now:
// the feed reports that it may have missed changes.
func (c *Cache) Purge() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.purgeLocked()
}

func (c *Cache) purgeLocked() {
	c.note(Change{})
	for key := range c.scopes {
		c.dropLocked(key)
	}
}

// SetEnabled turns lookups and stores off (false: the change feed lost its
// connection, so changes of other replicas go unheard; every answer is
// dropped) and on again once it is back.
func (c *Cache) SetEnabled(on bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !on {
		c.enabled.Store(false)
		c.purgeLocked()
		return
	}
	c.note(Change{}) // reads begun while it was off store nothing
	c.enabled.Store(true)
}

// deleted counts the cache's own deletions (evictions, expirations) and
// queues them for unindexing. It may run on a goroutine that holds mu and
// the cache's locks, so it takes neither.
func (c *Cache) deleted(e otter.DeletionEvent[string, *entry]) {
	switch e.Cause {
	case otter.CauseOverflow:
		c.evictions.Add(1)
	case otter.CauseExpiration:
		c.invalidations.Add(1)
	default:
		return // Invalidate and Set unindexed it already
	}
	c.gmu.Lock()
	defer c.gmu.Unlock()
	c.gone = append(c.gone, e)
}

// unindexGoneLocked removes the answers the cache deleted by itself from
// the index. The caller holds mu.
func (c *Cache) unindexGoneLocked() {
	c.gmu.Lock()
	gone := c.gone
	c.gone = nil
	c.gmu.Unlock()
	for _, e := range gone {
		c.unindexLocked(e.Key, e.Value)
	}
}

// unindexLocked removes key from the index; when only is not nil, only
// if key stands for that entry (a deletion event may arrive after the key
// was stored again). The caller holds mu.
func (c *Cache) unindexLocked(key string, only *entry) {
	e, ok := c.scopes[key]
	if !ok || (only != nil && e != only) {
		return
	}
	delete(c.scopes, key)
	delete(c.anyOwner, key)
	for _, s := range e.scopes {
		for _, p := range s.Providers {
			if m := c.byOwner[p]; m != nil {
				delete(m, key)
				if len(m) == 0 {
					delete(c.byOwner, p)
				}
			}
		}
	}
}

// Stats answers the counters and the cache's size.
func (c *Cache) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	return Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(),
		Evictions: c.evictions.Load(), Invalidations: c.invalidations.Load(),
		Bytes: c.entries.WeightedSize(), Entries: c.entries.EstimatedSize(),
		Enabled: c.enabled.Load(),
	}
}

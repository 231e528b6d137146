// Package feed carries committed changes to what slots offer from the
// domain (internal/slots) to whoever reacts to them: GraphQL
// subscriptions, webhooks, the read cache. One Feed per server fans each
// event out to its local subscribers; on PostgreSQL it also hears the
// changes other replicas commit (see NewPostgres).
package feed

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Kind names what happened to a slot (or, for bulk kinds, to a range of a
// provider's slots). The values are the wire names subscribers see.
type Kind string

// The kinds of events.
const (
	// Booked: a seat of the slot was booked.
	Booked Kind = "BOOKED"
	// Cancelled: a booking of the slot was cancelled, freeing its seat.
	Cancelled Kind = "CANCELLED"
	// Rescheduled: a booking moved; one event names the slot it moved to
	// and a second one the slot it left (with the seat freed there).
	Rescheduled Kind = "RESCHEDULED"
	// Held, Released, Expired: a seat of the slot was held, a hold was
	// released (or passed to a booking), holds of the slot expired.
	Held     Kind = "HELD"
	Released Kind = "RELEASED"
	Expired  Kind = "EXPIRED"
	// Generated: slots were created for a provider (bulk).
	Generated Kind = "GENERATED"
	// CleanedUp: a provider's slots were deleted (bulk).
	CleanedUp Kind = "CLEANED_UP"
	// ProviderDeactivated: a provider stopped being active; its slots no
	// longer offer anything (bulk).
	ProviderDeactivated Kind = "PROVIDER_DEACTIVATED"
	// ProviderUpdated: a provider's settings were replaced (name, time
	// zone, hours, reactivation, …); its slots are as they were, but
	// whatever shows the provider beside them is stale. It is not a
	// change to slots: subscriptions to slot changes do not carry it.
	ProviderUpdated Kind = "PROVIDER_UPDATED"
	// Refetch: the feed may have missed events (a lost connection to the
	// database, say); subscribers reload what they show instead of
	// trusting the events they hold.
	Refetch Kind = "REFETCH"
)

// Bulk reports whether k covers a range of a provider's slots rather than
// one slot.
func (k Kind) Bulk() bool {
	return k == Generated || k == CleanedUp || k == ProviderDeactivated
}

// Event is one committed change to what slots offer. Slot events carry
// the slot's state after the change; bulk events carry the range and the
// number of slots they cover.
type Event struct {
	Kind Kind
	// SlotID is 0 for bulk events and REFETCH.
	SlotID int64
	// ProviderID is 0 only for REFETCH.
	ProviderID int64
	// Start and End: a slot event's slot; a bulk event's earliest start
	// and latest end (zero values: unbounded, as when a provider is
	// deactivated).
	Start, End time.Time
	// Capacity of the slot (slot events).
	Capacity int
	// Remaining free seats after the change (slot events).
	Remaining int
	// Version of the slot after the change (slot events). It increases
	// with every change to the slot's seats, so a consumer that sees
	// events of one slot out of order keeps the highest version.
	Version int64
	// Count of slots covered (bulk events).
	Count int
}

// ErrOverflow ends a subscription whose buffer filled up: its consumer
// reads slower than events arrive. The feed drops the subscriber rather
// than block every other one or queue without bound.
var ErrOverflow = errors.New("feed: subscriber too slow, its buffer overflowed")

// ErrClosed ends the subscriptions of a feed that was closed (the server
// is shutting down).
var ErrClosed = errors.New("feed: closed")

// DefaultBuffer is the buffer Subscribe uses for a non-positive size.
const DefaultBuffer = 64

// Feed fans events out to local subscribers and, when built by
// NewPostgres, receives the events other replicas commit. Its methods are
// safe for concurrent use.
type Feed struct {
	// mu serialises publishing, subscribing and closing, so every
	// subscriber sees the events of concurrent Publish calls in one
	// order and a channel is never sent to after it is closed.
	mu        sync.Mutex
	subs      map[*Subscription]struct{}
	observers map[*Observer]struct{}
	closed    bool

	origin string // names this feed in its notifications

	published atomic.Uint64 // events handed to Publish
	delivered atomic.Uint64 // event copies put in subscriber buffers
	dropped   atomic.Uint64 // subscriptions ended by ErrOverflow

	remote *listener // nil for a local feed
	out    *sender   // nil for a local feed
	// losses counts the listener's lost connections: the sender checks
	// its own connection before it sends after one.
	losses atomic.Uint64
}

// NewLocal answers a feed that lives in this process only: SQLite (one
// process owns the file) and tests.
func NewLocal() *Feed {
	return &Feed{subs: map[*Subscription]struct{}{}, observers: map[*Observer]struct{}{}, origin: newOrigin()}
}

// Origin answers the random name of this feed, which its notifications
// carry so that its listener skips the events this replica published
// itself.
func (f *Feed) Origin() string { return f.origin }

// Subscription receives the events published after it was made, until it
// is closed or overflows.
type Subscription struct {
	f   *Feed
	ch  chan Event
	err error // set under f.mu before ch is closed
}

// Subscribe starts a subscription with room for buffer events (a
// non-positive buffer gets DefaultBuffer). The buffer is all the memory it
// ever holds: when it is full at the next event, the subscription ends
// with ErrOverflow.
func (f *Feed) Subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	s := &Subscription{f: f, ch: make(chan Event, buffer)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		s.err = ErrClosed
		close(s.ch)
		return s
	}
	f.subs[s] = struct{}{}
	return s
}

// Close stops the listener, if any, and ends every subscription with
// ErrClosed; later subscriptions end at once. Publishing to a closed feed
// delivers nothing.
func (f *Feed) Close() {
	if f.remote != nil {
		f.remote.stop()
	}
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	if f.out != nil {
		f.out.stop() // sends what is queued
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		delete(f.subs, s)
		s.err = ErrClosed
		close(s.ch)
	}
}

// Publish delivers events to every local subscriber, in order, without
// waiting for any of them: a subscriber with no room left is ended with
// ErrOverflow. The domain publishes after the change committed. A feed
// made by NewPostgres also forwards the events to the other replicas,
// without waiting either (see sender), except REFETCH, which speaks of
// this replica's own feed.
func (f *Feed) Publish(events ...Event) {
	if len(events) == 0 {
		return
	}
	f.published.Add(uint64(len(events)))
	if f.deliver(events) && f.out != nil {
		f.out.enqueue(events)
	}
}

// deliver hands events to every observer, inline, then to every local
// subscriber (see Publish); false when the feed is closed.
func (f *Feed) deliver(events []Event) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	for o := range f.observers {
		if o.Event != nil {
			for _, e := range events {
				o.Event(e)
			}
		}
	}
	var n uint64
	for s := range f.subs {
		if !s.offer(events) {
			delete(f.subs, s)
			s.err = ErrOverflow
			close(s.ch)
			f.dropped.Add(1)
			continue
		}
		n += uint64(len(events))
	}
	f.delivered.Add(n)
	return true
}

// offer puts events in s's buffer, all or none; false: not enough room.
// The caller holds f.mu, the only place that sends on s.ch.
func (s *Subscription) offer(events []Event) bool {
	if cap(s.ch)-len(s.ch) < len(events) {
		return false
	}
	for _, e := range events {
		s.ch <- e
	}
	return true
}

// Observer is called inline by the feed: Event with every event before
// the Publish that delivers it returns (so a consumer that must act before
// a mutation answers, such as the read cache dropping what the change made
// stale, has done so when the mutation answers), and Health whenever the
// feed's connection to other replicas is lost (false) or back (true;
// REFETCH follows). A channel subscription, by contrast, is read some
// time later. The functions run under the feed's lock, one event at a
// time, in the order subscribers see them: they must be quick and must
// not call the feed.
type Observer struct {
	Event  func(Event)
	Health func(healthy bool)
}

// Observe starts calling o (see Observer) until cancel is called. A
// feed's health only changes while its listener is disconnected, so an
// observer that starts then is not told; it reads Healthy.
func (f *Feed) Observe(o Observer) (cancel func()) {
	p := &o
	f.mu.Lock()
	defer f.mu.Unlock()
	f.observers[p] = struct{}{}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.observers, p)
	}
}

// Healthy reports whether the feed hears every change: always for a
// local feed; for a PostgreSQL feed while its listener is connected.
func (f *Feed) Healthy() bool {
	return f.remote == nil || f.remote.connected.Load()
}

// setHealth tells the observers that the listener's connection was lost
// or is back.
func (f *Feed) setHealth(healthy bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for o := range f.observers {
		if o.Health != nil {
			o.Health(healthy)
		}
	}
}

// Subscribers answers how many subscriptions are open.
func (f *Feed) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// Events answers the channel of the subscription's events. It is closed
// when the subscription ends; Err then says why.
func (s *Subscription) Events() <-chan Event { return s.ch }

// Err answers why the subscription ended: ErrOverflow when its consumer
// fell behind, ErrClosed when the feed was closed, nil when the
// subscription was closed (or is still open).
func (s *Subscription) Err() error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return s.err
}

// Close ends the subscription and closes its channel; events still
// buffered stay readable. Closing twice, or after an overflow, does
// nothing.
func (s *Subscription) Close() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if _, ok := s.f.subs[s]; !ok {
		return
	}
	delete(s.f.subs, s)
	close(s.ch)
}

// Stats are the feed's counters since it was made, for metrics.
type Stats struct {
	// Published counts events this replica's changes published.
	Published uint64
	// Received counts events received from other replicas (REFETCH
	// included).
	Received uint64
	// Delivered counts event copies put into subscribers' buffers.
	Delivered uint64
	// Overflows counts subscriptions ended by ErrOverflow.
	Overflows uint64
	// Subscribers is the number of open subscriptions.
	Subscribers int
	// Reconnects counts the listener's reconnections to PostgreSQL.
	Reconnects uint64
	// Sent counts events this replica sent to the others.
	Sent uint64
	// Unsent counts events this replica could not send to the others (a
	// full queue, a failed send, or still queued at Close); the others
	// were told to refetch instead.
	Unsent uint64
	// Connected tells whether the listener is connected; always true for
	// a local feed, which needs no connection.
	Connected bool
}

// Stats answers the feed's counters.
func (f *Feed) Stats() Stats {
	st := Stats{
		Published:   f.published.Load(),
		Delivered:   f.delivered.Load(),
		Overflows:   f.dropped.Load(),
		Subscribers: f.Subscribers(),
		Connected:   true,
	}
	if f.remote != nil {
		st.Received = f.remote.received.Load()
		st.Reconnects = f.remote.reconnects.Load()
		st.Connected = f.remote.connected.Load()
	}
	if f.out != nil {
		st.Sent, st.Unsent = f.out.sent.Load(), f.out.unsent.Load()
	}
	return st
}

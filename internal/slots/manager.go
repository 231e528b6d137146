// Package slots is the TimeSlotManager: every rule about providers, slots
// and bookings lives here, and only this package talks to the database. The
// GraphQL resolvers, the REST shims, the scheduler and the CLI all call it.
package slots

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/feed"
	"timeslots/models"
)

// Manager owns the slot store.
type Manager struct {
	store store
	now   func() time.Time

	// retryDelay is how long a booking waits before its attempt-th retry.
	retryDelay func(attempt int) time.Duration

	batchSize int
	writers   int

	reads chan struct{} // admits slot listings, in arrival order; nil: no bound

	// genMu lets one generation run at a time in this process; across
	// processes the database's constraints keep generation correct.
	genMu sync.Mutex

	hooks  Hooks
	outbox Outbox     // nil: none
	feed   *feed.Feed // nil: no change feed (WithFeed)

	holdTTL time.Duration // a hold's time to live when the request does not say

	// horizon is the floor and ceiling of the generation horizon that
	// Stats and Horizons report (WithHorizon); zero: none.
	horizon struct{ floor, ceiling int }
}

// Hooks receive domain events, for metrics. Every field may be nil.
type Hooks struct {
	BookingOutcome func(code apperr.Code) // "" for success
	Generated      func(created, skipped int)
	Deleted        func(deleted int)
	// Hold counts what happens to holds: HoldCreated, HoldBooked,
	// HoldReleased, and HoldExpired once per expired hold the cleanup
	// deletes.
	Hold func(event string)
}

// Option configures a Manager.
type Option func(*Manager)

// WithClock replaces the wall clock, so tests can stand on a DST day.
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// WithBatchSize sets the rows per batch during generation (by default what
// suits the database: see store.batching).
func WithBatchSize(n int) Option { return func(m *Manager) { m.batchSize = n } }

// WithWriters sets how many connections write generated rows in parallel.
func WithWriters(n int) Option { return func(m *Manager) { m.writers = n } }

// WithReadConcurrency lets at most n slot listings run on the database at
// once (n < 1: no bound); the others wait their turn, in arrival order, or
// until their context ends. Under more concurrent reads than the machine
// has cores, a short queue here keeps the listings' latency even, where
// without it the operating system shares the CPU among every database
// backend at random (bench/README.md).
func WithReadConcurrency(n int) Option {
	return func(m *Manager) {
		m.reads = nil
		if n > 0 {
			m.reads = make(chan struct{}, n)
		}
	}
}

// WithHooks installs event hooks.
func WithHooks(h Hooks) Option { return func(m *Manager) { m.hooks = h } }

// admitRead waits for a listing's turn on the database (see
// WithReadConcurrency) and answers the function that ends it, or the
// context's error if it ends first.
func (m *Manager) admitRead(ctx context.Context) (done func(), err error) {
	if m.reads == nil {
		return func() {}, nil
	}
	select {
	case m.reads <- struct{}{}:
		return func() { <-m.reads }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// New builds a manager over an open, migrated database.
func New(db *database.DB, opts ...Option) *Manager {
	st := newStore(db)
	m := &Manager{store: st, now: time.Now, retryDelay: bookRetryDelay, holdTTL: DefaultHoldTTL}
	m.batchSize, m.writers = st.batching()
	for _, o := range opts {
		o(m)
	}
	if m.batchSize < 1 {
		m.batchSize = 1
	}
	if m.writers < 1 {
		m.writers = 1
	}
	return m
}

// Now answers the manager's clock, in UTC.
func (m *Manager) Now() time.Time { return m.now().UTC() }

// Ping checks that the database answers.
func (m *Manager) Ping(ctx context.Context) error { return m.store.ping(ctx) }

// dbError wraps a database failure with context; it stays internal,
// except for text the database refuses to store: every text input is
// checked on the way in (models.CheckText), and should one slip through,
// the client still learns that its input was at fault, not the server.
func dbError(what string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := apperr.As(err); ok {
		return err
	}
	if database.IsUnstorableText(err) {
		return apperr.E(apperr.BadUserInput, "the input holds text that cannot be stored (a NUL character or invalid UTF-8)")
	}
	// A statement that the context stopped (pgx counts one stopped before
	// it was sent as safe to retry) is not the database's failing: the
	// edges answer a request past its deadline DEADLINE_EXCEEDED.
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, err)
	}
	// A database that refuses connections, is restarting, or kept
	// conflicting past the retries: the request may succeed later.
	if database.IsUnavailable(err) || database.IsRetryable(err) {
		return apperr.Wrap(apperr.Unavailable, fmt.Errorf("%s: %w", what, err),
			"the database cannot serve this request now; retry shortly")
	}
	return fmt.Errorf("%s: %w", what, err)
}

func notFound(what string, id int64) error {
	return apperr.E(apperr.NotFound, "%s %d does not exist", what, id)
}

// one answers a store's single row, NOT_FOUND naming what it is when there
// is none, or the store's failure with context.
func one[T any](row *T, err error, what string, id int64) (*T, error) {
	if errors.Is(err, errNoRows) {
		return nil, notFound(what, id)
	}
	if err != nil {
		return nil, dbError("load "+what, err)
	}
	return row, nil
}

// ---- providers ----

// CreateProvider validates and stores a new provider.
func (m *Manager) CreateProvider(ctx context.Context, in models.ProviderInput) (*models.Provider, error) {
	p, err := m.newProvider(in)
	if err != nil {
		return nil, err
	}
	if err := m.store.createProvider(ctx, p); err != nil {
		return nil, dbError("create provider", err)
	}
	return p, nil
}

// newProvider is the provider in describes, created now, if it is valid.
func (m *Manager) newProvider(in models.ProviderInput) (*models.Provider, error) {
	p, err := in.Validate()
	if err != nil {
		return nil, err
	}
	now := m.Now()
	p.CreatedAt, p.UpdatedAt = now, now
	return &p, nil
}

// UpdateProvider replaces a provider's settings. Existing slots are left as
// they are; the next generation uses the new settings and, by the
// no-overlap rule, never creates a slot that overlaps an existing one.
func (m *Manager) UpdateProvider(ctx context.Context, id int64, in models.ProviderInput) (*models.Provider, error) {
	p, err := in.Validate()
	if err != nil {
		return nil, err
	}
	p.ID, p.UpdatedAt = id, m.Now()
	wasActive, err := m.store.updateProvider(ctx, &p)
	if errors.Is(err, errNoRows) {
		return nil, notFound("provider", id)
	}
	if err != nil {
		return nil, dbError("update provider", err)
	}
	// Every committed update is published, so that what shows the
	// provider beside its slots (the read cache's answers) is dropped
	// before the update answers; a deactivation says more, and covers it.
	kind := feed.ProviderUpdated
	if wasActive && !p.Active {
		kind = feed.ProviderDeactivated
	}
	m.publish(feed.Event{Kind: kind, ProviderID: id})
	return &p, nil
}

// Provider answers one provider, or NOT_FOUND.
func (m *Manager) Provider(ctx context.Context, id int64) (*models.Provider, error) {
	p, err := m.store.provider(ctx, id)
	return one(p, err, "provider", id)
}

// ProvidersByID loads many providers in one query, for dataloaders. Missing
// ids are simply absent from the map.
func (m *Manager) ProvidersByID(ctx context.Context, ids []int64) (map[int64]*models.Provider, error) {
	return byID(ctx, ids, m.store.providersByID, "providers", func(p *models.Provider) int64 { return p.ID })
}

// SlotsByID loads many slots in one query, for dataloaders. Missing ids are
// simply absent from the map.
func (m *Manager) SlotsByID(ctx context.Context, ids []int64) (map[int64]*models.TimeSlot, error) {
	now := m.Now()
	load := func(ctx context.Context, ids []int64) ([]models.TimeSlot, error) {
		return m.store.slotsByID(ctx, ids, now)
	}
	return byID(ctx, ids, load, "slots", func(s *models.TimeSlot) int64 { return s.ID })
}

// Slot answers one slot, or NOT_FOUND. Like a listing's, its Version and
// timestamps are left zero.
func (m *Manager) Slot(ctx context.Context, id int64) (*models.TimeSlot, error) {
	s, err := m.store.slot(ctx, id, m.Now())
	return one(s, err, "time slot", id)
}

// Booking answers one booking, or NOT_FOUND.
func (m *Manager) Booking(ctx context.Context, id int64) (*models.Booking, error) {
	b, err := m.store.booking(ctx, id)
	return one(b, err, "booking", id)
}

// byID loads the rows with the given ids with load (no query for none)
// and keys them by id.
func byID[T any](ctx context.Context, ids []int64, load func(context.Context, []int64) ([]T, error), what string, id func(*T) int64) (map[int64]*T, error) {
	var rows []T
	if len(ids) > 0 {
		var err error
		if rows, err = load(ctx, ids); err != nil {
			return nil, dbError("load "+what, err)
		}
	}
	out := make(map[int64]*T, len(rows))
	for i := range rows {
		out[id(&rows[i])] = &rows[i]
	}
	return out, nil
}

// primaryKey marks a context whose reads go to the primary.
type primaryKey struct{}

// OnPrimary marks ctx so that every read made with it goes to the primary,
// never to a read replica. A mutation reads with it whatever it answers
// (the slot of a replayed booking, the payload an edge assembles after
// it), so that it never answers something older than its own write; the
// manager's mutations mark their own context, and the GraphQL edge marks
// a mutation's whole operation.
func OnPrimary(ctx context.Context) context.Context {
	if onPrimary(ctx) {
		return ctx
	}
	return context.WithValue(ctx, primaryKey{}, true)
}

// onPrimary reports whether ctx is marked OnPrimary.
func onPrimary(ctx context.Context) bool {
	v, _ := ctx.Value(primaryKey{}).(bool)
	return v
}

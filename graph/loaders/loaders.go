// Package loaders batches the reads of one GraphQL request by id: the
// relation fields (TimeSlot.provider, Booking.slot, Booking.rescheduledFrom)
// and the root fields by id (timeSlot, provider, booking) with
// graph-gophers/dataloader: however many slots a response holds, their
// providers are read in one query.
// Loaders live for one request only, so no answer is ever served from a
// cache that another request filled.
package loaders

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"timeslots/internal/apperr"
	"timeslots/internal/slots"
	"timeslots/models"
)

// Wait is how long a loader collects keys before it queries. It bounds the
// latency a relation field adds; loads that arrive later form a second
// batch. Pages of slots do not depend on it: see PrimeProviders.
const Wait = 2 * time.Millisecond

// Loaders are the dataloaders of one request.
type Loaders struct {
	slots     *slots.Manager
	provider  *rowLoader[int64, models.Provider]
	slot      *rowLoader[int64, models.TimeSlot]
	booking   *rowLoader[int64, models.Booking]
	reference *rowLoader[string, models.Booking]
	moves     *dataloader.Loader[int64, []models.BookingMove]
	// roots makes PrimeRoots run once per request.
	roots sync.Once
}

// Loaders read bookings for slots.Manager.FindBookingIn.
var _ slots.BookingSource = (*Loaders)(nil)

// New makes fresh loaders over the manager's batch reads.
func New(m *slots.Manager) *Loaders {
	return &Loaders{
		slots:     m,
		provider:  newRowLoader("provider", m.ProvidersByID),
		slot:      newRowLoader("time slot", m.SlotsByID),
		booking:   newRowLoader("booking", m.BookingsByID),
		reference: newRowLoader("booking", m.BookingsByReference),
		moves:     dataloader.NewBatchedLoader(batchLists(m.BookingMoves), dataloader.WithWait[int64, []models.BookingMove](Wait)),
	}
}

// Provider answers the provider with id, batched with the request's other
// provider loads.
func (l *Loaders) Provider(ctx context.Context, id int64) (*models.Provider, error) {
	return l.provider.load(ctx, id)
}

// Slot answers the time slot with id, batched with the request's other
// slot loads.
func (l *Loaders) Slot(ctx context.Context, id int64) (*models.TimeSlot, error) {
	return l.slot.load(ctx, id)
}

// Booking answers the booking with id, batched with the request's other
// booking loads. It reads the row only: who may see it is
// slots.Manager.FindBookingIn's to decide.
func (l *Loaders) Booking(ctx context.Context, id int64) (*models.Booking, error) {
	return l.booking.load(ctx, id)
}

// BookingByReference answers the booking whose reference is exactly ref,
// batched with the request's other reference loads.
func (l *Loaders) BookingByReference(ctx context.Context, ref string) (*models.Booking, error) {
	return l.reference.load(ctx, ref)
}

// Moves answers where the booking with id was before each reschedule,
// oldest first, batched with the request's other bookings.
func (l *Loaders) Moves(ctx context.Context, bookingID int64) ([]models.BookingMove, error) {
	return load(ctx, l.moves, bookingID)
}

// PrimeProviders reads the providers of ids in one statement and puts them
// in the provider loader (NOT_FOUND for an id that names none), before the
// fields that load them are resolved. gqlgen resolves each item's provider
// in its own goroutine, and under load those goroutines can straddle the
// loader's batch window and cause a second query; priming makes "one
// query per page" hold whatever the scheduling. If the read fails nothing
// is primed, and each load reports the failure itself.
func (l *Loaders) PrimeProviders(ctx context.Context, ids []int64) {
	l.provider.prime(ctx, ids)
}

// PrimeSlots reads the slots of ids in one statement and puts them in the
// slot loader, as PrimeProviders does, and answers the slots it read.
func (l *Loaders) PrimeSlots(ctx context.Context, ids []int64) map[int64]*models.TimeSlot {
	return l.slot.prime(ctx, ids)
}

// PrimeBookings reads the bookings of ids in one statement and those of
// refs in another, and puts them in the booking loaders, as PrimeProviders
// does.
func (l *Loaders) PrimeBookings(ctx context.Context, ids []int64, refs []string) {
	l.booking.prime(ctx, ids)
	l.reference.prime(ctx, refs)
}

// PrimeRoots runs prime once per request, however many fields call it at
// once; the others wait until it has run. The root fields that read rows
// by id call it first, so that prime reads the rows of all of them
// together (see graph's primeRootLookups).
func (l *Loaders) PrimeRoots(prime func()) { l.roots.Do(prime) }

// PrimeMoves reads the moves of the bookings of ids in one statement and
// puts them in the moves loader (an empty list for a booking that never
// moved), before a page's bookings are resolved: as with PrimeProviders,
// "one query per page" then holds whatever the scheduling. If the read
// fails nothing is primed.
func (l *Loaders) PrimeMoves(ctx context.Context, ids []int64) {
	if len(ids) == 0 {
		return
	}
	ids = distinct(ids)
	rows, err := l.slots.BookingMoves(ctx, ids)
	if err != nil {
		return
	}
	for _, id := range ids {
		moves := rows[id]
		if moves == nil {
			moves = []models.BookingMove{}
		}
		l.moves.Prime(ctx, id, moves)
	}
}

// rowLoader loads rows by key in batches, and keeps its cache at hand so
// that a priming read can record the keys it did not find as well as the
// rows it did.
type rowLoader[K comparable, V any] struct {
	what   string
	read   func(context.Context, []K) (map[K]*V, error)
	loader *dataloader.Loader[K, *V]
	cache  dataloader.Cache[K, *V]
}

func newRowLoader[K comparable, V any](what string, read func(context.Context, []K) (map[K]*V, error)) *rowLoader[K, V] {
	r := &rowLoader[K, V]{what: what, read: read, cache: dataloader.NewCache[K, *V]()}
	r.loader = dataloader.NewBatchedLoader(r.batch,
		dataloader.WithWait[K, *V](Wait), dataloader.WithCache[K, *V](r.cache))
	return r
}

// notFound is the answer for a key that names no row.
func (r *rowLoader[K, V]) notFound(key K) error {
	return apperr.E(apperr.NotFound, "%s %v does not exist", r.what, key)
}

// batch is the loader's batch function: results in key order, NOT_FOUND
// for a missing key, the failure for every key when the read fails.
func (r *rowLoader[K, V]) batch(ctx context.Context, keys []K) []*dataloader.Result[*V] {
	out := make([]*dataloader.Result[*V], len(keys))
	rows, err := r.read(ctx, keys)
	for i, k := range keys {
		switch v, ok := rows[k]; {
		case err != nil:
			out[i] = &dataloader.Result[*V]{Error: err}
		case ok:
			out[i] = &dataloader.Result[*V]{Data: v}
		default:
			out[i] = &dataloader.Result[*V]{Error: r.notFound(k)}
		}
	}
	return out
}

// load waits for key's batch (see load).
func (r *rowLoader[K, V]) load(ctx context.Context, key K) (*V, error) {
	return load(ctx, r.loader, key)
}

// load waits for key's batch in l. A failure that is not a coded answer
// (a database error) is dropped from the loader's cache, so a later load
// in the same request tries again instead of repeating the failure.
// (dataloader v7.1.0 caches every result except panics, and has no
// skip-cache error type to return from the batch function.)
func load[K comparable, V any](ctx context.Context, l *dataloader.Loader[K, V], key K) (V, error) {
	v, err := l.Load(ctx, key)()
	if err != nil {
		if _, coded := apperr.As(err); !coded {
			l.Clear(ctx, key)
		}
	}
	return v, err
}

// prime reads the rows of keys in one statement and puts each row, or
// NOT_FOUND for a key that names none, in the cache; a key answered
// already keeps its answer. It answers the rows it read; nil, and nothing
// primed, when the read fails.
func (r *rowLoader[K, V]) prime(ctx context.Context, keys []K) map[K]*V {
	if len(keys) == 0 {
		return nil
	}
	keys = distinct(keys)
	rows, err := r.read(ctx, keys)
	if err != nil {
		return nil
	}
	for _, k := range keys {
		if v, ok := rows[k]; ok {
			r.loader.Prime(ctx, k, v)
		} else if _, cached := r.cache.Get(ctx, k); !cached {
			missing := r.notFound(k)
			r.cache.Set(ctx, k, func() (*V, error) { return nil, missing })
		}
	}
	return rows
}

func distinct[K comparable](ids []K) []K {
	seen := make(map[K]bool, len(ids))
	out := make([]K, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

type ctxKey struct{}

// Middleware gives every request its own loaders.
func Middleware(m *slots.Manager) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(With(r.Context(), m)))
		})
	}
}

// With answers ctx with new loaders: each event of a subscription reads
// afresh, where the loaders of its connection would keep what the first
// event read for as long as the connection lives.
func With(ctx context.Context, m *slots.Manager) context.Context {
	return context.WithValue(ctx, ctxKey{}, New(m))
}

// For answers the loaders of the request in ctx. Outside a request that
// passed through Middleware it panics: that is a wiring mistake, and the
// GraphQL recover function turns it into an internal error.
func For(ctx context.Context) *Loaders {
	l, ok := ctx.Value(ctxKey{}).(*Loaders)
	if !ok {
		panic("loaders: no loaders in context; wrap the handler with loaders.Middleware")
	}
	return l
}

// batchLists adapts a manager's batch read of lists to dataloader: results
// in key order, an empty list for a key the read did not answer, the
// failure for every key when the read fails.
func batchLists[V any](load func(context.Context, []int64) (map[int64][]V, error)) dataloader.BatchFunc[int64, []V] {
	return func(ctx context.Context, keys []int64) []*dataloader.Result[[]V] {
		out := make([]*dataloader.Result[[]V], len(keys))
		rows, err := load(ctx, keys)
		for i, k := range keys {
			out[i] = &dataloader.Result[[]V]{Data: rows[k], Error: err}
			if err == nil && out[i].Data == nil {
				out[i].Data = []V{}
			}
		}
		return out
	}
}

// Package loaders batches the relation fields of one GraphQL request
// (TimeSlot.provider, Booking.slot, Booking.rescheduledFrom) with
// graph-gophers/dataloader: however
// many slots a response holds, their providers are read in one query.
// Loaders live for one request only, so no answer is ever served from a
// cache that another request filled.
package loaders

import (
	"context"
	"net/http"
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
	slots    *slots.Manager
	provider *dataloader.Loader[int64, *models.Provider]
	slot     *dataloader.Loader[int64, *models.TimeSlot]
	moves    *dataloader.Loader[int64, []models.BookingMove]
}

// New makes fresh loaders over the manager's batch reads.
func New(m *slots.Manager) *Loaders {
	return &Loaders{
		slots:    m,
		provider: dataloader.NewBatchedLoader(batch("provider", m.ProvidersByID), dataloader.WithWait[int64, *models.Provider](Wait)),
		slot:     dataloader.NewBatchedLoader(batch("time slot", m.SlotsByID), dataloader.WithWait[int64, *models.TimeSlot](Wait)),
		moves:    dataloader.NewBatchedLoader(batchLists(m.BookingMoves), dataloader.WithWait[int64, []models.BookingMove](Wait)),
	}
}

// Provider answers the provider with id, batched with the request's other
// provider loads.
func (l *Loaders) Provider(ctx context.Context, id int64) (*models.Provider, error) {
	return load(ctx, l.provider, id)
}

// Slot answers the time slot with id, batched with the request's other
// slot loads.
func (l *Loaders) Slot(ctx context.Context, id int64) (*models.TimeSlot, error) {
	return load(ctx, l.slot, id)
}

// Moves answers where the booking with id was before each reschedule,
// oldest first, batched with the request's other bookings.
func (l *Loaders) Moves(ctx context.Context, bookingID int64) ([]models.BookingMove, error) {
	return load(ctx, l.moves, bookingID)
}

// PrimeProviders reads the providers of ids in one statement and puts them
// in the provider loader, before the items of a page are resolved. gqlgen
// resolves each item's provider in its own goroutine, and under load those
// goroutines can straddle the loader's batch window and cause a second
// query; priming makes "one query per page" hold whatever the scheduling.
// If the read fails nothing is primed, and each item's load reports the
// failure itself.
func (l *Loaders) PrimeProviders(ctx context.Context, ids []int64) {
	if len(ids) == 0 {
		return
	}
	rows, err := l.slots.ProvidersByID(ctx, distinct(ids))
	if err != nil {
		return
	}
	for id, p := range rows {
		l.provider.Prime(ctx, id, p)
	}
}

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

func distinct(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// load waits for id's batch. A failure that is not a coded answer (a
// database error) is dropped from the loader's cache, so a later load in
// the same request tries again instead of repeating the failure.
// (dataloader v7.1.0 caches every result except panics, and has no
// skip-cache error type to return from the batch function.)
func load[V any](ctx context.Context, l *dataloader.Loader[int64, V], id int64) (V, error) {
	v, err := l.Load(ctx, id)()
	if err != nil {
		if _, coded := apperr.As(err); !coded {
			l.Clear(ctx, id)
		}
	}
	return v, err
}

type ctxKey struct{}

// Middleware gives every request its own loaders.
func Middleware(m *slots.Manager) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := context.WithValue(r.Context(), ctxKey{}, New(m))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
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

// batch adapts a manager's map-answering batch read to dataloader: results
// in key order, NOT_FOUND for a missing key, the failure for every key when
// the read fails.
func batch[V any](what string, load func(context.Context, []int64) (map[int64]V, error)) dataloader.BatchFunc[int64, V] {
	return func(ctx context.Context, keys []int64) []*dataloader.Result[V] {
		out := make([]*dataloader.Result[V], len(keys))
		rows, err := load(ctx, keys)
		if err != nil {
			for i := range out {
				out[i] = &dataloader.Result[V]{Error: err}
			}
			return out
		}
		for i, k := range keys {
			if v, ok := rows[k]; ok {
				out[i] = &dataloader.Result[V]{Data: v}
			} else {
				out[i] = &dataloader.Result[V]{Error: apperr.E(apperr.NotFound, "%s %d does not exist", what, k)}
			}
		}
		return out
	}
}

// batchLists adapts a manager's batch read of lists to dataloader, like
// batch: a key the read did not answer has an empty list.
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

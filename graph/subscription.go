package graph

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"timeslots/graph/model"
	"timeslots/internal/apperr"
	"timeslots/internal/feed"
	"timeslots/models"
)

// MaxSubscriptionProviders bounds providerIds of one slotsChanged filter:
// every subscription looks at every event of the feed, so the filter stays
// a small set.
const MaxSubscriptionProviders = 100

// errOverflow ends a subscription whose buffer of events filled up: its
// client reads slower than changes arrive. It must subscribe again and
// reload what it shows, as after REFETCH.
var errOverflow = apperr.E(apperr.SubscriptionOverflow,
	"this subscription fell behind the changes (its buffer, SUBSCRIPTION_BUFFER events, filled up) and was ended: subscribe again and reload what you show")

// errFeedClosed ends the subscriptions of a server that is shutting down.
var errFeedClosed = apperr.E(apperr.Unavailable, "the server is shutting down: subscribe again (on another replica) and reload what you show")

// changeFilter is a checked slotsChanged filter: the providers it names,
// each with its time zone (a slot's date is a local date), and the range
// of starts it covers.
type changeFilter struct {
	zones    map[int64]*time.Location
	from, to time.Time // zero: unbounded
}

// checkChangeFilter checks f and reads the zones of its providers, once
// per subscription: events then become changes without a read.
func (r *Resolver) checkChangeFilter(ctx context.Context, f model.SlotChangeFilter) (*changeFilter, error) {
	var ids []int64
	switch {
	case f.ProviderID != nil && f.ProviderIDs != nil:
		return nil, apperr.Invalid("filter", "filter takes providerId or providerIds, not both")
	case f.ProviderID != nil:
		ids = []int64{*f.ProviderID}
	case f.ProviderIDs != nil:
		if len(f.ProviderIDs) == 0 || len(f.ProviderIDs) > MaxSubscriptionProviders {
			return nil, apperr.Invalid("filter.providerIds", "filter.providerIds must name 1 to %d providers, got %d",
				MaxSubscriptionProviders, len(f.ProviderIDs))
		}
		ids = f.ProviderIDs
	default:
		return nil, apperr.Invalid("filter", "filter must name providerId or providerIds")
	}
	cf := &changeFilter{zones: make(map[int64]*time.Location, len(ids))}
	if f.From != nil {
		cf.from = f.From.UTC()
	}
	if f.To != nil {
		cf.to = f.To.UTC()
	}
	if f.From != nil && f.To != nil && !cf.to.After(cf.from) {
		return nil, apperr.Invalid("filter.to", "filter.to must be after filter.from")
	}
	providers, err := r.Slots.ProvidersByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		p, ok := providers[id]
		if !ok {
			return nil, apperr.E(apperr.NotFound, "provider %d not found", id)
		}
		loc, err := models.LoadLocation(p.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("provider %d: %w", id, err)
		}
		cf.zones[id] = loc
	}
	return cf, nil
}

// change answers what a subscription with this filter receives of e, or
// nil when e is not for it. REFETCH reaches every subscription;
// PROVIDER_UPDATED none, since no slot changed (it is the read cache's).
// The slot is built from the event, which carries everything a TimeSlot
// shows but its local date, computed in the provider's zone as read at
// subscribing.
func (cf *changeFilter) change(e feed.Event) *model.SlotChange {
	switch e.Kind {
	case feed.Refetch:
		return &model.SlotChange{Kind: e.Kind}
	case feed.ProviderUpdated:
		return nil
	}
	loc, ok := cf.zones[e.ProviderID]
	if !ok {
		return nil
	}
	if e.SlotID == 0 { // bulk: its range meets the filter's
		if (!cf.to.IsZero() && !e.Start.IsZero() && !e.Start.Before(cf.to)) ||
			(!cf.from.IsZero() && !e.End.IsZero() && !e.End.After(cf.from)) {
			return nil
		}
		c := &model.SlotChange{Kind: e.Kind, ProviderID: &e.ProviderID, Count: &e.Count}
		if !e.Start.IsZero() {
			c.From = &e.Start
		}
		if !e.End.IsZero() {
			c.To = &e.End
		}
		return c
	}
	if (!cf.from.IsZero() && e.Start.Before(cf.from)) || (!cf.to.IsZero() && !e.Start.Before(cf.to)) {
		return nil
	}
	slot := &models.TimeSlot{
		ID: e.SlotID, ProviderID: e.ProviderID, StartTime: e.Start.UTC(), EndTime: e.End.UTC(),
		Date: models.DateOf(e.Start.In(loc)), Capacity: e.Capacity, BookedCount: e.Capacity - e.Remaining,
		Status: models.SlotAvailable, Version: e.Version,
	}
	if e.Remaining <= 0 {
		slot.Status = models.SlotBooked
	}
	return &model.SlotChange{
		Kind: e.Kind, Slot: slot, ProviderID: &slot.ProviderID, From: &slot.StartTime, To: &slot.EndTime,
		Remaining: &e.Remaining, Version: &e.Version,
	}
}

// slotsChanged subscribes to the feed and sends the changes that match
// the filter, one at a time, until the client completes the subscription
// or closes the connection (ctx ends), or the feed ends it (overflow,
// shutdown: the client gets a last response with a coded error).
func (r *Resolver) slotsChanged(ctx context.Context, f model.SlotChangeFilter) (<-chan *model.SlotChange, error) {
	if r.Live == nil {
		return nil, apperr.E(apperr.BadUserInput, "subscriptions are not offered by this server")
	}
	cf, err := r.checkChangeFilter(ctx, f)
	if err != nil {
		return nil, err
	}
	sub := r.Live.opt.Feed.Subscribe(r.Live.opt.Buffer)
	r.Live.obs.SubscriptionStarted()
	out := make(chan *model.SlotChange)
	go func() {
		defer r.Live.obs.SubscriptionEnded()
		defer close(out)
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Events():
				if !ok {
					r.endSubscription(ctx, sub.Err())
					return
				}
				c := cf.change(e)
				if c == nil {
					continue
				}
				select {
				case out <- c:
					r.Live.obs.EventDelivered()
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// endSubscription tells the client why the feed ended its subscription:
// SUBSCRIPTION_OVERFLOW when it fell behind, UNAVAILABLE when the server
// is shutting down. The error is left where endingErrors finds it once
// the subscription's channel is closed.
func (r *Resolver) endSubscription(ctx context.Context, err error) {
	end, _ := ctx.Value(endKey{}).(*subscriptionEnd)
	switch {
	case end == nil:
	case errors.Is(err, feed.ErrOverflow):
		r.Live.obs.EventDropped()
		end.set(errOverflow)
	case errors.Is(err, feed.ErrClosed):
		end.set(errFeedClosed)
	}
}

// subscriptionEnd carries the error that ended a subscription from its
// resolver's goroutine to its last response. (gqlgen's own
// transport.AddSubscriptionError is read by the transport without a lock
// when the connection closes while it is written: a data race.)
type subscriptionEnd struct {
	mu  sync.Mutex
	err error
}

type endKey struct{}

func (e *subscriptionEnd) set(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.err = err
}

func (e *subscriptionEnd) take() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.err
	e.err = nil
	return err
}

// subscriptionEnds gives each subscription its subscriptionEnd (for the
// resolver and its responses alike) and answers the stream's end with the
// error that ended it, if any: the client gets it as a last response with
// a coded error, then complete.
type subscriptionEnds struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
	graphql.ResponseInterceptor
} = subscriptionEnds{}

// ExtensionName implements graphql.HandlerExtension.
func (subscriptionEnds) ExtensionName() string { return "SubscriptionEnds" }

// Validate implements graphql.HandlerExtension.
func (subscriptionEnds) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptOperation implements graphql.OperationInterceptor.
func (subscriptionEnds) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if op := graphql.GetOperationContext(ctx).Operation; op != nil && op.Operation == ast.Subscription {
		ctx = context.WithValue(ctx, endKey{}, &subscriptionEnd{})
	}
	return next(ctx)
}

// InterceptResponse implements graphql.ResponseInterceptor.
func (subscriptionEnds) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp != nil {
		return resp
	}
	if end, ok := ctx.Value(endKey{}).(*subscriptionEnd); ok {
		if err := end.take(); err != nil {
			return &graphql.Response{Errors: gqlerror.List{presentError(ctx, err)}}
		}
	}
	return nil
}

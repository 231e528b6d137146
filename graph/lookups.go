package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"timeslots/graph/loaders"
	"timeslots/graph/scalar"
	"timeslots/internal/slots"
)

// primeRootLookups reads, once per request, the rows that every root field
// by id of the operation names: timeSlot, provider and booking (by id or
// by reference), through fragments and aliases, with @skip and @include
// applied. Each kind is read in one statement and put in the request's
// loaders, so an operation with a hundred such fields costs a few
// statements, however gqlgen schedules them; the fields then answer from
// the loaders. Arguments it cannot read are left to their field, which
// reports them. The root fields by id call it before they read; the first
// one runs it, and the others wait for it.
func primeRootLookups(ctx context.Context) {
	l := loaders.For(ctx)
	l.PrimeRoots(func() {
		op := graphql.GetOperationContext(ctx)
		actor := actorOf(ctx)
		var slotIDs, providerIDs, bookingIDs []int64
		var refs []string
		slotProviders := false
		for _, f := range graphql.CollectFields(op, op.Operation.SelectionSet, []string{"Query"}) {
			args := f.ArgumentMap(op.Variables)
			switch f.Name {
			case "timeSlot":
				if id, ok := idArgument(ctx, args["id"]); ok {
					slotIDs = append(slotIDs, id)
					slotProviders = slotProviders || selects(op, f, "provider")
				}
			case "provider":
				if id, ok := idArgument(ctx, args["id"]); ok {
					providerIDs = append(providerIDs, id)
				}
			case "booking":
				ref, byRef := args["reference"].(string)
				id, byID := idArgument(ctx, args["id"])
				switch {
				case byRef && byID: // refused by the field
				case byRef:
					if r, err := slots.CheckReference(ref); err == nil {
						refs = append(refs, r)
					}
				case byID && (actor.Admin || actor.CustomerID != ""):
					bookingIDs = append(bookingIDs, id)
				}
			}
		}
		if read := l.PrimeSlots(ctx, slotIDs); slotProviders {
			for _, s := range read {
				providerIDs = append(providerIDs, s.ProviderID)
			}
		}
		l.PrimeProviders(ctx, providerIDs)
		l.PrimeBookings(ctx, bookingIDs, refs)
	})
}

// idArgument reads an ID argument as the ID scalar does; ok is false for
// one that is absent or not an ID.
func idArgument(ctx context.Context, v any) (id int64, ok bool) {
	if v == nil {
		return 0, false
	}
	id, err := scalar.UnmarshalID(ctx, v)
	return id, err == nil
}

// selects reports whether field f selects a field named name.
func selects(op *graphql.OperationContext, f graphql.CollectedField, name string) bool {
	for _, c := range graphql.CollectFields(op, f.Selections, nil) {
		if c.Name == name {
			return true
		}
	}
	return false
}

package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"timeslots/internal/apperr"
	"timeslots/internal/slots"
	"timeslots/models"
)

// Page sizes of the connections.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// ByIDCost is what a root field that reads one row by id (timeSlot,
// provider, booking) costs besides its selection: at the default
// complexity limit of 5000, an operation has at most 161 of them
// (5000 / (30 + 1) for the smallest selection, { id }), and fewer with
// larger selections.
const ByIDCost = 30

// pageCost is the number of items a connection field may return: what the
// client asked for with first or last, else the default, at most the max
// (a larger request is refused by the manager with a precise message).
func pageCost(first, last *int) int {
	n := DefaultPageSize
	switch {
	case first != nil:
		n = *first
	case last != nil:
		n = *last
	}
	return max(1, min(n, MaxPageSize))
}

// complexityRoot prices the fields that return lists: a connection costs
// its selection once per item it may return, so
// timeSlots(first: 100) { nodes { id } } costs 201 and nesting multiplies.
func complexityRoot() ComplexityRoot {
	var c ComplexityRoot
	c.Query.TimeSlots = func(child int, first *int, _ *string, last *int, _ *string, _ *slots.SlotFilter) int {
		return 1 + child*pageCost(first, last)
	}
	c.Query.Providers = func(child int, first *int, _ *string) int {
		return 1 + child*pageCost(first, nil)
	}
	c.Provider.TimeSlots = func(child int, first *int, _ *string, _ *slots.SlotFilter) int {
		return 1 + child*pageCost(first, nil)
	}
	c.Query.Bookings = func(child int, first *int, _ *string, _ *slots.BookingFilter) int {
		return 1 + child*pageCost(first, nil)
	}
	c.Query.MyBookings = func(child int, first *int, _ *string, _ *slots.MyBookingsFilter) int {
		return 1 + child*pageCost(first, nil)
	}
	c.Provider.Bookings = func(child int, first *int, _ *string, _ *slots.BookingFilter) int {
		return 1 + child*pageCost(first, nil)
	}
	c.Query.SlotStats = func(child int) int { return 10 + child }
	c.Webhook.Deliveries = func(child int, first *int) int { return 1 + child*pageCost(first, nil) }
	// A root field by id reads a row, however its reads are batched:
	// each costs ByIDCost besides its selection, which bounds the aliases
	// one operation may have.
	c.Query.TimeSlot = func(child int, _ int64) int { return ByIDCost + child }
	c.Query.Provider = func(child int, _ int64) int { return ByIDCost + child }
	c.Query.Booking = func(child int, _ *int64, _ *string) int { return ByIDCost + child }
	// A provider's hours are priced at the most it may be given, so that a
	// page of providers cannot answer more than the limit allows.
	c.Provider.WorkingHours = func(child int) int { return 1 + child*models.MaxWorkingHours }
	return c
}

// shapeLimit refuses, before anything runs, operations nested deeper than
// maxDepth fields and mutations with more than maxMutations root fields (50
// aliased bookSlot fields in one request are refused, none booked).
type shapeLimit struct {
	maxDepth     int
	maxMutations int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = shapeLimit{}

// ExtensionName implements graphql.HandlerExtension.
func (shapeLimit) ExtensionName() string { return "ShapeLimit" }

// Validate implements graphql.HandlerExtension.
func (shapeLimit) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (l shapeLimit) MutateOperationContext(_ context.Context, op *graphql.OperationContext) *gqlerror.Error {
	if op.Operation == nil {
		return nil
	}
	if d := depth(op.Operation.SelectionSet); d > l.maxDepth {
		return requestError(apperr.QueryTooComplex,
			fmt.Sprintf("the operation is nested %d fields deep, more than the limit of %d", d, l.maxDepth))
	}
	if op.Operation.Operation == ast.Mutation {
		if n := rootFields(op.Operation.SelectionSet); n > l.maxMutations {
			return requestError(apperr.QueryTooComplex,
				fmt.Sprintf("the operation has %d mutation fields, more than the limit of %d per request", n, l.maxMutations))
		}
	}
	return nil
}

// depth answers the deepest chain of fields under set. Fragments add no
// level of their own; introspection fields are bounded by gqlparser's
// MaxIntrospectionDepth rule and are not counted here.
func depth(set ast.SelectionSet) int {
	deepest := 0
	for _, s := range set {
		d := 0
		switch s := s.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue
			}
			d = 1 + depth(s.SelectionSet)
		case *ast.InlineFragment:
			d = depth(s.SelectionSet)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				d = depth(s.Definition.SelectionSet)
			}
		}
		deepest = max(deepest, d)
	}
	return deepest
}

// rootFields counts the fields a mutation runs, through fragments.
func rootFields(set ast.SelectionSet) int {
	n := 0
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			if s.Name != "__typename" {
				n++
			}
		case *ast.InlineFragment:
			n += rootFields(s.SelectionSet)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				n += rootFields(s.Definition.SelectionSet)
			}
		}
	}
	return n
}

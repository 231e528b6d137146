package graph

import "timeslots/internal/slots"

// Resolver is the one place where the GraphQL edge receives its
// dependencies. Resolvers only convert arguments, call one Manager method
// and render the result; every rule lives in the slots package.
type Resolver struct {
	Slots *slots.Manager
}

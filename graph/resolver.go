package graph

import (
	"timeslots/internal/apperr"
	"timeslots/internal/slots"
	"timeslots/internal/webhooks"
)

// Resolver is the one place where the GraphQL edge receives its
// dependencies. Resolvers only convert arguments, call one Manager method
// and render the result; every rule lives in the slots package.
type Resolver struct {
	Slots *slots.Manager
	// Webhooks answers the webhook fields; nil: they answer UNAVAILABLE.
	Webhooks *webhooks.Service
	// Live serves subscriptions from the change feed; nil: none are
	// offered.
	Live *Live
}

// hooks answers the webhooks service, or UNAVAILABLE where the server
// runs none.
func (r *Resolver) hooks() (*webhooks.Service, error) {
	if r.Webhooks == nil {
		return nil, apperr.E(apperr.Unavailable, "webhooks are not served here")
	}
	return r.Webhooks, nil
}

// nonNil answers s, or an empty slice for nil: an empty list given is
// not a list left out.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

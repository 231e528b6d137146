package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"timeslots/internal/apperr"
	"timeslots/internal/httpx"
)

// introspectionRule decides per request whether __schema and __type answer:
// always when open (INTROSPECTION=true, the default outside production),
// else for admins only (the bearer token or the console's session), so an
// admin's playground documents the schema in production too. Others are
// refused before anything runs with FORBIDDEN, a coded error, rather than
// the executor's uncoded "introspection disabled" (which would read as an
// INTERNAL_SERVER_ERROR and be logged as one). __typename is not
// introspection here: clients add it to every selection.
type introspectionRule struct{ open bool }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = introspectionRule{}

// ExtensionName implements graphql.HandlerExtension.
func (introspectionRule) ExtensionName() string { return "Introspection" }

// Validate implements graphql.HandlerExtension.
func (introspectionRule) Validate(graphql.ExecutableSchema) error { return nil }

// errIntrospection refuses introspection to a client that is not an admin.
const errIntrospection = "introspection is available to admins only in production: sign in at /admin/login or send Authorization: Bearer <ADMIN_TOKEN>"

// MutateOperationContext implements graphql.OperationContextMutator.
func (i introspectionRule) MutateOperationContext(ctx context.Context, op *graphql.OperationContext) *gqlerror.Error {
	if i.open || httpx.Admin(ctx) == nil {
		op.DisableIntrospection = false
		return nil
	}
	if op.Operation != nil && introspects(op.Operation.SelectionSet) {
		return requestError(apperr.Forbidden, errIntrospection)
	}
	return nil
}

// introspects reports whether a root selection set asks for __schema or
// __type, through fragments (validation allows them on the query root
// only, so deeper levels need no look).
func introspects(set ast.SelectionSet) bool {
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				return true
			}
		case *ast.InlineFragment:
			if introspects(s.SelectionSet) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && introspects(s.Definition.SelectionSet) {
				return true
			}
		}
	}
	return false
}

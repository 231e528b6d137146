package graph

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"timeslots/graph/loaders"
	"timeslots/internal/apperr"
	"timeslots/internal/httpx"
	"timeslots/internal/readcache"
	"timeslots/internal/slots"
	"timeslots/internal/webhooks"
)

// Limits of the GraphQL endpoint that are not configuration.
const (
	// ParserTokenLimit bounds the tokens of one query document, so a huge
	// query is refused while it is being lexed, before it costs more.
	ParserTokenLimit = 10_000
)

// Options are what the GraphQL edge is told by the composition root.
type Options struct {
	// Production hides "Did you mean" hints from validation errors and
	// serves the playground to admins only.
	Production bool
	// Introspection answers __schema and __type queries for everyone;
	// without it only admins get answers, and others FORBIDDEN.
	Introspection bool
	// MaxComplexity, MaxDepth and MaxMutations bound one operation: its
	// complexity (a connection costs its selection times first/last), its
	// selection depth and its mutation fields.
	MaxComplexity int
	MaxDepth      int
	MaxMutations  int
	// Live serves subscriptions over websockets; nil offers none (an
	// upgrade is refused like any other unknown transport).
	Live *Live
	// QueryCacheBytes bounds the parsed and validated documents kept for
	// queries sent again, counted as their text plus an estimate of their
	// syntax trees; 0 keeps none.
	QueryCacheBytes int64
	// Answers keeps whole answers of public slot reads (see answers); nil
	// answers every operation afresh. The REST edge and the change feed
	// share it.
	Answers *readcache.Cache
	// AnswerAliasBytes bounds what is remembered, by each request's raw
	// bytes, of the requests whose answers Answers keeps, so that the same
	// request sent again is answered before gqlgen reads it (rawAnswers);
	// 0 remembers none, and every request is parsed.
	AnswerAliasBytes int64
	// rawAnswered counts the requests rawAnswers answered (tests).
	rawAnswered *atomic.Int64
	// Webhooks serves the webhook fields (nil: they answer UNAVAILABLE).
	Webhooks *webhooks.Service
}

// NewHandler builds the /graphql handler: gqlgen's server with explicit
// transports (POST, GET for queries, OPTIONS, and with opt.Live the
// websocket for subscriptions; no multipart or form; every refusal coded),
// a query cache bounded in bytes, the limits of opt
// (complexity, depth, mutation fields, parser tokens), the error presenter,
// panic recovery, and per-request dataloaders. The body's size is checked
// in front of it (httpx.LimitBody).
//
// Extensions (such as the metrics' operation timer) are added last, so
// they see every operation the limits let through.
func NewHandler(opt Options, m *slots.Manager, extensions ...graphql.HandlerExtension) http.Handler {
	return newHandler(opt, m, &slotPages{}, extensions...)
}

// newHandler is NewHandler with slot pages answered by pages (useSlotPages
// fills in its schema and plan) or, when it is nil, all operations by the
// executor: the tests compare the two.
func newHandler(opt Options, m *slots.Manager, pages *slotPages, extensions ...graphql.HandlerExtension) http.Handler {
	es := NewExecutableSchema(Config{
		Resolvers:  &Resolver{Slots: m, Webhooks: opt.Webhooks, Live: opt.Live},
		Directives: DirectiveRoot{Admin: adminDirective},
		Complexity: complexityRoot(),
	})
	srv := handler.New(es)
	if opt.Live != nil {
		srv.AddTransport(wsTransport{l: opt.Live})
	}
	srv.AddTransport(transport.Options{})
	srv.AddTransport(getTransport{})
	srv.AddTransport(postTransport{})
	srv.SetQueryCache(newQueryCache(opt.QueryCacheBytes))
	srv.SetParserTokenLimit(ParserTokenLimit)
	if opt.Production {
		srv.SetValidationRulesFn(rulesWithoutSuggestions)
		srv.SetDisableSuggestion(true)
	}
	srv.Use(introspectionRule{open: opt.Introspection})
	srv.Use(extension.FixedComplexityLimit(opt.MaxComplexity))
	srv.Use(shapeLimit{maxDepth: opt.MaxDepth, maxMutations: opt.MaxMutations})
	srv.Use(transportRule{})
	srv.Use(subscriptionEnds{})
	srv.AroundResponses(noteOperation)
	srv.AroundOperations(mutationsOnPrimary)
	srv.AroundResponses(freshLoaders(m))
	for _, ext := range extensions {
		srv.Use(ext)
	}
	cached := answers{cache: opt.Answers, aliases: readcache.NewAliases[rawAlias](opt.AnswerAliasBytes)}
	for _, ext := range extensions {
		if r, ok := ext.(OperationRecorder); ok {
			cached.recorders = append(cached.recorders, r)
		}
	}
	cachedOn := useAnswers(srv, es, cached)  // in front of slot pages and the executor
	useSlotPages(srv, es, pages, extensions) // innermost: the other extensions see its responses
	srv.SetErrorPresenter(presentError)
	srv.SetRecoverFunc(recoverPanic)

	h := jsonBodiesOnly(loaders.Middleware(m)(srv))
	if !cachedOn || cached.aliases == nil {
		return h
	}
	return &rawAnswers{cache: opt.Answers, aliases: cached.aliases, next: h, answered: opt.rawAnswered}
}

// noteOperation tells the request log the name of the operation that ran
// (the one operationName chose, or the document's only one).
func noteOperation(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if graphql.HasOperationContext(ctx) {
		httpx.NoteOperation(ctx, loggedName(graphql.GetOperationContext(ctx)))
	}
	return next(ctx)
}

// loggedName is the name of the operation that ran, for the request log:
// the one operationName chose, or the document's only one.
func loggedName(oc *graphql.OperationContext) string {
	if oc.Operation != nil && oc.Operation.Name != "" {
		return oc.Operation.Name
	}
	return oc.OperationName
}

// mutationsOnPrimary sends every read of a mutation's operation to the
// primary, its payload's fields and their dataloaders included: a
// mutation never answers what a read replica has not caught up with yet.
// Queries read where the manager chooses.
func mutationsOnPrimary(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if oc := graphql.GetOperationContext(ctx); oc.Operation != nil && oc.Operation.Operation == ast.Mutation {
		ctx = slots.OnPrimary(ctx)
	}
	return next(ctx)
}

// freshLoaders gives each event of a subscription loaders of its own
// (TimeSlot.provider): the connection's loaders would answer what they
// read first for as long as the connection lives.
func freshLoaders(m *slots.Manager) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		if graphql.HasOperationContext(ctx) {
			if op := graphql.GetOperationContext(ctx).Operation; op != nil && op.Operation == ast.Subscription {
				ctx = loaders.With(ctx, m)
			}
		}
		return next(ctx)
	}
}

// adminDirective implements @admin: the field runs only for requests that
// httpx.AdminGate let through; the others get UNAUTHENTICATED or FORBIDDEN
// before the resolver, so nothing happens.
func adminDirective(ctx context.Context, _ any, next graphql.Resolver) (any, error) {
	if err := httpx.Admin(ctx); err != nil {
		return nil, err
	}
	return next(ctx)
}

// recoverPanic turns a resolver panic into an internal error; the error
// presenter logs it (with the stack) under the request id, and the client
// sees only the code and the id.
func recoverPanic(_ context.Context, p any) error {
	return fmt.Errorf("panic: %v\n%s", p, debug.Stack())
}

// rulesWithoutSuggestions is gqlparser's validation rule set with every rule
// that can append "Did you mean …?" swapped for its silent twin, so that a
// production schema cannot be mapped out by misspelling names.
// SetDisableSuggestion alone swaps only the first two.
func rulesWithoutSuggestions() *rules.Rules {
	r := rules.NewDefaultRules()
	for _, swap := range []struct{ with, without core.Rule }{
		{rules.FieldsOnCorrectTypeRule, rules.FieldsOnCorrectTypeRuleWithoutSuggestions},
		{rules.ScalarLeafsRule, rules.ScalarLeafsRuleWithoutSuggestions},
		{rules.KnownArgumentNamesRule, rules.KnownArgumentNamesRuleWithoutSuggestions},
		{rules.KnownTypeNamesRule, rules.KnownTypeNamesRuleWithoutSuggestions},
		{rules.ValuesOfCorrectTypeRule, rules.ValuesOfCorrectTypeRuleWithoutSuggestions},
	} {
		r.RemoveRule(swap.with.Name)
		r.AddRule(swap.without.Name, swap.without.RuleFunc)
	}
	return r
}

// WriteRefusal answers a refusal of the middleware in front of the GraphQL
// endpoint (rate limit, admin token slowing, body size; see
// httpx.Refusals) as a GraphQL response whose one error carries
// extensions.code, the way GraphQL clients read every other error.
func WriteRefusal(w http.ResponseWriter, _ *http.Request, status int, err error) {
	httpx.WriteJSON(w, status, refusal{Errors: []refusalError{{
		Message:    apperr.ErrorMessage(err),
		Extensions: map[string]string{"code": string(apperr.ErrorCode(err))},
	}}})
}

// refusal is the GraphQL response of WriteRefusal.
type refusal struct {
	Errors []refusalError `json:"errors"`
}

type refusalError struct {
	Message    string            `json:"message"`
	Extensions map[string]string `json:"extensions"`
}

package graph

import (
	"context"
	"maps"
	"net/http"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"timeslots/internal/config"
	"timeslots/internal/feed"
	"timeslots/internal/ratelimit"
	"timeslots/internal/slots"
)

// WriteJSON exposes writeJSON to the external tests.
var WriteJSON = writeJSON

// LiveHeap exposes liveHeap to the external tests.
var LiveHeap = liveHeap

// NewHandlerCountingSlotPages is NewHandler, with the count of operations
// the slot-page fast path answered (without it when count is nil: every
// operation runs on the executor).
func NewHandlerCountingSlotPages(cfg *config.Config, m *slots.Manager, count *atomic.Int64, extensions ...graphql.HandlerExtension) http.Handler {
	if count == nil {
		return newHandler(OptionsOf(cfg), m, nil, extensions...)
	}
	return newHandler(OptionsOf(cfg), m, &slotPages{answered: count}, extensions...)
}

// CountRawAnswers has the handler built with opt count the requests the
// raw path (rawAnswers) answered into n.
func CountRawAnswers(opt *Options, n *atomic.Int64) { opt.rawAnswered = n }

// OptionsOf maps a configuration onto Options as the server does, so the
// tests configure the edge with the variables an operator sets.
func OptionsOf(cfg *config.Config) Options {
	return Options{
		Production: cfg.Production(), Introspection: cfg.Introspection,
		MaxComplexity: cfg.MaxComplexity, MaxDepth: cfg.MaxDepth, MaxMutations: cfg.MaxMutations,
		QueryCacheBytes: cfg.QueryCacheBytes,
	}
}

// LiveOptionsOf maps a configuration onto LiveOptions as the server does.
func LiveOptionsOf(cfg *config.Config, f *feed.Feed, authorize func(*http.Request, string) (context.Context, error)) LiveOptions {
	subscribes, err := ratelimit.NewCounter(cfg.WSSubscribeRPS, cfg.MaxSubscriptions)
	if err != nil {
		panic(err)
	}
	return LiveOptions{
		Feed: f, InitTimeout: cfg.WSInitTimeout, PingInterval: cfg.WSPingInterval,
		MaxConnections: cfg.MaxWSConnections, MaxSubscriptions: cfg.MaxSubscriptions, Subscribes: subscribes,
		Buffer: cfg.SubscriptionBuffer, MaxMessageBytes: cfg.MaxBodyBytes, Origins: cfg.CORSOrigins,
		Authorize: authorize,
	}
}

// SlotPageFields answers, per type, the fields the fast path answers.
func SlotPageFields() map[string][]string { return maps.Clone(slotPageFields) }

// CheckSlotPageSchema answers why the fast path cannot answer over schema,
// or nil when it can.
func CheckSlotPageSchema(schema *ast.Schema) error {
	_, err := planSlotPages(schema)
	return err
}

// MirroredGQLGen names, per file, the gqlgen release the file mirrors.
var MirroredGQLGen = map[string]string{
	"graph/fastpages.go": slotPagesGQLGen,
	"graph/transport.go": transportGQLGen,
	"graph/liveconn.go":  liveConnGQLGen,
}

// The transports of NewHandler, for comparison with gqlgen's own.
var (
	POSTTransport graphql.Transport = postTransport{}
	GETTransport  graphql.Transport = getTransport{}
)

package graph

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/vektah/gqlparser/v2/ast"

	"timeslots/internal/httpx"
	"timeslots/internal/readcache"
	"timeslots/internal/slots"
)

// cachedFields lists, per type, the fields an operation may select for
// its answer to be kept and shared between callers: public slot listings
// and what they show of each slot and its provider. None of them has a
// resolver that reads the caller, and none is marked @admin (planAnswers
// refuses a schema that marks one). Provider.timeSlots and
// Provider.bookings, totalCount (it counts slots beyond the page, which
// leave by time unseen by the page: see slots.SlotPage.Changes), every
// other root field and every mutation are answered afresh each time.
var cachedFields = map[string][]string{
	"Query":              {"__typename", "timeSlots"},
	"TimeSlotConnection": {"__typename", "edges", "nodes", "pageInfo"},
	"TimeSlotEdge":       {"__typename", "cursor", "node"},
	"TimeSlot": {"__typename", "id", "providerId", "provider", "startTime", "endTime", "date",
		"durationMinutes", "capacity", "bookedCount", "remaining", "status"},
	"Provider": {"__typename", "id", "name", "timeZone", "slotMinutes", "bufferMinutes", "capacity",
		"minNoticeMinutes", "active", "workingHours"},
	"WorkingHours": {"__typename", "weekday", "start", "end"},
	"PageInfo":     {"__typename", "hasNextPage", "hasPreviousPage", "startCursor", "endCursor"},
}

// answers keeps the data of public slot reads in a readcache.Cache, in
// front of the slot-page fast path and the executor: a hit answers the
// kept bytes before either runs, so it costs neither SQL nor per-field
// work. It is a response interceptor, so the document has been parsed,
// validated and held to the limits, and the operation metrics count hits
// like any other answer.
//
// An operation is kept only when it is a query made of cachedFields
// (planned as the executor collects fields: fragments, aliases, @skip and
// @include; @defer is never kept), its timeSlots arguments are valid, and
// its answer carries no error and no extension. The key is the query
// text's SHA-256 with the operation name, the variables as JSON and the
// caller's class (anonymous, customer, admin). Each timeSlots field gives
// the answer a scope (its providers and range of start times; for an
// operation of one page, only up to the row read past it, see
// slots.SlotPage.Within) by which a change to a slot drops it, and the earliest SlotPage.Changes of its
// pages bounds its life. A miss is read on the primary, never on a read
// replica that may lag behind the changes the cache has heard of.
//
// With aliases, it also remembers each kept or found answer's key by the
// request's raw bytes, for rawAnswers, and the recorders' record of the
// operation, which rawAnswers then records for the answers it serves.
type answers struct {
	cache     *readcache.Cache
	es        *executableSchema
	query     *pageType
	aliases   *readcache.Aliases[rawAlias]
	recorders []OperationRecorder
}

var (
	_ graphql.HandlerExtension    = answers{}
	_ graphql.ResponseInterceptor = answers{}
)

func (answers) ExtensionName() string                   { return "Answers" }
func (answers) Validate(graphql.ExecutableSchema) error { return nil }

// useAnswers installs the answer cache on srv when there is one and the
// schema marks none of cachedFields with a directive or gives one an
// argument (but timeSlots); otherwise every operation is answered afresh,
// and the first one logs why. It answers whether it installed it.
func useAnswers(srv *handler.Server, es graphql.ExecutableSchema, a answers) bool {
	if a.cache == nil {
		return false
	}
	query, err := planAnswers(es.Schema())
	if err != nil {
		srv.Use(slotPagesOff{reason: fmt.Errorf("the answer cache is off: %w", err), logged: &atomic.Bool{}})
		return false
	}
	a.es, a.query = es.(*executableSchema), query
	srv.Use(a)
	return true
}

// planAnswers answers the cached fields of Query with the types of their
// values, as the schema defines them, or an error when the schema puts a
// directive (@admin, say) on one of them or an argument on one but
// Query.timeSlots.
func planAnswers(schema *ast.Schema) (*pageType, error) {
	return planSelection(schema, cachedFields, "answers are not cached for")
}

// InterceptResponse answers a kept answer, or runs the operation and keeps
// its answer when it may.
func (a answers) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) || len(graphql.GetErrors(ctx)) > 0 {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Query {
		return next(ctx)
	}
	ticket, on := a.cache.Begin()
	if !on {
		return next(ctx)
	}
	plan, ok := planFields(oc, oc.Operation.SelectionSet, a.query)
	if !ok {
		return next(ctx)
	}
	scopes, ok := a.scopes(ctx, oc, plan)
	if !ok {
		return next(ctx)
	}
	key, ok := answerKey(ctx, oc)
	if !ok {
		return next(ctx)
	}
	if !lookedUp(ctx, key) {
		if data, hit := a.cache.Get(key); hit {
			a.remember(ctx, oc, key)
			return &graphql.Response{Data: data}
		}
	}
	// The answer is read on the primary: a read replica may not have
	// replayed a change whose event has already been handled, and an
	// answer older than the last invalidation would stay until the next.
	life := &pageLife{}
	resp := next(slots.OnPrimary(context.WithValue(ctx, pageLifeKey{}, life)))
	if resp == nil || len(resp.Data) == 0 || len(resp.Errors) > 0 || len(resp.Extensions) > 0 ||
		len(graphql.GetErrors(ctx)) > 0 || resp.Label != "" || resp.Path != nil || resp.HasNext != nil {
		return resp
	}
	if page := life.onlyPage(); page != nil && len(scopes) == 1 {
		// The one timeSlots field's page: a change beyond the row read
		// past it cannot change it.
		scopes[0].From, scopes[0].Before = page.Within(scopes[0].From, scopes[0].Before)
	}
	a.cache.Put(ticket, key, bytes.Clone(resp.Data), scopes, life.until())
	a.remember(ctx, oc, key)
	return resp
}

// scopes answers the scope of each timeSlots field of plan, from its
// arguments as the generated code reads them; false when they are not
// valid (the executor reports it, and the answer is not kept).
func (a answers) scopes(ctx context.Context, oc *graphql.OperationContext, plan []planned) (_ []readcache.Scope, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			httpx.Logger(ctx).Error("reading the arguments of a cacheable operation panicked; it is answered afresh",
				slog.Any("panic", r))
			ok = false
		}
	}()
	ec := newExecutionContext(oc, a.es, nil)
	ctx = graphql.WithResponseContext(ctx, presentError, recoverPanic)
	ctx = graphql.WithLazyInputUnmarshalerIndex(ctx, func() *graphql.InputUnmarshalerIndex {
		return graphql.NewInputUnmarshalerIndex(graphql.NewInputUnmarshaler("TimeSlotFilter", ec.unmarshalInputTimeSlotFilter))
	})
	var out []readcache.Scope
	for _, f := range plan {
		if f.Name != "timeSlots" {
			continue
		}
		fctx := graphql.WithFieldContext(ctx, &graphql.FieldContext{Object: "Query", Field: f.CollectedField, IsMethod: true, IsResolver: true})
		args, err := ec.field_Query_timeSlots_args(fctx, f.ArgumentMap(ec.Variables))
		if err != nil {
			return nil, false
		}
		var filter slots.SlotFilter
		if p, _ := args["filter"].(*slots.SlotFilter); p != nil {
			filter = *p
		}
		from, before, err := filter.StartRange()
		if err != nil {
			return nil, false
		}
		s := readcache.Scope{From: from, Before: before}
		if filter.ProviderID != nil || filter.ProviderIDs != nil {
			s.Providers = slices.Clone(filter.ProviderIDs)
			if filter.ProviderID != nil {
				s.Providers = append(s.Providers, *filter.ProviderID)
			}
		}
		out = append(out, s)
	}
	return out, len(graphql.GetErrors(ctx)) == 0
}

// answerKey answers the key of the operation's answer: the SHA-256 of the
// query text, the operation's name, its variables and the caller's class.
// The query text names the validated document (gqlgen keeps documents by
// it); variables as JSON have their keys sorted, so their order in the
// request does not matter.
func answerKey(ctx context.Context, oc *graphql.OperationContext) (string, bool) {
	vars, err := json.Marshal(oc.Variables)
	if err != nil {
		return "", false
	}
	h := sha256.New()
	for _, part := range []string{oc.RawQuery, oc.Operation.Name, string(vars), callerClass(ctx)} {
		fmt.Fprintf(h, "%d:%s", len(part), part)
	}
	return string(h.Sum(nil)), true
}

// pageLife collects, while an operation runs, the earliest instant at
// which one of its slot pages may read differently by time alone, and
// its pages.
type pageLife struct {
	mu    sync.Mutex
	first time.Time
	pages []*slots.SlotPage
}

type pageLifeKey struct{}

// notePage tells the operation running in ctx, if its answer may be
// kept, when page may change by time (slots.SlotPage.Changes).
func notePage(ctx context.Context, page *slots.SlotPage) {
	life, _ := ctx.Value(pageLifeKey{}).(*pageLife)
	if life == nil {
		return
	}
	life.mu.Lock()
	defer life.mu.Unlock()
	life.pages = append(life.pages, page)
	if page.Changes.IsZero() {
		return
	}
	if life.first.IsZero() || page.Changes.Before(life.first) {
		life.first = page.Changes
	}
}

// onlyPage answers the operation's page when it read exactly one.
func (l *pageLife) onlyPage() *slots.SlotPage {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pages) != 1 {
		return nil
	}
	return l.pages[0]
}

func (l *pageLife) until() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

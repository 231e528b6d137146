package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"timeslots/graph/model"
	"timeslots/graph/scalar"
	"timeslots/internal/httpx"
	"timeslots/internal/slots"
	"timeslots/models"
)

// slotPages answers the read every booking frontend repeats — a timeSlots
// page selecting the slots' own fields, their cursors and the page info —
// without gqlgen's per-field execution. That machinery (a field context,
// a resolver closure and a deferred group per field, a goroutine per list
// element) costs several times the query itself for a 20-slot page, while
// none of these fields has a resolver, a directive or an error of its own.
//
// It is a response interceptor placed after every other extension: the
// document has been parsed, validated and held to the complexity and
// shape limits, and the operation metrics see its responses like any
// other. It plans the whole selection first (fragments, aliases, @skip and
// @include through gqlgen's own CollectFields) and takes only operations
// made of Query.timeSlots and __typename over TimeSlotConnection { edges,
// nodes, pageInfo }, TimeSlotEdge, TimeSlot (all fields but provider) and
// PageInfo; arguments go through the generated argument code and the page
// through the same resolver, and every value through the generated
// marshalers, so the bytes are the executor's (fastpages_test.go compares
// them over many query shapes). Anything else — another field, totalCount,
// provider, @defer, a mutation — and any error of the arguments or the
// resolver goes to the executor, which runs and reports it as usual.
type slotPages struct {
	es       *executableSchema
	answered *atomic.Int64 // counts the operations answered here; nil: not counted
}

var (
	_ graphql.HandlerExtension    = slotPages{}
	_ graphql.ResponseInterceptor = slotPages{}
)

func (slotPages) ExtensionName() string                   { return "SlotPages" }
func (slotPages) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse answers the operation itself when it can, else lets
// the executor run it. Refusals pass through response interceptors too
// (the executor's DispatchError, for an operation over the complexity
// limit or with a missing variable): they come with their errors already
// in the response, and are never answered here.
func (p slotPages) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) || len(graphql.GetErrors(ctx)) > 0 {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Query {
		return next(ctx)
	}
	plan, ok := planFields(oc, oc.Operation.SelectionSet, queryImplementors, queryFields)
	if !ok {
		return next(ctx)
	}
	data, ok := p.run(ctx, oc, plan)
	if !ok {
		return next(ctx)
	}
	if p.answered != nil {
		p.answered.Add(1)
	}
	return &graphql.Response{Data: data, Extensions: graphql.GetExtensions(ctx)}
}

// planned is one field of the response with the fields selected under it.
type planned struct {
	graphql.CollectedField
	children []planned
}

// fieldKind says what a field of a type answers: a leaf, or an object or
// list of objects of another type whose fields are planned in turn.
type fieldKind struct {
	implementors []string
	fields       map[string]fieldKind
}

var leaf = fieldKind{}

// The types and fields the fast path answers; a field missing here sends
// the operation to the executor.
var (
	slotFieldsKind = map[string]fieldKind{
		"__typename": leaf, "id": leaf, "providerId": leaf, "startTime": leaf, "endTime": leaf, "date": leaf,
		"durationMinutes": leaf, "capacity": leaf, "bookedCount": leaf, "remaining": leaf, "status": leaf,
	}
	pageInfoFields = map[string]fieldKind{
		"__typename": leaf, "hasNextPage": leaf, "hasPreviousPage": leaf, "startCursor": leaf, "endCursor": leaf,
	}
	edgeFields = map[string]fieldKind{
		"__typename": leaf, "cursor": leaf,
		"node": {timeSlotImplementors, slotFieldsKind},
	}
	connectionFields = map[string]fieldKind{
		"__typename": leaf,
		"edges":      {timeSlotEdgeImplementors, edgeFields},
		"nodes":      {timeSlotImplementors, slotFieldsKind},
		"pageInfo":   {pageInfoImplementors, pageInfoFields},
	}
	queryFields = map[string]fieldKind{
		"__typename": leaf,
		"timeSlots":  {timeSlotConnectionImplementors, connectionFields},
	}
)

// planFields collects the fields of sel on a type as the executor does and
// answers them with their own plans, or false when one is not answered here.
func planFields(oc *graphql.OperationContext, sel ast.SelectionSet, implementors []string, kinds map[string]fieldKind) ([]planned, bool) {
	fields := graphql.CollectFields(oc, sel, implementors)
	out := make([]planned, 0, len(fields))
	for _, f := range fields {
		kind, ok := kinds[f.Name]
		if !ok || len(f.Deferrables) > 0 {
			return nil, false
		}
		pf := planned{CollectedField: f}
		if kind.fields != nil {
			if pf.children, ok = planFields(oc, f.Selections, kind.implementors, kind.fields); !ok {
				return nil, false
			}
		}
		out = append(out, pf)
	}
	return out, true
}

// run resolves and writes the planned Query fields. Errors raised while
// doing so land in a response context of its own, and any of them answers
// false: the executor then runs the operation and reports them.
func (p slotPages) run(ctx context.Context, oc *graphql.OperationContext, plan []planned) (_ json.RawMessage, ok bool) {
	ctx = graphql.WithResponseContext(ctx, presentError, recoverPanic)
	defer func() {
		if r := recover(); r != nil {
			// A fault of this path must not cost the client its answer:
			// the executor answers instead, and the fault is logged.
			httpx.Logger(ctx).Error("slot page fast path panicked; the executor answers",
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			ok = false
		}
	}()
	ec := newExecutionContext(oc, p.es, nil)
	ctx = graphql.WithLazyInputUnmarshalerIndex(ctx, func() *graphql.InputUnmarshalerIndex {
		return graphql.NewInputUnmarshalerIndex(graphql.NewInputUnmarshaler("TimeSlotFilter", ec.unmarshalInputTimeSlotFilter))
	})
	w := &pageWriter{}
	w.buf.Grow(8 << 10)
	w.object(plan, func(f *planned) bool {
		if f.Name == "__typename" {
			w.string("Query")
			return true
		}
		conn, ok := p.timeSlots(ctx, ec, f.CollectedField)
		if !ok {
			return false
		}
		w.connection(f.children, conn)
		return true
	})
	if w.failed || graphql.GetErrors(ctx) != nil {
		return nil, false
	}
	return w.buf.Bytes(), true
}

// timeSlots runs Query.timeSlots as the generated code does: its arguments
// through the generated argument code, then the resolver.
func (p slotPages) timeSlots(ctx context.Context, ec *executionContext, field graphql.CollectedField) (*model.TimeSlotConnection, bool) {
	fc := &graphql.FieldContext{Object: "Query", Field: field, IsMethod: true, IsResolver: true}
	ctx = graphql.WithFieldContext(ctx, fc)
	args, err := ec.field_Query_timeSlots_args(ctx, field.ArgumentMap(ec.Variables))
	if err != nil {
		return nil, false
	}
	fc.Args = args
	conn, err := ec.Resolvers.Query().TimeSlots(ctx, args["first"].(*int), args["after"].(*string),
		args["last"].(*int), args["before"].(*string), args["filter"].(*slots.SlotFilter))
	if err != nil || conn == nil {
		return nil, false
	}
	return conn, true
}

// pageWriter writes a response as gqlgen's FieldSet and Array do.
type pageWriter struct {
	buf    bytes.Buffer
	failed bool
}

// object writes the fields of plan, each value by value; a response key
// already written (the executor merges fields by it) is left out.
func (w *pageWriter) object(plan []planned, value func(*planned) bool) {
	w.buf.WriteByte('{')
	for i := range plan {
		f := &plan[i]
		if seen(plan[:i], f.Alias) {
			continue
		}
		if i > 0 {
			w.buf.WriteByte(',')
		}
		w.string(f.Alias)
		w.buf.WriteByte(':')
		if !value(f) {
			w.failed = true
			return
		}
	}
	w.buf.WriteByte('}')
}

func seen(plan []planned, alias string) bool {
	for i := range plan {
		if plan[i].Alias == alias {
			return true
		}
	}
	return false
}

// string writes s as a JSON string as gqlgen does; names, cursors and
// enum values need no escapes and are written as they are.
func (w *pageWriter) string(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			graphql.MarshalString(s).MarshalGQL(&w.buf)
			return
		}
	}
	w.buf.WriteByte('"')
	w.buf.WriteString(s)
	w.buf.WriteByte('"')
}

// list writes a JSON array of n elements, each by element.
func (w *pageWriter) list(n int, element func(i int)) {
	w.buf.WriteByte('[')
	for i := range n {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		element(i)
	}
	w.buf.WriteByte(']')
}

func (w *pageWriter) optionalString(s *string) {
	if s == nil {
		w.buf.WriteString("null")
		return
	}
	w.string(*s)
}

func (w *pageWriter) connection(plan []planned, c *model.TimeSlotConnection) {
	w.object(plan, func(f *planned) bool {
		switch f.Name {
		case "__typename":
			w.string("TimeSlotConnection")
		case "edges":
			w.list(len(c.Page.Slots), func(i int) { w.edge(f.children, c.Page.Cursor(i), &c.Page.Slots[i]) })
		case "nodes":
			w.list(len(c.Page.Slots), func(i int) { w.slot(f.children, &c.Page.Slots[i]) })
		case "pageInfo":
			w.pageInfo(f.children, c.PageInfo())
		default:
			return false
		}
		return true
	})
}

func (w *pageWriter) edge(plan []planned, cursor string, s *models.TimeSlot) {
	w.object(plan, func(f *planned) bool {
		switch f.Name {
		case "__typename":
			w.string("TimeSlotEdge")
		case "cursor":
			w.string(cursor)
		case "node":
			w.slot(f.children, s)
		default:
			return false
		}
		return true
	})
}

func (w *pageWriter) slot(plan []planned, s *models.TimeSlot) {
	w.object(plan, func(f *planned) bool {
		b := w.buf.AvailableBuffer()
		switch f.Name {
		case "__typename":
			w.string("TimeSlot")
			return true
		case "id":
			b = scalar.AppendID(b, s.ID)
		case "providerId":
			b = scalar.AppendID(b, s.ProviderID)
		case "startTime":
			b = scalar.AppendTime(b, s.StartTime)
		case "endTime":
			b = scalar.AppendTime(b, s.EndTime)
		case "date":
			b = scalar.AppendDate(b, s.Date)
		case "durationMinutes":
			b = strconv.AppendInt(b, int64(s.DurationMinutes()), 10)
		case "capacity":
			b = strconv.AppendInt(b, int64(s.Capacity), 10)
		case "bookedCount":
			b = strconv.AppendInt(b, int64(s.BookedCount), 10)
		case "remaining":
			b = strconv.AppendInt(b, int64(s.Remaining()), 10)
		case "status":
			name, ok := marshalNSlotStatus2timeslotsᚋmodelsᚐSlotStatus[s.Status]
			if !ok {
				return false // not a SlotStatus: the executor reports it
			}
			w.string(name)
			return true
		default:
			return false
		}
		w.buf.Write(b)
		return true
	})
}

func (w *pageWriter) pageInfo(plan []planned, pi *model.PageInfo) {
	w.object(plan, func(f *planned) bool {
		switch f.Name {
		case "__typename":
			w.string("PageInfo")
		case "hasNextPage":
			w.buf.WriteString(strconv.FormatBool(pi.HasNextPage))
		case "hasPreviousPage":
			w.buf.WriteString(strconv.FormatBool(pi.HasPreviousPage))
		case "startCursor":
			w.optionalString(pi.StartCursor)
		case "endCursor":
			w.optionalString(pi.EndCursor)
		default:
			return false
		}
		return true
	})
}

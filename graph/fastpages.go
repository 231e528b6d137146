package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/vektah/gqlparser/v2/ast"

	"timeslots/graph/model"
	"timeslots/graph/scalar"
	"timeslots/internal/httpx"
	"timeslots/internal/slots"
	"timeslots/models"
)

// slotPagesGQLGen is the gqlgen release whose generated code this file
// mirrors and calls: newExecutionContext, the argument code of
// Query.timeSlots, the TimeSlotFilter input unmarshaler, the SlotStatus
// enum map, and the output of graphql.FieldSet and graphql.Array, which
// pageWriter reproduces. A test fails while go.mod requires another
// release: re-read this file against the code that release generates, then
// set the constant to it.
const slotPagesGQLGen = "v0.17.98"

// slotPages answers the read every booking frontend repeats — a timeSlots
// page selecting the slots' own fields, their cursors and the page info —
// without gqlgen's per-field execution. That machinery (a field context,
// a resolver closure and a deferred group per field, a goroutine per list
// element) serves resolvers, directives and field errors, and none of
// these fields has a resolver, an argument or a directive of its own.
//
// It is a response interceptor placed after every other extension: the
// document has been parsed, validated and held to the complexity and
// shape limits, and the operation metrics see its responses like any
// other. It plans the whole selection first (fragments, aliases, @skip and
// @include through gqlgen's own CollectFields) and takes only operations
// made of the fields of slotPageFields; arguments go through the generated
// argument code and the page through the same resolver, and every value
// through the generated marshalers or the scalar package's encoders, so
// the bytes are the executor's (fastpages_test.go compares them over many
// query shapes). Anything else — another field, totalCount, provider,
// @defer, a mutation — and any error of the arguments or the resolver goes
// to the executor, which runs and reports it as usual.
//
// Guards keep it answering as the executor does: useSlotPages installs it
// only when the schema gives its fields no argument or directive
// (planSlotPages) and no extension intercepts fields, which it would skip;
// a test fails when one of its fields gets a resolver; and slotPagesGQLGen
// names the gqlgen release whose generated code it mirrors.
type slotPages struct {
	es       *executableSchema
	query    *pageType     // the answered fields of Query, planned from the schema
	answered *atomic.Int64 // counts the operations answered here; nil: not counted
}

var (
	_ graphql.HandlerExtension    = slotPages{}
	_ graphql.ResponseInterceptor = slotPages{}
)

func (slotPages) ExtensionName() string                   { return "SlotPages" }
func (slotPages) Validate(graphql.ExecutableSchema) error { return nil }

// useSlotPages installs pages on srv, after every other extension, when
// the fast path can answer as the executor would: the schema gives its
// fields no argument or directive, and none of extensions — the
// handler's only extensions besides its operation-level limits — is a
// field or root-field interceptor (tracing, field-level authorization),
// which the fast path would skip. Otherwise the executor answers every
// operation, and the first one logs a warning that says why.
func useSlotPages(srv *handler.Server, es graphql.ExecutableSchema, pages *slotPages, extensions []graphql.HandlerExtension) {
	if pages == nil {
		return
	}
	query, err := planSlotPages(es.Schema())
	if err == nil {
		err = interceptsFields(extensions)
	}
	if err != nil {
		srv.Use(slotPagesOff{reason: err, logged: &atomic.Bool{}})
		return
	}
	pages.es, pages.query = es.(*executableSchema), query
	srv.Use(*pages)
}

// slotPagesOff stands where slot pages would: it logs, with the first
// operation's logger, why the executor answers every operation.
type slotPagesOff struct {
	reason error
	logged *atomic.Bool
}

var (
	_ graphql.HandlerExtension     = slotPagesOff{}
	_ graphql.OperationInterceptor = slotPagesOff{}
)

func (slotPagesOff) ExtensionName() string                   { return "SlotPagesOff" }
func (slotPagesOff) Validate(graphql.ExecutableSchema) error { return nil }

func (o slotPagesOff) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if o.logged.CompareAndSwap(false, true) {
		httpx.Logger(ctx).Warn("the slot-page fast path is off; the executor answers every operation",
			slog.String("reason", o.reason.Error()))
	}
	return next(ctx)
}

// interceptsFields answers an error naming the first of extensions that
// intercepts fields or root fields.
func interceptsFields(extensions []graphql.HandlerExtension) error {
	for _, ext := range extensions {
		switch ext.(type) {
		case graphql.FieldInterceptor, graphql.RootFieldInterceptor:
			return fmt.Errorf("extension %s intercepts fields, which slot pages answered without the executor would skip", ext.ExtensionName())
		}
	}
	return nil
}

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
	plan, ok := planFields(oc, oc.Operation.SelectionSet, p.query)
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

// slotPageFields lists, per type, the fields the fast path answers; the
// writers below (run, connection, edge, slot, pageInfo) write exactly
// these. A field missing here sends the operation to the executor.
var slotPageFields = map[string][]string{
	"Query":              {"__typename", "timeSlots"},
	"TimeSlotConnection": {"__typename", "edges", "nodes", "pageInfo"},
	"TimeSlotEdge":       {"__typename", "cursor", "node"},
	"TimeSlot": {"__typename", "id", "providerId", "startTime", "endTime", "date",
		"durationMinutes", "capacity", "bookedCount", "remaining", "status"},
	"PageInfo": {"__typename", "hasNextPage", "hasPreviousPage", "startCursor", "endCursor"},
}

// timeSlotsArguments are the arguments of Query.timeSlots, in the order
// its resolver takes them: the one answered field with arguments.
var timeSlotsArguments = []string{"first", "after", "last", "before", "filter"}

// pageType is a type of an answered selection: the type names its
// fragments may be on, and its answered fields, each with the type of its
// value (nil for a leaf).
type pageType struct {
	satisfies []string
	fields    map[string]*pageType
}

// planSlotPages answers the answered fields of Query, with the types of
// their values, as the schema defines them; or an error when the schema
// gives one of slotPageFields an argument (but Query.timeSlots its own),
// a directive, or a type the fast path does not write.
func planSlotPages(schema *ast.Schema) (*pageType, error) {
	return planSelection(schema, slotPageFields, "slot pages do not write")
}

// planSelection answers the fields of Query that fields allows, per type,
// with the types of their values, as the schema defines them; or an error
// when the schema gives one of them an argument (but Query.timeSlots its
// own), a directive, or a type outside fields that is not a scalar or an
// enum, which the caller names as what its answers do not hold (unheld).
func planSelection(schema *ast.Schema, fields map[string][]string, unheld string) (*pageType, error) {
	planned := map[string]*pageType{}
	var plan func(name string) (*pageType, error)
	plan = func(name string) (*pageType, error) {
		if t, ok := planned[name]; ok {
			return t, nil
		}
		def := schema.Types[name]
		if def == nil || def.Kind != ast.Object {
			return nil, fmt.Errorf("%s is not an object type of the schema", name)
		}
		if len(def.Directives) > 0 {
			return nil, fmt.Errorf("type %s has a directive", name)
		}
		t := &pageType{satisfies: append([]string{def.Name}, def.Interfaces...), fields: map[string]*pageType{}}
		planned[name] = t
		for _, f := range fields[name] {
			if f == "__typename" {
				t.fields[f] = nil
				continue
			}
			fd := def.Fields.ForName(f)
			if fd == nil {
				return nil, fmt.Errorf("%s.%s is not in the schema", name, f)
			}
			if len(fd.Directives) > 0 {
				return nil, fmt.Errorf("%s.%s has a directive", name, f)
			}
			if err := checkArguments(name, fd); err != nil {
				return nil, err
			}
			valueType := fd.Type.Name()
			if _, ok := fields[valueType]; !ok {
				if vt := schema.Types[valueType]; vt == nil || (vt.Kind != ast.Scalar && vt.Kind != ast.Enum) {
					return nil, fmt.Errorf("%s.%s is of type %s, which %s", name, f, valueType, unheld)
				}
				t.fields[f] = nil
				continue
			}
			child, err := plan(valueType)
			if err != nil {
				return nil, err
			}
			t.fields[f] = child
		}
		return t, nil
	}
	if schema.Query == nil {
		return nil, fmt.Errorf("the schema has no query type")
	}
	return plan(schema.Query.Name)
}

// checkArguments refuses arguments on an answered field, but those of
// Query.timeSlots, which must be the ones its resolver is called with.
func checkArguments(typeName string, fd *ast.FieldDefinition) error {
	var want []string
	if typeName == "Query" && fd.Name == "timeSlots" {
		want = timeSlotsArguments
	}
	got := make([]string, len(fd.Arguments))
	for i, a := range fd.Arguments {
		if len(a.Directives) > 0 {
			return fmt.Errorf("%s.%s(%s) has a directive", typeName, fd.Name, a.Name)
		}
		got[i] = a.Name
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s.%s takes arguments (%s), slot pages pass (%s)",
			typeName, fd.Name, strings.Join(got, ", "), strings.Join(want, ", "))
	}
	return nil
}

// planFields collects the fields of sel on t as the executor does and
// answers them with their own plans, or false when one is not answered here.
func planFields(oc *graphql.OperationContext, sel ast.SelectionSet, t *pageType) ([]planned, bool) {
	fields := graphql.CollectFields(oc, sel, t.satisfies)
	out := make([]planned, 0, len(fields))
	for _, f := range fields {
		child, ok := t.fields[f.Name]
		if !ok || len(f.Deferrables) > 0 {
			return nil, false
		}
		pf := planned{CollectedField: f}
		if child != nil {
			if pf.children, ok = planFields(oc, f.Selections, child); !ok {
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

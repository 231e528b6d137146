package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"timeslots/internal/apperr"
	"timeslots/internal/httpx"
)

// complexityLimitCode is the code gqlgen's complexity extension sets.
const complexityLimitCode = "COMPLEXITY_LIMIT_EXCEEDED"

// requestLevelCodes maps the codes gqlgen and gqlparser put on errors about
// the request itself to the codes of the contract.
var requestLevelCodes = map[string]apperr.Code{
	errcode.ParseFailed:      apperr.BadUserInput,
	errcode.ValidationFailed: apperr.BadUserInput,
	complexityLimitCode:      apperr.QueryTooComplex,
}

// presentError is the one place where a GraphQL error gets its
// extensions.code. Coded domain errors keep their code and message (which
// names the argument at fault); errors about the request (parse,
// validation, limits, transport) become BAD_USER_INPUT or
// QUERY_TOO_COMPLEX; anything else is internal: it is logged with the
// request id and the client sees only INTERNAL_SERVER_ERROR and that id.
func presentError(ctx context.Context, err error) *gqlerror.Error {
	src := graphql.DefaultErrorPresenter(ctx, err)
	out := &gqlerror.Error{Message: src.Message, Path: src.Path, Locations: src.Locations}
	if src.Err != nil {
		// A resolver's uncoded error after the request's deadline is
		// the deadline's doing.
		err = httpx.OutOfTime(ctx, err)
	}
	if e, ok := apperr.As(err); ok {
		out.Message = e.Message
		out.Extensions = map[string]any{"code": string(e.Code)}
		if e.Field != "" {
			out.Extensions["argument"] = e.Field
		}
		if e.Code == apperr.Unavailable && e.Err != nil {
			httpx.Logger(ctx).Warn("database unavailable",
				slog.String("error", e.Err.Error()), slog.String("path", src.Path.String()))
		}
		for k, v := range e.Details {
			if _, taken := out.Extensions[k]; !taken {
				out.Extensions[k] = v
			}
		}
		return out
	}
	if code, ok := src.Extensions["code"].(string); ok {
		if mapped, ok := requestLevelCodes[code]; ok {
			out.Extensions = map[string]any{"code": string(mapped)}
			if msg, ok := operationNotFound(out.Message); ok {
				out.Message = msg
				out.Extensions["argument"] = "operationName"
			}
			// gqlparser's variable errors ("must be defined", "unknown
			// field") name the variable only in their path.
			if len(out.Path) > 1 && out.Path[0] == ast.PathName("variable") {
				name := "$" + out.Path[1:].String()
				out.Message = "variable " + name + ": " + out.Message
				out.Extensions["argument"] = name
			}
			return out
		}
		if isContractCode(code) && src.Err == nil {
			out.Extensions = map[string]any{"code": code}
			return out
		}
	}
	if src.Err == nil && len(src.Path) == 0 {
		// A message of gqlgen's transport about the request. The JSON
		// decoder's message quotes the whole body: never echo it back.
		if strings.Contains(out.Message, "could not be decoded") || strings.HasPrefix(out.Message, "json ") {
			out.Message = "the request body is not valid JSON: send {\"query\": \"…\", \"variables\": {…}}"
		}
		out.Extensions = map[string]any{"code": string(apperr.BadUserInput)}
		return out
	}
	id := httpx.RequestID(ctx)
	httpx.Logger(ctx).Error("graphql internal error",
		slog.String("error", err.Error()), slog.String("path", src.Path.String()))
	return &gqlerror.Error{
		Message:    "internal server error (request id " + id + ")",
		Path:       src.Path,
		Locations:  src.Locations,
		Extensions: map[string]any{"code": string(apperr.Internal), "requestId": id},
	}
}

// operationNotFound rewords gqlgen's "operation X not found" so that it
// names the request parameter at fault, as every BAD_USER_INPUT does.
func operationNotFound(msg string) (string, bool) {
	name, ok := strings.CutPrefix(msg, "operation ")
	if !ok {
		return "", false
	}
	if name, ok = strings.CutSuffix(name, " not found"); !ok {
		return "", false
	}
	if name == "" {
		// Without a name gqlgen fails only when there are several operations.
		return "operationName is required when the document has several operations", true
	}
	return fmt.Sprintf("operationName %q names no operation of the document", name), true
}

func isContractCode(code string) bool {
	switch apperr.Code(code) {
	case apperr.BadUserInput, apperr.NotFound, apperr.SlotUnavailable, apperr.SlotInPast, apperr.SlotTooSoon, apperr.HoldExpired,
		apperr.IdempotencyConflict, apperr.Unauthenticated, apperr.Forbidden, apperr.RateLimited,
		apperr.QueryTooComplex, apperr.Unavailable, apperr.DeadlineExceeded, apperr.SubscriptionOverflow, apperr.Internal:
		return true
	}
	return false
}

// quoteVariableValues rewrites gqlparser's refusals of variable values
// ("cannot use … as Int") so that they quote the value the client sent:
// gqlparser says "cannot use value 0 as Int" of 1.5 and "cannot use string
// as Int" of "ten". presentError then names the variable, so the client
// reads "variable $first: cannot use 1.5 as Int". A value is quoted as
// JSON, cut short so that an error never echoes a large input.
func quoteVariableValues(errs gqlerror.List, vars map[string]any) {
	for _, e := range errs {
		if len(e.Path) < 2 || e.Path[0] != ast.PathName("variable") {
			continue
		}
		rest, ok := strings.CutPrefix(e.Message, "cannot use ")
		if !ok {
			continue
		}
		as := strings.Index(rest, " as ")
		v, found := variableAt(vars, e.Path[1:])
		if as < 0 || !found {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			continue
		}
		e.Message = "cannot use " + httpx.Shorten(string(b), 40) + rest[as:]
	}
}

// variableAt answers the value at path (names and indexes) in vars.
func variableAt(vars map[string]any, path ast.Path) (any, bool) {
	var v any = vars
	for _, p := range path {
		switch p := p.(type) {
		case ast.PathName:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[string(p)]; !ok {
				return nil, false
			}
		case ast.PathIndex:
			l, ok := v.([]any)
			if !ok || int(p) < 0 || int(p) >= len(l) {
				return nil, false
			}
			v = l[p]
		default:
			return nil, false
		}
	}
	return v, true
}

// requestError is an error about the request as a whole, already coded.
func requestError(code apperr.Code, msg string) *gqlerror.Error {
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": string(code)}}
}

// writeErrors answers a GraphQL error response outside gqlgen (for the
// checks that run before it).
func writeErrors(w http.ResponseWriter, status int, errs ...*gqlerror.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(graphql.Response{Errors: errs})
}

package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"timeslots/internal/apperr"
	"timeslots/internal/httpx"
)

// transportGQLGen is the gqlgen release whose transport.POST postTransport
// reproduces, and whose transport.GET getTransport follows where it does
// not refuse. A test fails while go.mod requires another release: compare
// both with that release's transports, then set the constant to it.
const transportGQLGen = "v0.17.98"

// jsonBodiesOnly refuses, before gqlgen sees them, POST requests whose body
// is not JSON: 415, with a code, as there is no form or multipart
// transport (gqlgen would answer 400 without one).
func jsonBodiesOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				writeErrors(w, http.StatusUnsupportedMediaType,
					requestError(apperr.BadUserInput, "POST /graphql takes a JSON body with Content-Type: application/json"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// getTransport serves GET /graphql?query=… like gqlgen's transport.GET (a
// test compares their answers), but every refusal goes through the
// executor's error presenter and so carries extensions.code like any other
// error: gqlgen's own GET answers a mutation, undecodable variables and a
// websocket upgrade with a bare message and no code. Like the POST
// transport, it answers application/graphql-response+json to a client that
// asks for it (gqlgen's GET answers only application/json), gives every
// refusal before execution one status (refusalStatus), and answers a
// request its deadline ended 504 (writeExecuted). Its answers end with a
// newline.
type getTransport struct{}

var _ graphql.Transport = getTransport{}

// Supports takes every GET, upgrades included, so that a websocket attempt
// is refused here with a code rather than by gqlgen without one.
func (getTransport) Supports(r *http.Request) bool { return r.Method == http.MethodGet }

// Do parses the query string, refuses what a GET may not do, and runs the
// query.
func (getTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	contentType := responseContentType(r.Header.Get("Accept"))
	w.Header().Set("Content-Type", contentType)
	ctx := r.Context()
	refuse := func(status int, msg string) {
		w.WriteHeader(status)
		writeResponse(w, exec.DispatchError(ctx, gqlerror.List{requestError(apperr.BadUserInput, msg)}))
	}
	if r.Header.Get("Upgrade") != "" {
		refuse(http.StatusBadRequest, "GraphQL over websocket is not offered: send queries by GET or POST")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		refuse(http.StatusBadRequest, "the query string of GET /graphql could not be parsed")
		return
	}
	raw := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName"), Headers: r.Header}
	raw.ReadTime.Start = graphql.Now()
	for _, p := range []struct {
		name string
		dst  *map[string]any
	}{{"variables", &raw.Variables}, {"extensions", &raw.Extensions}} {
		if s := q.Get(p.name); s != "" {
			dec := json.NewDecoder(strings.NewReader(s))
			dec.UseNumber()
			if err := dec.Decode(p.dst); err != nil {
				refuse(http.StatusBadRequest, p.name+" must be a JSON object")
				return
			}
		}
	}
	raw.ReadTime.End = graphql.Now()

	opCtx, errs := exec.CreateOperationContext(ctx, raw)
	if errs != nil {
		quoteVariableValues(errs, raw.Variables)
		w.WriteHeader(refusalStatus(contentType))
		writeResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs))
		return
	}
	if op := opCtx.Doc.Operations.ForName(opCtx.OperationName); op.Operation != ast.Query {
		// GraphQL over HTTP: a mutation by GET is 405, and nothing runs.
		w.Header().Set("Allow", "POST")
		refuse(http.StatusMethodNotAllowed, "GET /graphql runs only queries: send a "+string(op.Operation)+" by POST")
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	writeExecuted(w, ctx, exec, responses)
	_, _ = io.WriteString(w, "\n")
}

// refusalStatus is the status of every operation refused before it ran:
// a document that does not parse or validate, an operation name that
// names none of its operations, variables that do not fit their types,
// and the limits (complexity, depth, mutation fields, parser tokens). A
// client that accepts application/graphql-response+json gets 400, as the
// GraphQL-over-HTTP specification asks; one that reads application/json
// gets 422, as it always has. gqlgen itself answers a refusal of an
// extension whose code it does not know (its own complexity limit among
// them) with 200, as if the operation had run.
func refusalStatus(contentType string) int {
	if contentType == graphqlResponseJSON {
		return http.StatusBadRequest
	}
	return http.StatusUnprocessableEntity
}

// writeExecuted writes the response of an operation that was let through:
// 200, 503 with Retry-After when the database could not serve it (the
// client should retry the operation), or 504 when the request's deadline
// ended it. The executor answers nothing (a nil response) when the
// context has ended before it ran; that is answered as DEADLINE_EXCEEDED
// too, so every request gets a coded answer.
func writeExecuted(w http.ResponseWriter, ctx context.Context, exec graphql.GraphExecutor, responses graphql.ResponseHandler) {
	resp := responses(ctx)
	if resp == nil {
		err := httpx.ErrOutOfTime
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = errEnded
		}
		resp = exec.DispatchError(ctx, gqlerror.List{gqlerror.WrapIfUnwrapped(err)})
	}
	switch {
	case hasCode(resp, apperr.Unavailable):
		w.Header().Set("Retry-After", httpx.UnavailableRetryAfter)
		w.WriteHeader(http.StatusServiceUnavailable)
	case hasCode(resp, apperr.DeadlineExceeded):
		w.WriteHeader(http.StatusGatewayTimeout)
	}
	writeJSON(w, resp)
}

// errEnded answers a request whose context ended before the executor ran
// for another reason than its deadline: the client went away.
var errEnded = apperr.E(apperr.DeadlineExceeded, "the request ended (its connection closed) before it was answered")

// hasCode reports whether one of resp's errors carries code.
func hasCode(resp *graphql.Response, code apperr.Code) bool {
	for _, e := range resp.Errors {
		if c, _ := e.Extensions["code"].(string); c == string(code) {
			return true
		}
	}
	return false
}

// writeResponse writes a GraphQL response body as json.Encoder does; the
// status is already set.
func writeResponse(w http.ResponseWriter, resp *graphql.Response) {
	writeJSON(w, resp)
	_, _ = io.WriteString(w, "\n")
}

// postTransport serves POST /graphql like gqlgen's transport.POST (no
// extra response headers, application/json unless the client accepts only
// application/graphql-response+json; a test compares their answers),
// except that it writes the response with writeJSON (json.Marshal would
// validate and copy the executor's encoding of the data once more), gives
// every refusal before execution one status (refusalStatus), and answers
// a request its deadline ended 504 (writeExecuted).
type postTransport struct{ transport.POST }

var _ graphql.Transport = postTransport{}

// Do reads the JSON body, runs the operation and writes its response.
func (postTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseContentType(r.Header.Get("Accept"))
	w.Header().Add("Content-Type", contentType)
	start := graphql.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSON(w, exec.DispatchError(ctx, gqlerror.List{gqlerror.Errorf("could not read request body: %+v", err)}))
		return
	}
	params := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(params); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, exec.DispatchError(ctx, gqlerror.List{
			gqlerror.Errorf("json request body could not be decoded: %+v body:%s", err, string(body))}))
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		quoteVariableValues(errs, params.Variables)
		w.WriteHeader(refusalStatus(contentType))
		writeJSON(w, exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	writeExecuted(w, ctx, exec, responses)
}

const graphqlResponseJSON = "application/graphql-response+json"

// responseContentType picks the response's media type from the Accept
// header as gqlgen's POST transport does.
func responseContentType(accept string) string {
	if accept == "" {
		return "application/json"
	}
	for part := range strings.SplitSeq(accept, ",") {
		mediaType, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mediaType {
		case "*/*", "application/*", "application/json":
			return "application/json"
		case graphqlResponseJSON:
			return graphqlResponseJSON
		}
	}
	return graphqlResponseJSON
}

// writeJSON writes resp as json.Marshal would. A response of data alone,
// which every successful query is, goes out as the executor encoded it,
// without json.Marshal's second pass that validates and copies it. Only
// the HTML escaping json.Marshal applies (<, >, &, U+2028, U+2029) is
// kept, for the rare data that needs it.
func writeJSON(w io.Writer, resp *graphql.Response) {
	if len(resp.Data) == 0 || len(resp.Errors) > 0 || len(resp.Extensions) > 0 ||
		resp.Label != "" || resp.Path != nil || resp.HasNext != nil {
		b, err := json.Marshal(resp)
		if err != nil {
			panic(fmt.Errorf("unable to marshal %s: %w", string(resp.Data), err))
		}
		_, _ = w.Write(b)
		return
	}
	data := []byte(resp.Data)
	if needsHTMLEscape(data) {
		var esc bytes.Buffer
		json.HTMLEscape(&esc, data)
		data = esc.Bytes()
	}
	_, _ = io.WriteString(w, `{"data":`)
	_, _ = w.Write(data)
	_, _ = io.WriteString(w, "}")
}

// needsHTMLEscape reports whether b may hold what json.HTMLEscape changes:
// <, > or &, or the lead byte 0xE2 of U+2028 and U+2029 (and of other
// characters, which HTMLEscape then leaves as they are).
func needsHTMLEscape(b []byte) bool {
	for _, c := range []byte("<>&\xe2") {
		if bytes.IndexByte(b, c) >= 0 {
			return true
		}
	}
	return false
}

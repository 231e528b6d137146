package graph

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"timeslots/internal/apperr"
)

// getTransport serves GET /graphql?query=… like gqlgen's transport.GET, but
// every refusal goes through the executor's error presenter and so carries
// extensions.code like any other error: gqlgen's own GET answers a
// mutation, undecodable variables and a websocket upgrade with a bare
// message and no code.
type getTransport struct{}

var _ graphql.Transport = getTransport{}

// Supports takes every GET, upgrades included, so that a websocket attempt
// is refused here with a code rather than by gqlgen without one.
func (getTransport) Supports(r *http.Request) bool { return r.Method == http.MethodGet }

// Do parses the query string, refuses what a GET may not do, and runs the
// query.
func (getTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	w.Header().Set("Content-Type", "application/json")
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
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			w.WriteHeader(http.StatusUnprocessableEntity)
		}
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
	writeResponse(w, responses(ctx))
}

// writeResponse writes a GraphQL response body; the status is already set.
func writeResponse(w http.ResponseWriter, resp *graphql.Response) {
	_ = json.NewEncoder(w).Encode(resp)
}

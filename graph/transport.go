package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"timeslots/internal/apperr"
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
// websocket upgrade with a bare message and no code. Its answers are
// always application/json and end with a newline.
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
	resp := responses(ctx)
	unavailableStatus(w, resp)
	writeResponse(w, resp)
}

// writeResponse writes a GraphQL response body as json.Encoder does; the
// status is already set.
func writeResponse(w http.ResponseWriter, resp *graphql.Response) {
	writeJSON(w, resp)
	_, _ = io.WriteString(w, "\n")
}

// postTransport serves POST /graphql exactly like gqlgen's transport.POST
// (no extra response headers, application/json unless the client accepts
// only application/graphql-response+json; a test compares their answers),
// except that it writes the response with writeJSON: json.Marshal would
// validate and copy the executor's encoding of the data once more.
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
		status := http.StatusOK
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			status = http.StatusUnprocessableEntity
			if contentType == graphqlResponseJSON {
				status = http.StatusBadRequest
			}
		}
		w.WriteHeader(status)
		writeJSON(w, exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	resp := responses(ctx)
	unavailableStatus(w, resp)
	writeJSON(w, resp)
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

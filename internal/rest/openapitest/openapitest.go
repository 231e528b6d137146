// Package openapitest checks HTTP answers against the REST OpenAPI document
// with getkin/kin-openapi, so tests that call the endpoints also prove the
// document true. Only tests import it.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"timeslots/internal/rest"
)

// Validator holds the loaded document and a router for one base URL.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// New loads and validates the served document and routes requests sent to
// baseURL (the test server's, e.g. http://127.0.0.1:41234).
func New(t testing.TB, baseURL string) *Validator {
	t.Helper()
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(rest.OpenAPI())
	if err != nil {
		t.Fatalf("load OpenAPI document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("OpenAPI document is version %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("OpenAPI document is invalid: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: baseURL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("route OpenAPI document: %v", err)
	}
	return &Validator{doc: doc, router: router}
}

// leaks are fragments of internal error text that no answer may carry.
var leaks = []string{
	"sql", "SELECT", "INSERT", "DELETE FROM", "UPDATE ", "pq:", "pgx", "pgconn", "SQLSTATE", "sqlite",
	"gorm", "goroutine", "panic", ".go:", "runtime.", "driver", "constraint",
}

// Check validates one answer to req. An operation the document describes
// must answer a status it lists, with a matching body and headers. A path or
// method it does not describe must answer 404 or 405 in the error shape.
// No error answer may carry SQL, driver or stack text.
func (v *Validator) Check(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	where := req.Method + " " + req.URL.RequestURI()
	if status >= 400 {
		for _, leak := range leaks {
			if strings.Contains(string(body), leak) {
				t.Errorf("%s: answer %d leaks %q: %s", where, status, leak, body)
			}
		}
	}
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			t.Errorf("%s: not in the OpenAPI document (%v), yet answered %d", where, err, status)
		}
		v.CheckSchema(t, where, "Error", body)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s: answer %d does not match the OpenAPI document: %v\nbody: %s", where, status, err, body)
	}
}

// CheckSchema validates a JSON body against a schema of the document's
// components, e.g. "Error".
func (v *Validator) CheckSchema(t testing.TB, where, schema string, body []byte) {
	t.Helper()
	ref := v.doc.Components.Schemas[schema]
	if ref == nil || ref.Value == nil {
		t.Fatalf("OpenAPI document has no schema %q", schema)
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		t.Errorf("%s: body is not JSON: %v\n%s", where, err, body)
		return
	}
	if err := ref.Value.VisitJSON(value, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("%s: body does not match schema %s: %v\n%s", where, schema, err, body)
	}
}

// Response is one answer as a client saw it.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends req with client, reads the whole answer, checks it with Check
// and returns it.
func (v *Validator) Do(t testing.TB, client *http.Client, req *http.Request) Response {
	t.Helper()
	// The router needs the request's body again after it was sent.
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			t.Fatalf("read request body: %v", err)
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", req.Method, req.URL, err)
	}
	if reqBody != nil {
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	v.Check(t, req, resp.StatusCode, resp.Header, body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// String describes a response for failure messages.
func (r Response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

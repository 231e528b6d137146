package httpx_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"timeslots/internal/httpx"
)

// TestLimitBody: a body over the limit is answered 413 before the handler
// runs, whether its length is declared or not, in the error shape of the
// endpoint; a body within the limit reaches the handler whole.
func TestLimitBody(t *testing.T) {
	t.Parallel()
	const (
		restTooLarge = `{"error":{"code":"BAD_USER_INPUT","message":"the request body is larger than the limit of 10 bytes"}}` + "\n"
		edgeTooLarge = "edge refusal BAD_USER_INPUT: the request body is larger than the limit of 10 bytes"
	)
	var (
		ran  bool
		read string
	)
	// /edge has an edge's own refusal writer, as /graphql has in the server.
	h := httpx.Refusals(edgeRefusal, httpx.Paths{"/edge"})(httpx.LimitBody(10)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran = true
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("the handler could not read the body: %v", err)
		}
		read = string(b)
	})))
	// undeclared hides the body's length, as a chunked request does.
	undeclared := func(r *http.Request) *http.Request {
		r.Body = io.NopCloser(io.MultiReader(r.Body))
		r.ContentLength = -1
		return r
	}
	for _, tc := range []struct {
		name   string
		req    *http.Request
		status int
		answer string // the whole answer on a refusal, the body read on success
	}{
		{"a declared body over the limit on a REST path", httptest.NewRequest(http.MethodPost, "/api/admin/time-slots", strings.NewReader(strings.Repeat("x", 11))),
			http.StatusRequestEntityTooLarge, restTooLarge},
		{"a declared body over the limit on an edge path", httptest.NewRequest(http.MethodPost, "/edge", strings.NewReader(strings.Repeat("x", 11))),
			http.StatusRequestEntityTooLarge, edgeTooLarge},
		{"an undeclared body over the limit on a REST path", undeclared(httptest.NewRequest(http.MethodPost, "/api/admin/time-slots", strings.NewReader(strings.Repeat("x", 20)))),
			http.StatusRequestEntityTooLarge, restTooLarge},
		{"an undeclared body over the limit on an edge path", undeclared(httptest.NewRequest(http.MethodPost, "/edge", strings.NewReader(strings.Repeat("x", 11)))),
			http.StatusRequestEntityTooLarge, edgeTooLarge},
		{"a declared body at the limit", httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader("0123456789")),
			http.StatusOK, "0123456789"},
		{"an undeclared body at the limit", undeclared(httptest.NewRequest(http.MethodPost, "/api/admin/time-slots", strings.NewReader("0123456789"))),
			http.StatusOK, "0123456789"},
		{"no body", httptest.NewRequest(http.MethodGet, "/api/time-slots", nil),
			http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran, read = false, ""
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tc.req)
			if w.Code != tc.status {
				t.Fatalf("HTTP %d %s, want %d", w.Code, w.Body, tc.status)
			}
			if tc.status == http.StatusOK {
				if !ran || read != tc.answer {
					t.Fatalf("the handler ran %v and read %q, want %q", ran, read, tc.answer)
				}
				return
			}
			if ran {
				t.Error("the handler ran for a body over the limit")
			}
			if got := w.Body.String(); got != tc.answer {
				t.Errorf("answered\n  %s\nwant\n  %s", got, tc.answer)
			}
			if w.Header().Get("Connection") != "close" {
				t.Errorf("Connection %q, want close", w.Header().Get("Connection"))
			}
		})
	}
}

// TestLimitBodyRefusesABodyCutShort: a body that ends before its declared
// length is refused with BAD_USER_INPUT, and the handler does not run.
func TestLimitBodyRefusesABodyCutShort(t *testing.T) {
	t.Parallel()
	ran := false
	h := httpx.LimitBody(100)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { ran = true }))
	r := httptest.NewRequest(http.MethodPost, "/api/admin/time-slots", strings.NewReader("12345"))
	r.ContentLength = 10
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"BAD_USER_INPUT"`) || ran {
		t.Errorf("HTTP %d %s (handler ran: %v), want 400 BAD_USER_INPUT", w.Code, w.Body, ran)
	}
}

package httpx_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"timeslots/internal/httpx"
)

// restError decodes the REST error body of an answer, failing the test
// when it is not one.
func restError(t *testing.T, rec *httptest.ResponseRecorder) httpx.ErrorDetail {
	t.Helper()
	var body httpx.ErrorBody
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("answer %d has Content-Type %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code == "" {
		t.Fatalf("answer %d is not a coded error: %v %s", rec.Code, err, rec.Body)
	}
	return body.Error
}

// What no route takes is answered in the error shape of its path (404 with
// NOT_FOUND, 405 with Allow), never ServeMux's plain text; routed requests
// and the mux's redirects are the mux's.
func TestUnroutedRequestsAreCodedErrors(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	var pattern string
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { pattern = r.Pattern })
	mux.HandleFunc("POST /graphql", func(w http.ResponseWriter, r *http.Request) {})
	h := httpx.Refusals(edgeRefusal, httpx.Paths{"/graphql", "/graphql/"})(httpx.Unrouted(mux))
	serve := func(method, target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		return rec
	}

	rec := serve(http.MethodGet, "/healthz")
	if rec.Code != http.StatusOK || pattern != "GET /healthz" {
		t.Fatalf("a routed request: %d, pattern %q", rec.Code, pattern)
	}
	rec = serve(http.MethodGet, "/nope")
	if e := restError(t, rec); rec.Code != http.StatusNotFound || e.Code != "NOT_FOUND" || !strings.Contains(e.Message, "/nope") {
		t.Fatalf("an unknown path: %d %+v", rec.Code, e)
	}
	rec = serve(http.MethodGet, "/"+strings.Repeat("x", 5000))
	if e := restError(t, rec); rec.Code != http.StatusNotFound || len(e.Message) > 300 {
		t.Fatalf("a long unknown path: %d, a message of %d bytes", rec.Code, len(e.Message))
	}
	rec = serve(http.MethodDelete, "/healthz")
	if e := restError(t, rec); rec.Code != http.StatusMethodNotAllowed || e.Code != "BAD_USER_INPUT" ||
		rec.Header().Get("Allow") != "GET, HEAD" || !strings.Contains(e.Message, "DELETE") {
		t.Fatalf("a wrong method: %d, Allow %q, %+v", rec.Code, rec.Header().Get("Allow"), e)
	}
	rec = serve(http.MethodGet, "/graphql")
	if rec.Code != http.StatusMethodNotAllowed || !strings.HasPrefix(rec.Body.String(), "edge refusal BAD_USER_INPUT") {
		t.Fatalf("a wrong method on an edge with its own refusals: %d %s", rec.Code, rec.Body)
	}
	rec = serve(http.MethodGet, "/graphql/x")
	if rec.Code != http.StatusNotFound || !strings.HasPrefix(rec.Body.String(), "edge refusal NOT_FOUND") {
		t.Fatalf("an unknown path under an edge with its own refusals: %d %s", rec.Code, rec.Body)
	}
	rec = serve(http.MethodGet, "/x/../healthz")
	if rec.Code != http.StatusTemporaryRedirect || rec.Header().Get("Location") != "/healthz" {
		t.Fatalf("a path to clean: %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
}

// HeaderBytes counts what the client wrote for the request line and
// headers, byte for byte, and LimitHeaders refuses a request over its
// limit with 431 in the error shape.
func TestLimitHeaders(t *testing.T) {
	t.Parallel()
	counted := make(chan int, 1)
	srv := httptest.NewServer(httpx.LimitHeaders(4096)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		counted <- httpx.HeaderBytes(r)
	})))
	t.Cleanup(srv.Close)

	for _, pad := range []int{0, 100, 3000} {
		head := fmt.Sprintf("GET /a/b?c=d HTTP/1.1\r\nHost: %s\r\nX-Pad: %s\r\nX-Two: 1\r\nx-two: 2\r\nConnection: close\r\n\r\n",
			srv.Listener.Addr(), strings.Repeat("p", pad))
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		conn.Close()
		if got := <-counted; got != len(head) {
			t.Errorf("%d bytes of padding: counted %d, sent %d", pad, got, len(head))
		}
	}

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/?q="+strings.Repeat("q", 5000), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body httpx.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge ||
		body.Error.Code != "BAD_USER_INPUT" || !strings.Contains(body.Error.Message, "4096") {
		t.Fatalf("a 5 KB URL: %d %+v %v", resp.StatusCode, body, err)
	}
	select {
	case n := <-counted:
		t.Fatalf("the handler ran for a request of %d bytes", n)
	default:
	}
}

// Shorten keeps text within max bytes, cut on a character boundary and
// marked, and leaves text that fits as it is.
func TestShortenCutsOnACharacterBoundary(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 5, "short"},
		{"longer", 5, "longe…"},
		{"ab€", 3, "ab…"}, // € is 3 bytes: not split
		{"€€", 4, "€…"},
		{"", 0, ""},
	} {
		if got := httpx.Shorten(c.in, c.max); got != c.want {
			t.Errorf("Shorten(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

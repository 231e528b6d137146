package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// TestBothLoadGeneratorsJudgeEachAnswerLikeVerify answers every request
// of a load with one answer, right or wrong, and runs the load on wrk
// (load.lua's check) and on vegeta (answerCheck.verifyResult): each must
// count every request as failed exactly when verify refuses the answer,
// and report verify's own words as the first error.
func TestBothLoadGeneratorsJudgeEachAnswerLikeVerify(t *testing.T) {
	requireWrk(t)
	long := strings.Repeat("0123456789", 30)
	confirmed := `{"data":{"bookSlot":{"booking":{"id":"9","status":"CONFIRMED"},"slot":{"id":"9","remaining":0,"status":"BOOKED"}}}}`
	for _, tc := range []struct {
		name   string
		e      endpoint
		status int
		body   string
	}{
		{"a full page", graphqlRead.endpoint, http.StatusOK, page(pageSize)},
		{"a page short of a slot", restRead.endpoint, http.StatusOK, page(pageSize - 1)},
		{"a page with a slot too many", restRead.endpoint, http.StatusOK, page(pageSize + 1)},
		{"GraphQL errors beside a full page", graphqlRead.endpoint, http.StatusOK, `{"errors":[{"message":"boom"}],"data":` + page(pageSize) + `}`},
		{"a server error", restRead.endpoint, http.StatusInternalServerError, `{"error":{"code":"INTERNAL_SERVER_ERROR"}}`},
		{"a refusal longer than the quoted head", graphqlRead.endpoint, http.StatusBadRequest, long},
		{"a confirmed booking", bookSlot, http.StatusOK, confirmed},
		{"two confirmed bookings", bookSlot, http.StatusOK, confirmed + confirmed},
		{"a booking refused", bookSlot, http.StatusOK, `{"errors":[{"message":"slot is full","extensions":{"code":"SLOT_UNAVAILABLE"}}],"data":null}`},
		{"a booking not confirmed", bookSlot, http.StatusOK, strings.ReplaceAll(confirmed, "CONFIRMED", "CANCELLED")},
		{"control characters and bytes beyond ASCII in a wrong answer", bookSlot, http.StatusOK, "\x00\xff\"\\ é " + long},
		{"a healthy server", healthz, http.StatusOK, ""},
		{"an unhealthy server, its answer ending in a line break", healthz, http.StatusServiceUnavailable, "database down\r\n"},
	} {
		want := tc.e.Check.verify(tc.status, []byte(tc.body))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		l := load{endpoint: tc.e, Deal: true, Requests: []request{{Path: "/a"}, {Path: "/b"}, {Path: "/c"}}}
		if tc.e.Method == http.MethodPost {
			for i := range l.Requests {
				l.Requests[i].Body = []byte("{}")
			}
		}
		wrkRes, _, err := runWrk(t.Context(), srv.URL, l, 2, 30*time.Second)
		if err != nil {
			t.Fatalf("%s: wrk: %v", tc.name, err)
		}
		vegetaRes := runLoad(t.Context(), srv.URL, l, 2, 0, 0)
		srv.Close()
		for _, got := range []struct {
			gen string
			res loadResult
		}{{"wrk", wrkRes}, {"vegeta", vegetaRes}} {
			if got.res.Requests != 3 {
				t.Fatalf("%s: %s sent %d requests, want 3", tc.name, got.gen, got.res.Requests)
			}
			switch {
			case want == nil && (got.res.Errors != 0 || got.res.FirstError != ""):
				t.Errorf("%s: verify accepts the answer; %s counted %d failures, first %q", tc.name, got.gen, got.res.Errors, got.res.FirstError)
			case want != nil && (got.res.Errors != 3 || got.res.FirstError != want.Error()):
				t.Errorf("%s: verify refuses the answer with\n\t%q\n%s counted %d of 3, first\n\t%q", tc.name, want, got.gen, got.res.Errors, got.res.FirstError)
			}
		}
	}
}

// TestBothLoadGeneratorsSendEachRequestByteForByte deals a load of
// requests whose paths and bodies hold every byte value, Lua's quote and
// escape characters, an escape followed by digits and a long bracket, on
// wrk and on vegeta: the server must receive each request exactly once,
// with its method, content type, path and body as the load defines them.
func TestBothLoadGeneratorsSendEachRequestByteForByte(t *testing.T) {
	requireWrk(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	bodies := [][]byte{nil, {}, all, []byte(`"\"\\\n'`), []byte("\x001\x0012\n9]]]=]"), []byte(`{"query":"<a & b>"}`)}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		b := make([]byte, r.IntN(400))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		bodies = append(bodies, b)
	}
	l := load{endpoint: endpoint{Name: "echo", Method: http.MethodPost, ContentType: "application/octet-stream", Check: answerCheck{Status: http.StatusOK}}, Deal: true}
	for i, b := range bodies {
		q := url.Values{"i": {fmt.Sprint(i)}, "q": {string(bodies[2][32:127])}}
		l.Requests = append(l.Requests, request{Path: "/echo/" + fmt.Sprint(i) + "?" + q.Encode(), Body: b})
	}
	for _, gen := range []struct {
		name string
		run  func(url string) (loadResult, error)
	}{
		{"wrk", func(url string) (loadResult, error) {
			res, _, err := runWrk(t.Context(), url, l, 4, 30*time.Second)
			return res, err
		}},
		{"vegeta", func(url string) (loadResult, error) { return runLoad(t.Context(), url, l, 4, 0, 0), nil }},
	} {
		var mu sync.Mutex
		got := map[string][][]byte{}
		var wrong []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || r.Method != l.Method || r.Header.Get("Content-Type") != l.ContentType {
				wrong = append(wrong, fmt.Sprintf("%s %s (%s): %v", r.Method, r.URL, r.Header.Get("Content-Type"), err))
			}
			got[r.URL.RequestURI()] = append(got[r.URL.RequestURI()], body)
		}))
		res, err := gen.run(srv.URL)
		srv.Close()
		if err != nil {
			t.Fatalf("%s: %v", gen.name, err)
		}
		if res.Errors > 0 || len(wrong) > 0 {
			t.Fatalf("%s: %d failed answers (%s); requests unlike the load's: %q", gen.name, res.Errors, res.FirstError, wrong)
		}
		if len(got) != len(l.Requests) {
			t.Fatalf("%s: %d distinct paths arrived, want %d", gen.name, len(got), len(l.Requests))
		}
		for i, req := range l.Requests {
			arrived := got[req.Path]
			if len(arrived) != 1 {
				t.Fatalf("%s: request %d arrived %d times", gen.name, i, len(arrived))
			}
			if !bytes.Equal(arrived[0], req.Body) {
				t.Fatalf("%s: request %d: body %q arrived as %q", gen.name, i, req.Body, arrived[0])
			}
		}
	}
}

// TestLuaQuoteEscapesWhatLuaWouldReadOtherwise pins the escapes luaQuote
// writes; TestBothLoadGeneratorsSendEachRequestByteForByte proves that Lua
// reads them back.
func TestLuaQuoteEscapesWhatLuaWouldReadOtherwise(t *testing.T) {
	for in, want := range map[string]string{
		"":                `""`,
		`say "hi"`:        `"say \"hi\""`,
		`a\b`:             `"a\\b"`,
		"\x001\n2\r\t":    `"\0001\0102\013\009"`,
		"]]=] <&> é":      `"]]=] <&> \195\169"`,
		"\x7f\x80\xff~ !": `"\127\128\255~ !"`,
	} {
		if got := luaQuote(in); got != want {
			t.Errorf("luaQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestTargeterDealsEachRequestOnceAndDrawsFromTheLoad checks vegeta's side
// of a load without a server: a Deal load yields each request once, in
// order, then vegeta.ErrNoTargets; any other draws from its requests.
func TestTargeterDealsEachRequestOnceAndDrawsFromTheLoad(t *testing.T) {
	reqs := []request{{Path: "/a"}, {Path: "/b", Body: []byte("x")}, {Path: "/c"}}
	l := load{endpoint: endpoint{Method: http.MethodPut, ContentType: "text/plain"}, Requests: reqs, Deal: true}
	tr := l.targeter("http://h")
	var urls []string
	for {
		var tg vegeta.Target
		if err := tr(&tg); err != nil {
			if !errors.Is(err, vegeta.ErrNoTargets) {
				t.Fatal(err)
			}
			break
		}
		if tg.Method != http.MethodPut || tg.Header.Get("Content-Type") != "text/plain" {
			t.Fatalf("target %+v", tg)
		}
		urls = append(urls, tg.URL)
	}
	if want := []string{"http://h/a", "http://h/b", "http://h/c"}; !slices.Equal(urls, want) {
		t.Fatalf("dealt %q, want %q", urls, want)
	}
	l.Deal = false
	tr = l.targeter("http://h")
	seen := map[string]int{}
	for range 300 {
		var tg vegeta.Target
		if err := tr(&tg); err != nil {
			t.Fatal(err)
		}
		seen[tg.URL]++
	}
	if len(seen) != 3 || seen["http://h/a"] < 50 || seen["http://h/b"] < 50 || seen["http://h/c"] < 50 {
		t.Fatalf("drew %v from 3 requests", seen)
	}
}

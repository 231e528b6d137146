package main

// What the package's end-to-end tests share: one way to start the server
// (startServer), one way to send it a request (getAnswer), one GraphQL
// client (postGraphQL) and one way to open the server's database beside it
// (openDatabase).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// testServer is the real program, started by run, as the end-to-end tests
// talk to it.
type testServer struct {
	URL         string // http://127.0.0.1:port
	DatabaseURL string
	out         *outputBuffer
	stop        func() error
	// stoppedByTest is set once the test has called Stop.
	stoppedByTest atomic.Bool
}

// Logs answers everything the server has written so far (its JSON logs).
func (s *testServer) Logs() string { return s.out.String() }

// Stop cancels run's context, waits for run to return and answers its
// result; later calls answer the same result. A test that calls Stop
// judges the result itself.
func (s *testServer) Stop() error {
	s.stoppedByTest.Store(true)
	return s.stop()
}

// WaitForLog waits until the server has logged a line matching re.
func (s *testServer) WaitForLog(t testing.TB, re *regexp.Regexp) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !re.MatchString(s.Logs()); {
		if time.Now().After(deadline) {
			t.Fatalf("no log line like %s\n%s", re, s.Logs())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bearer answers the header of a request that carries token ("" for none)
// and, when json is set, a JSON body.
func bearer(token string, json bool) http.Header {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if json {
		h.Set("Content-Type", "application/json")
	}
	return h
}

// testEnv answers the configuration most end-to-end tests run the server
// with: loopback, port 0, a fresh database of dialect d (unless env names
// one), no scheduler, no rate limit and a generous request timeout, with
// env on top.
func testEnv(t testing.TB, d database.Dialect, env map[string]string) map[string]string {
	t.Helper()
	vars := map[string]string{
		"HOST":              "127.0.0.1",
		"PORT":              "0",
		"SCHEDULER_ENABLED": "false",
		"RATE_LIMIT_RPS":    "0",
		// Under -race on a busy test machine a 30-day generation on SQLite
		// can outlast the production default of 10 s.
		"REQUEST_TIMEOUT": "2m",
	}
	if _, ok := env["DATABASE_URL"]; !ok {
		vars["DATABASE_URL"] = dbtest.URL(t, d)
	}
	maps.Copy(vars, env)
	return vars
}

// pastDemoNotice answers the first date (UTC) whose slots no demo
// provider's minimum notice refuses, whatever the hour: the day after
// tomorrow, as the longest notice is a day (slots.DemoProviders).
func pastDemoNotice() string { return time.Now().UTC().AddDate(0, 0, 2).Format(time.DateOnly) }

// startServer runs the program as main does, with env as its whole
// environment, and answers it once it listens. A server that stops before
// it listens fails the test. A server the test has not stopped is stopped
// when the test ends; run answering an error fails the test.
func startServer(t *testing.T, env map[string]string) *testServer {
	t.Helper()
	env = maps.Clone(env)
	out := newOutputBuffer()
	ctx, cancel := context.WithCancel(context.Background())
	listened := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(context.WithValue(ctx, listenedKey{}, (chan<- string)(listened)), []string{"timeslots"}, envOf(env), out, out)
	}()
	var base string
	select {
	case base = <-listened:
	case err := <-done:
		cancel()
		t.Fatalf("server stopped before listening: %v\n%s", err, out.String())
	}
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	s := &testServer{URL: base, DatabaseURL: env["DATABASE_URL"], out: out, stop: stop}
	t.Cleanup(func() {
		if err := stop(); err != nil && !s.stoppedByTest.Load() {
			t.Errorf("server shutdown: %v", err)
		}
	})
	return s
}

// listeningLine is the line the program logs once it accepts requests.
var listeningLine = regexp.MustCompile(`"msg":"listening","url":"(http://[^"]+)"`)

// outputBuffer collects a program's output while the test reads it, and
// sends the program's address on ready as soon as its "listening" line
// is written.
type outputBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	ready  chan string
	signal bool
}

func newOutputBuffer() *outputBuffer {
	return &outputBuffer{ready: make(chan string, 1)}
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if !b.signal {
		if m := listeningLine.FindSubmatch(b.buf.Bytes()); m != nil {
			b.signal = true
			b.ready <- string(m[1])
		}
	}
	return n, err
}

func (b *outputBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// answer is one HTTP answer as a client saw it.
type answer struct {
	URL    *url.URL // the URL that answered, after any redirects
	Status int
	Header http.Header
	Body   []byte
}

// String describes the answer in failure messages.
func (a answer) String() string { return fmt.Sprintf("%d %s", a.Status, a.Body) }

// getAnswer sends one request of any method with client (http.DefaultClient
// when nil) and gets its whole answer. header is sent as given (a
// Content-Type too: none is added); body, when not nil, is sent as it reads.
// The error is set only when no whole answer came, and it takes no testing.TB
// so that goroutines can send requests too.
func getAnswer(client *http.Client, method, url string, header http.Header, body io.Reader) (answer, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return answer{}, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: read the answer: %w", method, url, err)
	}
	return answer{URL: resp.Request.URL, Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

// gqlResult is one GraphQL answer as a client sees it: the HTTP answer and
// its body decoded.
type gqlResult struct {
	answer     `json:"-"`
	Data       json.RawMessage `json:"data"`
	Errors     []gqlError      `json:"errors"`
	Extensions map[string]any  `json:"extensions"`
}

// gqlError is one entry of a GraphQL answer's errors.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code answers the extensions.code of the first error, "" when none.
func (r gqlResult) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// Decode reads data into v, failing the test when the answer has errors.
func (r gqlResult) Decode(t testing.TB, v any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("unexpected errors (HTTP %d): %s", r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode data: %v\n%s", err, r.Body)
	}
}

// parseGraphQL decodes a as a GraphQL answer; an error when its body is
// not a GraphQL answer's JSON.
func parseGraphQL(a answer) (gqlResult, error) {
	r := gqlResult{answer: a}
	if err := json.Unmarshal(a.Body, &r); err != nil {
		return r, fmt.Errorf("HTTP %d: answer is not GraphQL JSON: %v\n%s", a.Status, err, a.Body)
	}
	return r, nil
}

// postGraphQL sends one operation as GraphiQL and other clients do, a JSON
// body to POST base+"/graphql", with header on top of the JSON content
// headers, and answers the decoded answer. No answer, or one that is not
// GraphQL's JSON, fails the test.
func postGraphQL(t testing.TB, base, query string, vars map[string]any, header http.Header) gqlResult {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	maps.Copy(h, header)
	a, err := getAnswer(nil, http.MethodPost, base+"/graphql", h, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseGraphQL(a)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// openDatabase opens the database behind a DATABASE_URL as a second client
// beside the server would, closed when the test ends.
func openDatabase(t testing.TB, url string) *database.DB {
	t.Helper()
	target, err := database.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	db, err := database.Open(context.Background(), target, database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

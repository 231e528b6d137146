package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"timeslots/models"
)

// Every endpoint the loads exercise is defined once, in this file: the
// requests it is sent and the check each answer must pass. wrk's data
// (load.luaData), vegeta's targets (load.targeter) and the single requests
// of the SQL captures (endpoint.send) are all made from these definitions,
// so both load generators send the same bytes and judge every answer by
// the same check: answerCheck.verify here, its twin check() in load.lua,
// and a test runs both on the same answers.

// pageSize is the page every read asks for.
const pageSize = 20

// timeSlotsQuery asks for the fields the REST shim answers (the same data
// both ways), with the edge cursors and the page info a client pages by.
const timeSlotsQuery = `query Slots($p: ID!, $s: Date!, $e: Date!) { timeSlots(first: 20, filter: {providerId: $p, startDate: $s, endDate: $e}) { edges { cursor node { id providerId startTime endTime date status capacity bookedCount } } pageInfo { hasNextPage endCursor } } }`

// bookMutation books one seat of slot $s for customer $c.
const bookMutation = `mutation Book($s: ID!, $c: String!) { bookSlot(input: {slotId: $s, customer: $c}) { booking { id status } slot { id remaining status } } }`

// noGraphQLErrors refuses an answer that carries GraphQL errors.
var noGraphQLErrors = bodyRule{What: "GraphQL errors", Text: `"errors"`, Min: 0, Max: 0}

// pageCheck accepts a 200 answer without GraphQL errors that holds exactly
// one full page of slots (each slot has one "id" key; a REST slot's
// providerId is "providerId").
var pageCheck = answerCheck{Status: http.StatusOK, Rules: []bodyRule{
	noGraphQLErrors,
	{What: "slots", Text: `"id":`, Min: pageSize, Max: pageSize},
}}

// readAPI is one of the two read endpoints, with its request for one
// provider and one window.
type readAPI struct {
	endpoint
	request func(pid int64, w window) request
}

var graphqlRead = readAPI{
	endpoint: endpoint{Name: "GraphQL timeSlots", Method: http.MethodPost, ContentType: "application/json", Check: pageCheck},
	request: func(pid int64, w window) request {
		return request{Path: "/graphql", Body: graphqlBody(timeSlotsQuery, struct {
			P string      `json:"p"`
			S models.Date `json:"s"`
			E models.Date `json:"e"`
		}{strconv.FormatInt(pid, 10), w.Start, w.End})}
	},
}

var restRead = readAPI{
	endpoint: endpoint{Name: "REST /api/time-slots", Method: http.MethodGet, Check: pageCheck},
	request: func(pid int64, w window) request {
		return request{Path: fmt.Sprintf("/api/time-slots?providerId=%d&startDate=%s&endDate=%s&limit=%d", pid, w.Start, w.End, pageSize)}
	},
}

// bookSlot is bookMutation over GraphQL; a right answer confirms the
// booking.
var bookSlot = endpoint{Name: "GraphQL bookSlot", Method: http.MethodPost, ContentType: "application/json",
	Check: answerCheck{Status: http.StatusOK, Rules: []bodyRule{
		noGraphQLErrors,
		{What: "confirmed bookings", Text: `"CONFIRMED"`, Min: 1, Max: -1},
	}}}

// bookRequest books one seat of slotID for customer.
func bookRequest(slotID int64, customer string) request {
	return request{Path: "/graphql", Body: graphqlBody(bookMutation, struct {
		S string `json:"s"`
		C string `json:"c"`
	}{strconv.FormatInt(slotID, 10), customer})}
}

// healthz is GET /healthz, which the server answers without the database
// through the same middleware as every other request.
var healthz = endpoint{Name: "GET /healthz", Method: http.MethodGet, Check: answerCheck{Status: http.StatusOK}}

// healthzRequest is healthz's one request.
var healthzRequest = request{Path: "/healthz"}

// graphqlBody answers the JSON body of a GraphQL operation, with the query
// first as clients write it.
func graphqlBody(query string, vars any) []byte {
	b, err := json.Marshal(struct {
		Query     string `json:"query"`
		Variables any    `json:"variables"`
	}{query, vars})
	if err != nil {
		panic(fmt.Sprintf("graphql body: %v", err)) // strings only: cannot fail
	}
	return b
}

// request is one HTTP request of an endpoint.
type request struct {
	Path string // with its query string
	Body []byte // nil: the request has none
}

// endpoint is one operation the loads exercise: how its requests are sent
// and what each answer must show to count as right.
type endpoint struct {
	Name        string
	Method      string
	ContentType string // the requests' Content-Type; "" when they have no body
	Check       answerCheck
}

// answerCheck is what an answer must show: its HTTP status, and how often
// each rule's text occurs in its body.
type answerCheck struct {
	Status int
	Rules  []bodyRule
}

// bodyRule asks an answer's body to hold Text (counted without overlaps)
// between Min and Max times; Max < 0 sets no upper bound.
type bodyRule struct {
	What     string // what the text stands for, named in a failure
	Text     string
	Min, Max int
}

// want answers the rule's bound as a failure states it.
func (r bodyRule) want() string {
	switch {
	case r.Max < 0:
		return "at least " + strconv.Itoa(r.Min)
	case r.Min == r.Max:
		return strconv.Itoa(r.Min)
	default:
		return strconv.Itoa(r.Min) + " to " + strconv.Itoa(r.Max)
	}
}

// head is the start of a body as a failure quotes it: its first 200 bytes,
// each control character (a line break, a NUL) written as a space, so the
// failure stays one line of text (load.lua's head() is the same).
func head(body []byte) string {
	h := []byte(string(body[:min(len(body), 200)]))
	for i, c := range h {
		if c < ' ' || c == 0x7f {
			h[i] = ' '
		}
	}
	return string(h)
}

// verify answers why an answer fails the check, or nil. load.lua's check()
// is the same function in Lua and words its failures the same way.
func (c answerCheck) verify(status int, body []byte) error {
	if status != c.Status {
		return fmt.Errorf("HTTP %d: %s", status, head(body))
	}
	for _, r := range c.Rules {
		n := bytes.Count(body, []byte(r.Text))
		if n < r.Min || (r.Max >= 0 && n > r.Max) {
			return fmt.Errorf("%s %d, want %s: %s", r.What, n, r.want(), head(body))
		}
	}
	return nil
}

// verifyResult is verify for an answer vegeta got; its Error also carries
// what went wrong before an answer came or while its body was read (with
// no status, or with one below 400: vegeta writes the status text there
// for 4xx and 5xx, which verify words itself).
func (c answerCheck) verifyResult(r *vegeta.Result) error {
	if r.Error != "" && r.Code < 400 {
		return errors.New(r.Error)
	}
	return c.verify(int(r.Code), r.Body)
}

// httpRequest answers r as a request of e to the server at base.
func (e endpoint) httpRequest(ctx context.Context, base string, r request) (*http.Request, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, e.Method, base+r.Path, body)
	if err != nil {
		return nil, err
	}
	if e.ContentType != "" {
		req.Header.Set("Content-Type", e.ContentType)
	}
	return req, nil
}

// do sends r to the server at base and answers the status and body.
func (e endpoint) do(ctx context.Context, client *http.Client, base string, r request) (int, []byte, error) {
	req, err := e.httpRequest(ctx, base, r)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// send sends r and holds the answer to e's check.
func (e endpoint) send(ctx context.Context, client *http.Client, base string, r request) error {
	status, body, err := e.do(ctx, client, base, r)
	if err != nil {
		return err
	}
	return e.Check.verify(status, body)
}

// load is what one load run sends an endpoint: its requests, and how they
// are sent. By default every request draws one of them at random; a Deal
// load sends each of them once (wrk deals them to its threads in turn).
type load struct {
	endpoint
	Requests []request
	Deal     bool
}

// readsOf is api's reads of every provider of ds in every window of wins:
// each request draws a provider and a window at random.
func readsOf(api readAPI, ds *dataset, wins []window) load {
	l := load{endpoint: api.endpoint, Requests: make([]request, 0, len(ds.providers)*len(wins))}
	for _, p := range ds.providers {
		for _, w := range wins {
			l.Requests = append(l.Requests, api.request(p.ID, w))
		}
	}
	return l
}

// bookingsOf books each of slots once, by customer-<slot id>.
func bookingsOf(slots []int64) load {
	l := load{endpoint: bookSlot, Deal: true, Requests: make([]request, 0, len(slots))}
	for _, id := range slots {
		l.Requests = append(l.Requests, bookRequest(id, "customer-"+strconv.FormatInt(id, 10)))
	}
	return l
}

// healthChecks is GET /healthz, over and over.
func healthChecks() load {
	return load{endpoint: healthz, Requests: []request{healthzRequest}}
}

// target answers r as vegeta's target on the server at base.
func (e endpoint) target(base string, r request) vegeta.Target {
	t := vegeta.Target{Method: e.Method, URL: base + r.Path, Body: r.Body}
	if e.ContentType != "" {
		t.Header = http.Header{"Content-Type": []string{e.ContentType}}
	}
	return t
}

// targeter answers l's requests as vegeta's targets on the server at base:
// a random one each time, or each once in order for a Deal load (then
// vegeta.ErrNoTargets). vegeta's workers call it concurrently.
func (l load) targeter(base string) vegeta.Targeter {
	var mu sync.Mutex
	next := 0
	return func(t *vegeta.Target) error {
		var r request
		if l.Deal {
			mu.Lock()
			if next == len(l.Requests) {
				mu.Unlock()
				return vegeta.ErrNoTargets
			}
			r = l.Requests[next]
			next++
			mu.Unlock()
		} else {
			r = l.Requests[rand.IntN(len(l.Requests))]
		}
		*t = l.target(base, r)
		return nil
	}
}

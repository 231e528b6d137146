package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/models"
)

// page answers a body like the read endpoints' with n slots.
func page(n int) string {
	var b strings.Builder
	b.WriteString(`{"data":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"providerId":7}`, i+1)
	}
	b.WriteString(`],"nextCursor":null}`)
	return b.String()
}

// generators are the two load generators, each running a load against
// url for a second: wrk's closed loop on 4 connections, vegeta at a fixed
// 300 requests/s. inFlight is how many answers a generator may not have
// counted when it stops (wrk stops with requests in flight; vegeta waits
// for every answer).
var generators = []struct {
	name     string
	run      func(t *testing.T, url string, l load) loadResult
	inFlight int64
}{
	{"wrk", func(t *testing.T, url string, l load) loadResult {
		res, cpu, err := runWrk(t.Context(), url, l, 4, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests < 100 || res.RPS <= 0 || res.P50 <= 0 || res.P99 < res.P50 || cpu <= 0 {
			t.Fatalf("implausible load: %+v, wrk CPU %s", res, cpu)
		}
		return res
	}, 8},
	{"vegeta", func(t *testing.T, url string, l load) loadResult {
		res := runLoad(t.Context(), url, l, 4, 300, time.Second)
		if res.Requests < 250 || res.RPS <= 0 || res.P50 <= 0 || res.P99 < res.P50 {
			t.Fatalf("implausible load: %+v", res)
		}
		return res
	}, 0},
}

// TestReadsSendDrawnRequestsAndCountEveryBadAnswer runs the read loads on
// both load generators against a server that answers some requests
// wrongly (too few slots, a GraphQL error, a 500): each must send only the
// endpoint's requests, drawn at random, and report every wrong answer,
// and nothing when all answers are right.
func TestReadsSendDrawnRequestsAndCountEveryBadAnswer(t *testing.T) {
	requireWrk(t)
	ds := &dataset{providers: []models.Provider{{ID: 11}, {ID: 12}, {ID: 13}}, today: "2030-01-07"}
	wins := readWindows(ds, 0)
	for _, tc := range []struct {
		name    string
		api     readAPI
		badEach int64 // every badEach-th answer is wrong; 0: none
	}{
		{"REST, every answer right", restRead, 0},
		{"REST, every 7th answer wrong", restRead, 7},
		{"GraphQL, every 5th answer wrong", graphqlRead, 5},
	} {
		for _, gen := range generators {
			t.Run(tc.name+", "+gen.name, func(t *testing.T) {
				var n, bad atomic.Int64
				var mu sync.Mutex
				seen := map[string]bool{}
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					key := requestKey(r, ds, wins)
					mu.Lock()
					seen[key] = true
					mu.Unlock()
					i := n.Add(1)
					if tc.badEach == 0 || i%tc.badEach != 0 {
						_, _ = w.Write([]byte(page(pageSize)))
						return
					}
					bad.Add(1)
					switch i / tc.badEach % 3 {
					case 0:
						_, _ = w.Write([]byte(page(pageSize - 1)))
					case 1:
						_, _ = w.Write([]byte(`{"errors":[{"message":"boom"}],"data":null}`))
					default:
						http.Error(w, "boom", http.StatusInternalServerError)
					}
				}))
				defer srv.Close()

				res := gen.run(t, srv.URL, readsOf(tc.api, ds, wins))
				if got, sent := int64(res.Errors), bad.Load(); got > sent || got < sent-gen.inFlight || (sent > 0) != (got > 0) {
					t.Fatalf("%s counted %d bad answers; the server sent %d (of %d)", gen.name, got, sent, n.Load())
				}
				if bad.Load() > 0 && res.FirstError == "" {
					t.Fatal("no first error reported")
				}
				mu.Lock()
				defer mu.Unlock()
				if seen["malformed"] {
					t.Fatalf("%s sent a request unlike the endpoint's", gen.name)
				}
				// 3 providers × 8 windows: a random draw meets most of them.
				if len(seen) < 12 {
					t.Fatalf("only %d distinct requests: the draw is not random", len(seen))
				}
			})
		}
	}
}

// requireWrk skips a test that needs wrk where it is not installed.
func requireWrk(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed (bench/run.sh installs it)")
	}
}

// requestKey answers "provider start end" of a read request, or
// "malformed" when it is not one the bench means to send.
func requestKey(r *http.Request, ds *dataset, wins []window) string {
	var p, start, end string
	switch r.URL.Path {
	case "/api/time-slots":
		q := r.URL.Query()
		if r.Method != http.MethodGet || len(q) != 4 || q.Get("limit") != strconv.Itoa(pageSize) {
			return "malformed"
		}
		p, start, end = q.Get("providerId"), q.Get("startDate"), q.Get("endDate")
	case "/graphql":
		var body struct {
			Query     string            `json:"query"`
			Variables map[string]string `json:"variables"`
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			json.NewDecoder(r.Body).Decode(&body) != nil || body.Query != timeSlotsQuery || len(body.Variables) != 3 {
			return "malformed"
		}
		p, start, end = body.Variables["p"], body.Variables["s"], body.Variables["e"]
	default:
		return "malformed"
	}
	if !slices.ContainsFunc(ds.providers, func(pr models.Provider) bool { return strconv.FormatInt(pr.ID, 10) == p }) ||
		!slices.Contains(wins, window{Start: models.Date(start), End: models.Date(end)}) {
		return "malformed"
	}
	return p + " " + start + " " + end
}

func TestParseWrkReadsTheResultLines(t *testing.T) {
	// 1,000 answers over 2 s on 4 connections: e = 2,000,000 ÷ 250 = 8,000 µs.
	// Measured: 985 at 1,500 µs, 14 at 9,000 µs and 1 at 30,000 µs, which wrk
	// reports with phantoms at 22,000 and 14,000 µs.
	out := "Running 1s test @ http://x\n" +
		"wrk-result requests=1000 duration_us=2000000 failed=2 connect=0 read=1 write=0 timeout=0 span_us=0 wrk_p99_us=14000\n" +
		"wrk-latency 1500:985 9000:14 14000:1 22000:1 30000:1\n" +
		"wrk-first-error want 20 slots, got 19: {}\n"
	res, err := parseWrk(out, 4)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 1000 || res.RPS != 500 || res.P50 != 1500*time.Microsecond || res.P99 != 9*time.Millisecond ||
		res.Max != 30*time.Millisecond || res.WrkP99 != 14*time.Millisecond || res.Errors != 3 || res.FirstError != "want 20 slots, got 19: {}" {
		t.Fatalf("parsed %+v", res)
	}
	if _, err := parseWrk("Running 1s test\n", 4); err == nil {
		t.Fatal("no result line: want an error")
	}
}

// wrkCorrect is wrk's stats_correct over a histogram.
func wrkCorrect(h map[int64]int64, e int64) map[int64]int64 {
	out := maps.Clone(h)
	var top int64
	for v := range h {
		top = max(top, v)
	}
	for n := 2 * e; n <= top; n++ {
		c := h[n]
		for m := n - e; c > 0 && m > e; m -= e {
			out[m] += c
		}
	}
	return out
}

func TestUndoWrkCorrectionAnswersTheMeasuredLatencies(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		conns := int64(1 + r.IntN(64))
		measured := map[int64]int64{}
		var n int64
		for range 1 + r.IntN(5000) {
			// mostly near a mean, a tail up to 40× it
			v := int64(200 + r.IntN(3000))
			if r.IntN(20) == 0 {
				v *= int64(1 + r.IntN(40))
			}
			measured[v]++
			n++
		}
		runtime := int64(1_000_000 + r.IntN(20_000_000))
		reported := wrkCorrect(measured, runtime/max(1, n/conns))
		var hist []latencyCount
		for v, c := range reported {
			hist = append(hist, latencyCount{v, c})
		}
		slices.SortFunc(hist, func(a, b latencyCount) int { return int(a.US - b.US) })
		got := map[int64]int64{}
		for _, b := range undoWrkCorrection(hist, runtime, n, conns) {
			got[b.US] = b.Count
		}
		if n/conns == 0 {
			continue // wrk corrects nothing then, and neither do we
		}
		if !maps.Equal(got, measured) {
			t.Fatalf("trial %d (n %d, conns %d): undone histogram differs from the measured one", trial, n, conns)
		}
	}
}

func TestHistQuantileIsQuantileOfTheExpandedList(t *testing.T) {
	hist := []latencyCount{{100, 3}, {200, 1}, {900, 6}}
	var list []time.Duration
	for _, b := range hist {
		for range b.Count {
			list = append(list, time.Duration(b.US)*time.Microsecond)
		}
	}
	for _, q := range []float64{0, 0.1, 0.3, 0.35, 0.5, 0.99, 1} {
		if got, want := histQuantile(hist, q), quantile(list, q); got != want {
			t.Fatalf("q %.2f: %s, want %s", q, got, want)
		}
	}
}

// TestWrkBookingsBookEachSlotOnceAndStop runs the bookings load
// against a server that answers like bookSlot: every slot must be asked for
// exactly once, by its customer, wrk must end as soon as the last answer
// came (well before its time limit), and every wrong answer must count.
func TestWrkBookingsBookEachSlotOnceAndStop(t *testing.T) {
	requireWrk(t)
	for _, tc := range []struct {
		name    string
		slots   int
		badEach int64
	}{
		{"every answer right", 997, 0},
		{"every 50th answer wrong", 500, 50},
		{"fewer slots than connections", 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var slots []int64
			for i := range tc.slots {
				slots = append(slots, int64(1000+3*i))
			}
			var mu sync.Mutex
			asked := map[int64]int{}
			var n, bad atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var body struct {
					Query     string            `json:"query"`
					Variables map[string]string `json:"variables"`
				}
				if r.Method != http.MethodPost || r.URL.Path != "/graphql" || json.NewDecoder(r.Body).Decode(&body) != nil ||
					body.Query != bookMutation || body.Variables["c"] != "customer-"+body.Variables["s"] {
					http.Error(w, "malformed", http.StatusBadRequest)
					return
				}
				id, _ := strconv.ParseInt(body.Variables["s"], 10, 64)
				mu.Lock()
				asked[id]++
				mu.Unlock()
				time.Sleep(time.Millisecond)
				if i := n.Add(1); tc.badEach > 0 && i%tc.badEach == 0 {
					bad.Add(1)
					_, _ = w.Write([]byte(`{"errors":[{"message":"boom"}],"data":null}`))
					return
				}
				fmt.Fprintf(w, `{"data":{"bookSlot":{"booking":{"id":"%d","status":"CONFIRMED"}}}}`, id)
			}))
			defer srv.Close()

			start := time.Now()
			res, cpu, err := runWrk(t.Context(), srv.URL, bookingsOf(slots), 8, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Fatalf("wrk ran %s: it was not stopped when the bookings were done", took)
			}
			if res.Requests != uint64(tc.slots) || res.Span <= 0 || res.Duration != res.Span || res.RPS <= 0 || res.P50 <= 0 || cpu <= 0 {
				t.Fatalf("implausible load: %+v, wrk CPU %s", res, cpu)
			}
			if int64(res.Errors) != bad.Load() || (bad.Load() > 0 && res.FirstError == "") {
				t.Fatalf("wrk counted %d bad answers (%q); the server sent %d", res.Errors, res.FirstError, bad.Load())
			}
			mu.Lock()
			defer mu.Unlock()
			if len(asked) != len(slots) {
				t.Fatalf("%d distinct slots asked for, want %d", len(asked), len(slots))
			}
			for _, id := range slots {
				if asked[id] != 1 {
					t.Fatalf("slot %d asked for %d times", id, asked[id])
				}
			}
		})
	}
}

// TestWrkHealthChecksCountEveryRefusal runs the /healthz load against a
// server that answers 200 and against one that answers 503.
func TestWrkHealthChecksCountEveryRefusal(t *testing.T) {
	requireWrk(t)
	for _, status := range []int{http.StatusOK, http.StatusServiceUnavailable} {
		var wrongPath atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/healthz" {
				wrongPath.Add(1)
			}
			w.WriteHeader(status)
		}))
		res, _, err := runWrk(t.Context(), srv.URL, healthChecks(), 4, time.Second)
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests < 100 || wrongPath.Load() > 0 {
			t.Fatalf("HTTP %d: %d requests, %d not GET /healthz", status, res.Requests, wrongPath.Load())
		}
		if want := map[bool]int{true: 0, false: int(res.Requests)}[status == http.StatusOK]; res.Errors != want {
			t.Fatalf("HTTP %d: %d errors counted, want %d", status, res.Errors, want)
		}
	}
}

package main

import (
	"encoding/json"
	"fmt"
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

// TestWrkScriptSendsDrawnRequestsAndCountsEveryBadAnswer runs the read
// script against a server that answers some requests wrongly (too few
// slots, a GraphQL error, a 500): wrk must report every one of them, and
// nothing when all answers are right.
func TestWrkScriptSendsDrawnRequestsAndCountsEveryBadAnswer(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed (bench/run.sh installs it)")
	}
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
		t.Run(tc.name, func(t *testing.T) {
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

			res, cpu, err := runWrk(t.Context(), srv.URL, wrkReadScript(tc.api, ds, wins), 4, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests < 100 || res.RPS <= 0 || res.P50 <= 0 || res.P99 < res.P50 || cpu <= 0 {
				t.Fatalf("implausible load: %+v, wrk CPU %s", res, cpu)
			}
			// wrk stops with requests in flight: their answers are not
			// counted, so the server may have sent a few more than wrk saw.
			if got, sent := int64(res.Errors), bad.Load(); got > sent || got < sent-8 || (sent > 0) != (got > 0) {
				t.Fatalf("wrk counted %d bad answers; the server sent %d (of %d)", got, sent, n.Load())
			}
			if bad.Load() > 0 && res.FirstError == "" {
				t.Fatal("no first error reported")
			}
			mu.Lock()
			defer mu.Unlock()
			if seen["malformed"] {
				t.Fatal("wrk sent a request unlike the endpoint's")
			}
			// 3 providers × 8 windows: a random draw meets most of them.
			if len(seen) < 12 {
				t.Fatalf("only %d distinct requests: the draw is not random", len(seen))
			}
		})
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
	out := "Running 1s test @ http://x\n" +
		"wrk-result requests=1000 duration_us=2000000 p50_us=1500 p99_us=9000 max_us=12000 failed=2 connect=0 read=1 write=0 timeout=0\n" +
		"wrk-first-error want 20 slots, got 19: {}\n"
	res, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 1000 || res.RPS != 500 || res.P50 != 1500*time.Microsecond || res.P99 != 9*time.Millisecond ||
		res.Max != 12*time.Millisecond || res.Errors != 3 || res.FirstError != "want 20 slots, got 19: {}" {
		t.Fatalf("parsed %+v", res)
	}
	if _, err := parseWrk("Running 1s test\n"); err == nil {
		t.Fatal("no result line: want an error")
	}
}

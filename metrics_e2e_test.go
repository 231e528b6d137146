package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"timeslots/internal/dbtest"
)

// seriesLabels answers the values label takes in the sample lines of
// family in the Prometheus text.
func seriesLabels(text, family, label string) map[string]bool {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(family) + `\{[^}]*\b` + label + `="([^"]*)"`)
	out := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		out[m[1]] = true
	}
	return out
}

// The attack of the hostile-internet report: 2,000 random HTTP methods,
// 2,000 random paths and 2,000 GraphQL operation names chosen by a client
// (and about 300 invalid operations with names of their own) neither grow the
// label sets past their bounds nor take the entries of the operations a
// frontend repeats, in /metrics or in the admin stats' performance block.
func TestClientsChooseNoMetricLabels(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testEnv(t, d, map[string]string{"SEED_DEMO": "true"}))
			rng := rand.New(rand.NewPCG(11, uint64(len(d))))
			word := func(n int) string {
				const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				b := make([]byte, n)
				for i := range b {
					b[i] = letters[rng.IntN(len(letters))]
				}
				return string(b)
			}
			type req struct {
				method, path, body string
			}
			gql := func(query string) req {
				b, _ := json.Marshal(map[string]string{"query": query})
				return req{http.MethodPost, "/graphql", string(b)}
			}
			real := map[string]string{
				"query Slots":     `query Slots { timeSlots(first: 1) { nodes { id } } }`,
				"query Providers": `query Providers { providers(first: 1) { totalCount } }`,
				"query OneSlot":   `query OneSlot { timeSlots(first: 1) { totalCount nodes { provider { name } } } }`,
			}
			var reqs []req
			for i := range 2000 {
				method := word(3 + rng.IntN(20))
				if i%20 == 0 {
					method = word(8192)
				}
				reqs = append(reqs,
					req{method, "/api/time-slots", ""},
					req{http.MethodGet, "/" + strings.ToLower(word(10)), ""},
					gql(fmt.Sprintf(`query Flood%s { __typename }`, word(16))))
				if i%7 == 0 {
					reqs = append(reqs, gql(fmt.Sprintf(`query Invalid%s { noSuchField }`, word(16))))
				}
				if i%10 == 0 {
					for _, q := range real {
						reqs = append(reqs, gql(q))
					}
				}
			}
			work := make(chan req)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failures []string
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := range work {
						h := http.Header{"Content-Type": {"application/json"}}
						a, err := getAnswer(nil, r.method, srv.URL+r.path, h, strings.NewReader(r.body))
						if err == nil && a.Status >= 500 {
							err = fmt.Errorf("%s %s: %s", r.method[:min(len(r.method), 20)], r.path, a)
						}
						if err != nil {
							mu.Lock()
							failures = append(failures, err.Error())
							mu.Unlock()
						}
					}
				}()
			}
			for _, r := range reqs {
				work <- r
			}
			close(work)
			wg.Wait()
			if len(failures) > 0 {
				t.Fatalf("%d requests failed, the first: %s", len(failures), failures[0])
			}

			resp, err := getAnswer(nil, http.MethodGet, srv.URL+"/metrics", nil, nil)
			if err != nil || resp.Status != 200 {
				t.Fatalf("/metrics: %v %s", err, resp)
			}
			text := string(resp.Body)
			t.Logf("/metrics after the flood: %d bytes", len(text))
			methods := seriesLabels(text, "timeslots_http_request_duration_seconds_count", "method")
			for m := range methods {
				switch m {
				case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "OTHER":
				default:
					t.Errorf("method label %.40q", m)
				}
			}
			if !methods["OTHER"] {
				t.Error("no OTHER method label after 2,000 random methods")
			}
			routes := seriesLabels(text, "timeslots_http_request_duration_seconds_count", "route")
			if len(routes) > 12 {
				t.Errorf("%d route labels after 2,000 random paths: %v", len(routes), routes)
			}
			ops := seriesLabels(text, "timeslots_graphql_operation_duration_seconds_count", "operation")
			if len(ops) > 202 {
				t.Errorf("%d operation labels, want at most 200 names, other and refused", len(ops))
			}
			for name := range real {
				if !ops[name] {
					t.Errorf("operation %q has no series of its own", name)
				}
			}
			if !ops["refused"] {
				t.Error("invalid operations have no refused series")
			}
			for op := range ops {
				if strings.Contains(op, "Invalid") {
					t.Errorf("an invalid operation's name %q became a label", op)
				}
			}

			a, err := getAnswer(nil, http.MethodGet, srv.URL+"/api/admin/time-slots", nil, nil)
			if err != nil || a.Status != 200 {
				t.Fatalf("admin stats: %v %s", err, a)
			}
			var stats struct {
				Performance struct {
					Operations []struct {
						Operation string
						Count     int
					}
				}
			}
			if err := json.NewDecoder(bytes.NewReader(a.Body)).Decode(&stats); err != nil {
				t.Fatal(err)
			}
			perf := map[string]int{}
			for _, op := range stats.Performance.Operations {
				perf[op.Operation] = op.Count
				if strings.Contains(op.Operation, "Invalid") {
					t.Errorf("an invalid operation's name %q has a performance entry", op.Operation)
				}
			}
			if len(perf) > 200+2+40 {
				t.Errorf("%d performance entries", len(perf))
			}
			for name := range real {
				if perf["graphql "+name] < 150 {
					t.Errorf("performance entry of %q counts %d of its 200 requests, want it to hold its own entry from early on", name, perf["graphql "+name])
				}
			}
		})
	}
}

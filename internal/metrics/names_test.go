package metrics

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// labelValues answers the distinct values of label across the series of
// the metric family name, as a scrape would show them.
func labelValues(t *testing.T, m *Metrics, family, label string) map[string]bool {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		if f.GetName() != family {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] = true
				}
			}
		}
	}
	return out
}

// performanceOps answers the performance record's operations and counts.
func performanceOps(m *Metrics) map[string]uint64 {
	out := map[string]uint64{}
	for _, op := range m.perf.Snapshot().Operations {
		out[op.Operation] = op.Count
	}
	return out
}

func randomName(rng *rand.Rand) string {
	return fmt.Sprintf("query Junk%016x", rng.Uint64())
}

// Operations a frontend repeats keep their entries while 2,000 names, each
// sent once, fill the label set no further than its bound.
func TestRealOperationsKeepTheirEntriesThroughAFlood(t *testing.T) {
	t.Parallel()
	m := New(nil)
	rng := rand.New(rand.NewPCG(3, 4))
	real := []string{"query Slots", "mutation Book", "query Provider"}
	for range 5 {
		for _, op := range real {
			m.observeOperation(op, "ok", time.Millisecond)
		}
	}
	for i := range 2000 {
		m.observeOperation(randomName(rng), "ok", time.Millisecond)
		m.observeOperation(real[i%3], "ok", time.Millisecond)
	}
	names := labelValues(t, m, "timeslots_graphql_operation_duration_seconds", "operation")
	if len(names) > maxOperations+1 {
		t.Errorf("%d operation label values, want at most %d names and %q", len(names), maxOperations, OtherOperation)
	}
	ops := performanceOps(m)
	for i, op := range real {
		want := uint64(5 + 2000/3)
		if i < 2000%3 {
			want++
		}
		if !names[op] || ops[graphQLPrefix+op] != want {
			t.Errorf("%s: series %v, performance count %d; want its own entry with all %d requests", op, names[op], ops[graphQLPrefix+op], want)
		}
	}
	if len(ops) > maxOperations+1 {
		t.Errorf("%d performance entries, want at most %d", len(ops), maxOperations+1)
	}
}

// When a flood came first and took every entry, operations a frontend
// repeats take entries back from names seen once, and once they hold one
// they keep it, counting every request, while the flood goes on; the
// displaced names' series are gone.
func TestRepeatedOperationsDisplaceAFloodThatCameFirst(t *testing.T) {
	t.Parallel()
	m := New(nil)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		m.observeOperation(randomName(rng), "ok", time.Millisecond)
	}
	if n := len(labelValues(t, m, "timeslots_graphql_operation_duration_seconds", "operation")); n != maxOperations+1 {
		t.Fatalf("%d label values after the flood, want the table full (%d) and %q", n, maxOperations, OtherOperation)
	}
	var real []string
	for i := range 20 {
		real = append(real, "query Real"+strconv.Itoa(i))
	}
	last := map[string]uint64{}
	for round := range 6 {
		for _, op := range real {
			m.observeOperation(op, "ok", time.Millisecond)
		}
		for range 500 {
			m.observeOperation(randomName(rng), "ok", time.Millisecond)
		}
		names := labelValues(t, m, "timeslots_graphql_operation_duration_seconds", "operation")
		if len(names) > maxOperations+1 {
			t.Fatalf("round %d: %d label values, want at most %d", round, len(names), maxOperations+1)
		}
		ops := performanceOps(m)
		for _, op := range real {
			got := ops[graphQLPrefix+op]
			if held := last[op] > 0; held && (!names[op] || got != last[op]+1) {
				t.Errorf("round %d, %s: series %v, count %d after %d; an entry once held must count every request", round, op, names[op], got, last[op])
			}
			if round >= 2 && !names[op] {
				t.Errorf("round %d, %s: no entry of its own after %d requests", round, op, round+1)
			}
			last[op] = got
		}
		if len(m.opNames.candidates) > maxCandidates {
			t.Errorf("%d names waiting, want at most %d", len(m.opNames.candidates), maxCandidates)
		}
	}
}

// Refused operations are one label value whatever their names.
func TestRefusedOperationsShareOneName(t *testing.T) {
	t.Parallel()
	m := New(nil)
	for range 300 {
		m.observeOperation(RefusedOperation, "error", time.Millisecond)
	}
	names := labelValues(t, m, "timeslots_graphql_operation_duration_seconds", "operation")
	if len(names) != 1 || !names[RefusedOperation] || performanceOps(m)[graphQLPrefix+RefusedOperation] != 300 {
		t.Errorf("label values %v, performance %v; want only %q with 300 requests", names, performanceOps(m), RefusedOperation)
	}
	if len(m.opNames.uses) != 0 {
		t.Errorf("refused operations took %d entries, want none", len(m.opNames.uses))
	}
}

// 2,000 random methods and 2,000 random paths make no label value of
// their own: routes are the mux's patterns, methods the standard ones or
// OTHER, and the performance record stays as small.
func TestClientsChooseNoRouteOrMethodLabel(t *testing.T) {
	t.Parallel()
	m := New(nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/api/time-slots", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/api/items/{id}", func(http.ResponseWriter, *http.Request) {})
	h := m.Routes(mux)
	rng := rand.New(rand.NewPCG(7, 8))
	token := func() string {
		const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		b := make([]byte, 4+rng.IntN(40))
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return string(b)
	}
	standard := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
	for i := range 2000 {
		r := httptest.NewRequest(http.MethodGet, "/api/time-slots", nil)
		r.Method = token()
		h.ServeHTTP(httptest.NewRecorder(), r)
		r = httptest.NewRequest(standard[i%len(standard)], "/"+strings.ToLower(token()), nil)
		h.ServeHTTP(httptest.NewRecorder(), r)
		r = httptest.NewRequest(standard[i%len(standard)], "/api/items/"+token(), nil)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	for _, m := range standard {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(m, "/api/time-slots", nil))
	}
	routes := labelValues(t, m, "timeslots_http_request_duration_seconds", "route")
	for r := range routes {
		if r != "/healthz" && r != "/api/time-slots" && r != "/api/items/{id}" && r != "unmatched" {
			t.Errorf("route label %q is not a registered pattern", r)
		}
	}
	methods := labelValues(t, m, "timeslots_http_request_duration_seconds", "method")
	for _, want := range append(standard, OtherMethod) {
		if !methods[want] {
			t.Errorf("method label %q missing", want)
		}
	}
	if len(methods) != len(standard)+1 {
		t.Errorf("method labels %v, want the standard methods and %q", methods, OtherMethod)
	}
	if ops := performanceOps(m); len(ops) > 3*(len(standard)+1) {
		t.Errorf("%d performance entries from three routes: %v", len(ops), ops)
	}
}

func TestMethodLabel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"GET": "GET", "POST": "POST", "OPTIONS": "OPTIONS", "CONNECT": "CONNECT",
		"get": OtherMethod, "PROPFIND": OtherMethod, "": OtherMethod, strings.Repeat("X", 8192): OtherMethod,
	} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%.20q) = %q, want %q", in, got, want)
		}
	}
}

package graph_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"timeslots/graph"
)

// Distinct valid queries padded by a comment, sent without a token: the
// server keeps at most QUERY_CACHE_BYTES of them parsed, however many it is
// sent. (Kept by number, these 40 held 12 MB after the requests.)
func TestDistinctLargeQueriesHoldNoMoreThanTheQueryCacheBudget(t *testing.T) {
	const budget = 1 << 20
	a := wrap(t, map[string]string{"APP_ENV": "production", "ADMIN_TOKEN": "the-production-admin-token", "QUERY_CACHE_BYTES": "1048576"}, nil)
	pad := strings.Repeat("x", 300_000)
	body := func(i int) string {
		b, _ := json.Marshal(map[string]string{"query": fmt.Sprintf("query Q%d { __typename }\n#%s", i, pad)})
		return string(b)
	}
	a.do(t, request{body: body(-1)}) // the handler's own first allocations
	before := graph.LiveHeap()
	const n = 40
	for i := range n {
		if res := a.do(t, request{body: body(i), from: "192.0.2.1:1234"}); res.Status != http.StatusOK || res.Code() != "" {
			t.Fatalf("query %d: HTTP %d %.200s", i, res.Status, res.Body)
		}
	}
	a.logs.Reset()
	grown := int64(graph.LiveHeap()) - int64(before)
	t.Logf("%d queries of %d KB: the live heap grew by %.1f MiB", n, len(pad)/1000, float64(grown)/(1<<20))
	if grown > budget+(2<<20) {
		t.Fatalf("the live heap grew by %.1f MiB, more than the %d MiB budget of the query cache", float64(grown)/(1<<20), budget>>20)
	}
	runtime.KeepAlive(a)
}

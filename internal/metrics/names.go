package metrics

import "net/http"

// maxOperations bounds the GraphQL operation names that get their own
// series and their own entry in the performance record: operation names
// come from clients, so their number must not grow memory or the label
// set without end.
const maxOperations = 200

// maxCandidates bounds the names waiting for an entry; when it is full,
// every waiting name's count is halved and the names that fall to zero
// are forgotten, so names seen once make room first and a name that
// keeps coming keeps its count.
const maxCandidates = 1000

// maxNameBytes is the longest operation name kept; longer ones are cut.
const maxNameBytes = 100

// Operation names that never come from a client.
const (
	// OtherOperation collects the operations without an entry of their own.
	OtherOperation = "other"
	// RefusedOperation collects the operations refused before they ran
	// (unparsable, invalid, over a limit): their names are not believed.
	RefusedOperation = "refused"
)

// operationNames decides which operation names have their own entry: at
// most limit, the busiest. While there is room a name gets an entry the
// first time it is seen. Once the table is full, a new name waits among
// the candidates, counted, and takes the place of the entry with the
// fewest uses as soon as it has been seen more often than that entry was
// used. So a flood of names each sent once takes no entry from anyone,
// while an operation a frontend repeats displaces such names after its
// second request; the busiest operations keep their entries however many
// names are sent.
type operationNames struct {
	limit      int
	uses       map[string]uint64 // names with an entry: uses since they got it
	candidates map[string]uint64 // names waiting: times seen
	// evict is told of each name that loses its entry, under the lock
	// the table's user holds (see Metrics.observeOperation).
	evict func(name string)
}

func newOperationNames(limit int, evict func(string)) *operationNames {
	return &operationNames{limit: limit, uses: map[string]uint64{}, candidates: map[string]uint64{}, evict: evict}
}

// name answers the name n is recorded under: n itself (cut to
// maxNameBytes) when it has or gets an entry, else OtherOperation. The
// caller serialises calls.
func (t *operationNames) name(n string) string {
	if len(n) > maxNameBytes {
		n = n[:maxNameBytes]
	}
	if u, ok := t.uses[n]; ok {
		t.uses[n] = u + 1
		return n
	}
	if len(t.uses) < t.limit {
		t.uses[n] = 1
		return n
	}
	if _, waiting := t.candidates[n]; !waiting {
		for len(t.candidates) >= maxCandidates {
			for name, seen := range t.candidates {
				if seen /= 2; seen == 0 {
					delete(t.candidates, name)
				} else {
					t.candidates[name] = seen
				}
			}
		}
	}
	seen := t.candidates[n] + 1
	t.candidates[n] = seen
	victim, least := "", uint64(0)
	for name, u := range t.uses {
		if victim == "" || u < least || (u == least && name < victim) {
			victim, least = name, u
		}
	}
	if seen <= least {
		return OtherOperation
	}
	delete(t.uses, victim)
	if t.evict != nil {
		t.evict(victim)
	}
	delete(t.candidates, n)
	t.uses[n] = seen
	return n
}

// standardMethods are the method label values besides OtherMethod.
var standardMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodConnect: true,
	http.MethodOptions: true, http.MethodTrace: true,
}

// OtherMethod is the method label of every request whose method is not
// one of HTTP's standard ones: clients choose methods freely.
const OtherMethod = "OTHER"

// methodLabel answers m when it is a standard method, else OtherMethod.
func methodLabel(m string) string {
	if standardMethods[m] {
		return m
	}
	return OtherMethod
}

package graph

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"mime"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"timeslots/internal/auth"
	"timeslots/internal/httpx"
	"timeslots/internal/readcache"
)

// OperationRecorder is an extension that records the operations it sees
// (the metrics' operation timer). An answer the raw path serves never
// reaches the extensions, so it records it through Recorder, as the
// extension would have recorded the same operation answered by the cache.
type OperationRecorder interface {
	graphql.HandlerExtension
	// Recorder answers what the extension records for a successful
	// operation like oc's that took took; it is called once per request
	// shape, and the function it answers once per answer.
	Recorder(oc *graphql.OperationContext) func(took time.Duration)
}

// rawAnswers answers a cacheable query sent again — the same body by POST,
// or the same query string by GET, from a caller of the same class — from
// the answer cache before gqlgen reads it: no JSON decoding, no parsed
// document lookup, no limits, no argument code, no key computed from
// variables. A profile of a cached page through the whole pipeline
// (bench/README.md) spends most of its CPU there, not in the cache.
//
// The answers extension, which has the parsed and validated operation,
// remembers in aliases, by the request's raw key (requestKey: the
// method, the caller's class and the body or query string), the key it
// keeps the answer under, the operation's name for the request log, and
// what the operation metrics record for it. That key is a function of the
// same bytes and class, and every check gqlgen and the extensions make
// before the answers extension (parsing, validation, variables, the
// complexity, depth and introspection limits, the transport rule) depends
// only on them and on the configuration: a request whose raw key has an
// alias would reach the same cache entry the plain way. So a hit here
// answers exactly what the plain path would (tests compare the bytes,
// status and headers over every cached shape). The entry itself is the
// answer cache's, dropped by the change feed, by time and by its budget;
// when it is gone the request goes the plain way, which stores it again.
// The HTTP middleware in front (rate limits, body limits, deadlines,
// admin and customer tokens, route metrics, the request log) runs as for
// any request.
type rawAnswers struct {
	cache   *readcache.Cache
	aliases *readcache.Aliases[rawAlias]
	next    http.Handler
	// answered counts the requests answered here; nil: not counted.
	answered *atomic.Int64
}

// rawAlias is what a request's raw key stands for.
type rawAlias struct {
	key    string                // the answer's key (answerKey)
	name   string                // the operation's name, for the request log (noteOperation)
	record []func(time.Duration) // the operation recorders' record of it
}

func (a rawAlias) size() int { return len(a.key) + len(a.name) + 64*len(a.record) }

// rawLookup travels with a request the raw path did not answer, to the
// answers extension: the request's raw key, and the answer key the raw
// path already looked up without a hit (so the miss is counted once).
type rawLookup struct {
	req    string
	missed string
}

type rawLookupKey struct{}

func (h *rawAnswers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req, ok := requestKey(r)
	if !ok {
		h.next.ServeHTTP(w, r)
		return
	}
	lookup := &rawLookup{req: req}
	if a, ok := h.aliases.Get(req); ok {
		if data, hit := h.cache.Get(a.key); hit {
			w.Header().Set("Content-Type", responseContentType(r.Header.Get("Accept")))
			writeJSON(w, &graphql.Response{Data: data})
			if r.Method == http.MethodGet {
				_, _ = io.WriteString(w, "\n")
			}
			httpx.NoteOperation(r.Context(), a.name)
			took := time.Since(start)
			for _, record := range a.record {
				record(took)
			}
			if h.answered != nil {
				h.answered.Add(1)
			}
			return
		}
		lookup.missed = a.key
	}
	h.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), rawLookupKey{}, lookup)))
}

// requestKey answers the raw key of a request the raw path may answer: a
// POST with a JSON body (jsonBodiesOnly refuses the others) or a GET that
// is not a websocket upgrade, keyed by the SHA-256 of the method, the
// caller's class and the body or query string. A POST's body is read here
// and put back for the plain path, with the error that ended its read.
func requestKey(r *http.Request) (string, bool) {
	var raw []byte
	switch r.Method {
	case http.MethodPost:
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
				return "", false
			}
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{err}))
			return "", false
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		raw = body
	case http.MethodGet:
		if r.Header.Get("Upgrade") != "" {
			return "", false
		}
		raw = []byte(r.URL.RawQuery)
	default:
		return "", false
	}
	h := sha256.New()
	_, _ = io.WriteString(h, r.Method)
	_, _ = io.WriteString(h, "\x00")
	_, _ = io.WriteString(h, callerClass(r.Context()))
	_, _ = io.WriteString(h, "\x00")
	_, _ = h.Write(raw)
	return string(h.Sum(nil)), true
}

// errReader answers err: the rest of a body whose read failed.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// callerClass is the class of caller an answer may be shared within:
// admin (the admin token), customer (an end user's token) or anonymous.
func callerClass(ctx context.Context) string {
	switch {
	case httpx.Admin(ctx) == nil:
		return "admin"
	default:
		if _, ok := auth.CustomerFrom(ctx); ok {
			return "customer"
		}
		return "anonymous"
	}
}

// remember tells the raw path, when the request came through it, that
// its answer is kept under key: the next request with the same raw key
// is answered from the cache before gqlgen reads it.
func (a answers) remember(ctx context.Context, oc *graphql.OperationContext, key string) {
	lookup, _ := ctx.Value(rawLookupKey{}).(*rawLookup)
	if lookup == nil || a.aliases == nil {
		return
	}
	if _, ok := a.aliases.Get(lookup.req); ok {
		return
	}
	alias := rawAlias{key: key, name: loggedName(oc)}
	for _, r := range a.recorders {
		alias.record = append(alias.record, r.Recorder(oc))
	}
	a.aliases.Set(lookup.req, alias, alias.size())
}

// lookedUp reports whether the raw path already looked key up for the
// request in ctx and missed.
func lookedUp(ctx context.Context, key string) bool {
	lookup, _ := ctx.Value(rawLookupKey{}).(*rawLookup)
	return lookup != nil && lookup.missed == key
}

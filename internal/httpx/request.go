package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	loggerKey
	adminKey
	clientIPKey
	refusalKey
	noteKey
	sessionKey
)

// RequestIDHeader carries the request id both ways.
const RequestIDHeader = "X-Request-Id"

var validID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// RequestID answers the id of the request in ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// Logger answers the request's logger (with its request id), or the default.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// WithLogger answers ctx carrying l, for work outside a request (jobs).
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey, l)
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// StatusRecorder remembers the status and size of an answer, for the
// request log and the metrics.
type StatusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

// Status answers the status written, 200 when the handler wrote none.
func (s *StatusRecorder) Status() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// WriteHeader records the first status written.
func (s *StatusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and the bytes written.
func (s *StatusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the inner writer.
func (s *StatusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush lets streaming answers through the recorder.
func (s *StatusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// requestNote is what the handlers inside tell the request log about a
// request: the route the mux matched and the GraphQL operation.
type requestNote struct {
	mu        sync.Mutex
	route     string
	operation string
}

// maxLoggedText bounds the client-chosen text of a request log line (user
// agent, operation name).
const maxLoggedText = 200

// NoteRoute tells the request log the route pattern that served the
// request (the metrics' route label).
func NoteRoute(ctx context.Context, route string) {
	if n, ok := ctx.Value(noteKey).(*requestNote); ok {
		n.mu.Lock()
		n.route = route
		n.mu.Unlock()
	}
}

// NoteOperation tells the request log the name of the GraphQL operation
// the request ran.
func NoteOperation(ctx context.Context, name string) {
	if n, ok := ctx.Value(noteKey).(*requestNote); ok {
		n.mu.Lock()
		n.operation = clip(name)
		n.mu.Unlock()
	}
}

func clip(s string) string {
	if len(s) > maxLoggedText {
		return strings.ToValidUTF8(s[:maxLoggedText], "")
	}
	return s
}

// quietPaths are the probes and the scrape: their request lines are logged
// at debug level, so that a load balancer's health checks do not drown the
// log.
var quietPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// RequestLog gives every request an id (kept from X-Request-Id when the
// client sent a sane one), returns it in the answer, puts a logger carrying
// it in the context, and logs one line per request: method, route, path
// (never the query string), status, bytes, duration_ms, client, user agent
// and, for GraphQL, the operation name; at info level, at debug for the
// probes and /metrics. At debug level it also logs a line when a request
// starts, so a stuck request can be found.
func RequestLog(base *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(RequestIDHeader)
			if !validID.MatchString(id) {
				id = newID()
			}
			w.Header().Set(RequestIDHeader, id)
			l := base.With(slog.String("request_id", id))
			note := &requestNote{}
			ctx := context.WithValue(context.WithValue(context.WithValue(r.Context(), requestIDKey, id), loggerKey, l), noteKey, note)
			rec := &StatusRecorder{ResponseWriter: w}
			start := time.Now()
			l.Debug("request started", slog.String("method", r.Method), slog.String("path", r.URL.Path))
			next.ServeHTTP(rec, r.WithContext(ctx))
			took := time.Since(start)
			level := slog.LevelInfo
			if quietPaths[r.URL.Path] {
				level = slog.LevelDebug
			}
			if !l.Enabled(ctx, level) {
				return
			}
			client := "unknown"
			if a := ClientIP(ctx); a.IsValid() {
				client = a.String()
			}
			note.mu.Lock()
			route, operation := note.route, note.operation
			note.mu.Unlock()
			attrs := []slog.Attr{
				slog.String("method", r.Method), slog.String("route", route), slog.String("path", r.URL.Path),
				slog.Int("status", rec.Status()), slog.Int("bytes", rec.bytes),
				slog.Float64("duration_ms", float64(took.Microseconds())/1000),
				slog.String("client", client), slog.String("user_agent", clip(r.UserAgent())),
			}
			if operation != "" {
				attrs = append(attrs, slog.String("operation_name", operation))
			}
			l.LogAttrs(ctx, level, "request", attrs...)
		})
	}
}

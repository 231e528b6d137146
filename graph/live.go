package graph

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"timeslots/internal/apperr"
	"timeslots/internal/feed"
	"timeslots/internal/httpx"
	"timeslots/internal/ratelimit"
)

// LiveOptions are what the websocket side of the GraphQL edge is told by
// the composition root.
type LiveOptions struct {
	// Feed is the change feed subscriptions read.
	Feed *feed.Feed
	// InitTimeout is how long a new connection may take to send
	// connection_init (else it is closed with 4408).
	InitTimeout time.Duration
	// PingInterval is how often the server pings an idle client; a client
	// that answers no ping within two intervals is dropped.
	PingInterval time.Duration
	// MaxConnections bounds the open websocket connections of the server;
	// MaxSubscriptions the subscriptions of one connection.
	MaxConnections   int
	MaxSubscriptions int
	// Subscribes counts each connection's subscribe messages
	// (WS_SUBSCRIBE_RPS): past its limit a subscribe is answered with a
	// RATE_LIMITED error, before it is parsed or run. Nil: no limit.
	Subscribes *ratelimit.Counter
	// Buffer is how many events one subscription may have waiting before
	// it is ended with SUBSCRIPTION_OVERFLOW.
	Buffer int
	// MaxMessageBytes bounds one message from a client (else 1009).
	MaxMessageBytes int64
	// Origins are the browser origins allowed besides the server's own
	// (CORS_ORIGINS; "*" allows any).
	Origins []string
	// Authorize applies a bearer token sent in connection_init's payload
	// (Authorization: "Bearer …") to the connection's context, as the
	// admin gate applies an Authorization header: the admin, a verified
	// customer, or a coded refusal. Nil: tokens in the payload are
	// refused.
	Authorize func(r *http.Request, token string) (context.Context, error)
	// Observer is told of connections, subscriptions and events (metrics);
	// nil observes nothing.
	Observer LiveObserver
	// Logger logs connection failures at debug level; nil: slog.Default.
	Logger *slog.Logger
}

// LiveObserver is told what the websocket side does, for metrics.
type LiveObserver interface {
	ConnectionOpened()
	ConnectionClosed()
	SubscriptionStarted()
	SubscriptionEnded()
	// EventDelivered: one change was handed to a subscription's client.
	EventDelivered()
	// EventDropped: a subscription's buffer overflowed (the subscription
	// ends there).
	EventDropped()
}

// Live serves GraphQL subscriptions over websockets (the
// graphql-transport-ws protocol, on gqlgen's websocket transport) and
// keeps the connections, so that a shutdown can close them: net/http's
// Shutdown does not wait for hijacked connections.
type Live struct {
	opt LiveOptions
	obs LiveObserver

	mu     sync.Mutex
	conns  map[*liveConn]struct{}
	closed bool
	opened atomic.Uint64 // names each connection for Subscribes
}

// NewLive builds the websocket side; pass it in Options.Live.
func NewLive(opt LiveOptions) *Live {
	l := &Live{opt: opt, obs: opt.Observer, conns: map[*liveConn]struct{}{}}
	if l.obs == nil {
		l.obs = noObserver{}
	}
	if l.opt.Logger == nil {
		l.opt.Logger = slog.Default()
	}
	return l
}

// Close closes every websocket connection with 1001 (going away) and
// refuses new ones; the clients reconnect to another replica.
func (l *Live) Close() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*liveConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.closeWith(closeGoingAway, "the server is shutting down")
	}
}

// Connections answers how many websocket connections are open.
func (l *Live) Connections() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// admit counts a new connection in, or answers why it may not open.
func (l *Live) admit(c *liveConn) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return apperr.E(apperr.Unavailable, "the server is shutting down: connect again (to another replica)")
	case len(l.conns) >= l.opt.MaxConnections:
		return apperr.E(apperr.Unavailable, "the server has its most websocket connections open (MAX_WS_CONNECTIONS): connect again later")
	}
	l.conns[c] = struct{}{}
	l.obs.ConnectionOpened()
	return nil
}

func (l *Live) release(c *liveConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.conns[c]; ok {
		delete(l.conns, c)
		l.obs.ConnectionClosed()
	}
}

// The close codes of graphql-transport-ws (and of RFC 6455) the server
// closes with.
const (
	closeGoingAway         = 1001
	closeInvalidMessage    = 4400
	closeUnauthorized      = 4401
	closeForbidden         = 4403
	closeInitTimeout       = 4408
	closeSubscriberExists  = 4409
	closeTooManyInitiating = 4429
)

// graphqlTransportWS is the one subprotocol offered: graphql-ws's
// graphql-transport-ws. The legacy subscriptions-transport-ws protocol
// (graphql-ws) that gqlgen also speaks is refused.
const graphqlTransportWS = "graphql-transport-ws"

// wsTransport is gqlgen's websocket transport behind the checks of an
// upgrade: a complete websocket handshake offering graphql-transport-ws,
// an allowed Origin, room under MaxConnections. Every refusal is an HTTP
// answer with a coded GraphQL error; once upgraded, protocol errors close
// the connection with the protocol's codes (liveConn).
type wsTransport struct {
	l *Live
}

var _ graphql.Transport = wsTransport{}

// Supports takes websocket upgrades.
func (wsTransport) Supports(r *http.Request) bool { return httpx.IsWebsocketUpgrade(r) }

// Do checks the upgrade and hands it to gqlgen's transport.
func (t wsTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	refuse := func(status int, code apperr.Code, msg string) {
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", httpx.UnavailableRetryAfter)
		}
		writeErrors(w, status, requestError(code, msg))
	}
	if r.Method != http.MethodGet || r.Header.Get("Sec-WebSocket-Key") == "" || r.Header.Get("Sec-WebSocket-Version") != "13" {
		refuse(http.StatusBadRequest, apperr.BadUserInput, "a websocket upgrade of /graphql is a GET with Sec-WebSocket-Key and Sec-WebSocket-Version: 13")
		return
	}
	if !offers(r, graphqlTransportWS) {
		refuse(http.StatusBadRequest, apperr.BadUserInput, "GraphQL over websocket speaks graphql-transport-ws only: offer it in Sec-WebSocket-Protocol")
		return
	}
	if !t.l.originAllowed(r) {
		refuse(http.StatusForbidden, apperr.Forbidden, "this Origin may not open websockets here (CORS_ORIGINS)")
		return
	}
	c := &liveConn{l: t.l, active: map[string]bool{}, key: strconv.FormatUint(t.l.opened.Add(1), 36)}
	if err := t.l.admit(c); err != nil {
		refuse(http.StatusServiceUnavailable, apperr.ErrorCode(err), apperr.ErrorMessage(err))
		return
	}
	defer t.l.release(c)
	maxBytes := t.l.opt.MaxMessageBytes
	ws := transport.Websocket{
		Implementation:   c,
		InitFunc:         t.l.initConnection,
		PingPongInterval: t.l.opt.PingInterval,
		PayloadReadLimit: &maxBytes,
		ErrorFunc: func(ctx context.Context, err error) {
			t.l.opt.Logger.Debug("websocket", slog.String("request_id", httpx.RequestID(ctx)), slog.String("error", err.Error()))
		},
	}
	ctx := context.WithValue(r.Context(), liveKey{}, r)
	ws.Do(w, r.WithContext(ctx), exec)
}

// liveKey carries, in a websocket connection's context, the upgrade
// request: its client and its admin decision.
type liveKey struct{}

// overWebsocket reports whether ctx is a websocket connection's.
func overWebsocket(ctx context.Context) bool {
	_, ok := ctx.Value(liveKey{}).(*http.Request)
	return ok
}

// offers reports whether the upgrade request offers subprotocol.
func offers(r *http.Request, subprotocol string) bool {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(h, ",") {
			if strings.TrimSpace(p) == subprotocol {
				return true
			}
		}
	}
	return false
}

// originAllowed admits requests without Origin (not a browser), a
// browser on the server's own origin (the playground), and the origins of
// CORS_ORIGINS: a page elsewhere cannot open a websocket with the
// browser's credentials.
func (l *Live) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range l.opt.Origins {
		if o == "*" || strings.TrimRight(o, "/") == origin {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// initConnection reads the credentials of connection_init's payload: an
// Authorization of "Bearer <token>" is the admin token or a customer's
// token, decided as for an Authorization header (a wrong token counts
// towards the admin gate's lockout). Without one, the connection keeps
// what its upgrade request carried. A refusal closes the connection with
// 4403 and the refusal's code in the reason.
func (l *Live) initConnection(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	raw, present := payload["Authorization"]
	if !present {
		raw, present = payload["authorization"]
	}
	if !present {
		return ctx, nil, nil
	}
	value, _ := raw.(string)
	scheme, token, ok := strings.Cut(value, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return refuseInit(ctx, apperr.E(apperr.Unauthenticated, `connection_init: payload.Authorization must be "Bearer <token>"`))
	}
	r, _ := ctx.Value(liveKey{}).(*http.Request)
	if l.opt.Authorize == nil || r == nil {
		return refuseInit(ctx, apperr.E(apperr.Unauthenticated, "connection_init: this server takes no token in the payload"))
	}
	authorized, err := l.opt.Authorize(r.WithContext(ctx), token)
	if err != nil {
		return refuseInit(ctx, err)
	}
	return authorized, nil, nil
}

// refuseInit closes a connection whose connection_init was refused, with
// 4403 and "CODE: message" as the reason (cut to what a close frame holds).
func refuseInit(ctx context.Context, err error) (context.Context, *transport.InitPayload, error) {
	reason := string(apperr.ErrorCode(err)) + ": " + apperr.ErrorMessage(err)
	ctx = transport.WithWebsocketCloseCode(ctx, closeForbidden)
	ctx = transport.AppendCloseReason(ctx, closeReason(reason))
	return ctx, nil, err
}

// closeReason cuts reason to the 123 bytes a close frame carries, on a
// character boundary.
func closeReason(reason string) string {
	const maxReason = 123
	if len(reason) <= maxReason {
		return reason
	}
	cut := maxReason
	for cut > 0 && !isRuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// transportRule keeps each kind of operation on its transport:
// subscriptions over the websocket only (by POST one would hold the
// request until its first event), queries and mutations by GET and POST
// only (the websocket has none of the HTTP middleware: rate limits per
// request, body limits, deadlines).
type transportRule struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = transportRule{}

// ExtensionName implements graphql.HandlerExtension.
func (transportRule) ExtensionName() string { return "TransportRule" }

// Validate implements graphql.HandlerExtension.
func (transportRule) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (transportRule) MutateOperationContext(ctx context.Context, op *graphql.OperationContext) *gqlerror.Error {
	if op.Operation == nil {
		return nil
	}
	ws := overWebsocket(ctx)
	switch {
	case op.Operation.Operation == ast.Subscription && !ws:
		return requestError(apperr.BadUserInput,
			"subscriptions run over a websocket: connect to /graphql with the graphql-transport-ws protocol")
	case op.Operation.Operation != ast.Subscription && ws:
		return requestError(apperr.BadUserInput,
			"the websocket runs subscriptions only: send queries and mutations by POST /graphql")
	}
	return nil
}

// noObserver observes nothing.
type noObserver struct{}

func (noObserver) ConnectionOpened()    {}
func (noObserver) ConnectionClosed()    {}
func (noObserver) SubscriptionStarted() {}
func (noObserver) SubscriptionEnded()   {}
func (noObserver) EventDelivered()      {}
func (noObserver) EventDropped()        {}

// errClosedByServer is what a connection's reader answers gqlgen once the
// server closed it for a protocol error: gqlgen then winds the connection
// down without a second close.
var errClosedByServer = transport.ErrWebsocketClosed

// message is a graphql-transport-ws message as the server reads it.
type message struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && m != nil
}

// isAbsent reports whether a payload was left out or null.
func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

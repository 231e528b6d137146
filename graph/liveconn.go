package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	coderws "github.com/coder/websocket"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"timeslots/internal/apperr"
	"timeslots/internal/httpx"
)

// liveConnGQLGen is the gqlgen release whose websocket transport liveConn
// is written against: the order in which it reads and writes messages,
// the shape of the messages it writes (payload, id, type), and its
// coder/websocket adapter, whose close handshake liveConn follows. A test
// fails while go.mod requires another release: re-read
// transport/websocket*.go of that release, then set the constant to it.
const liveConnGQLGen = "v0.17.98"

// wsWriteTimeout bounds one message written to a client: a client that
// stops reading is dropped once the socket's buffers are full, rather
// than holding its subscriptions' goroutines.
const wsWriteTimeout = 10 * time.Second

// liveConn is one websocket connection, adapted for gqlgen's transport
// (transport.WebsocketImplementation and transport.WebsocketConn over
// coder/websocket, like gqlgen's own adapter). It also enforces what
// gqlgen's transport leaves out of graphql-transport-ws, closing with the
// protocol's codes before a message reaches gqlgen: connection_init
// within InitTimeout (4408), nothing but ping and pong before it (4401),
// one connection_init (4429), well-formed messages (4400), one
// subscription per id (4409); and it answers a subscribe past
// MaxSubscriptions, or past the connection's Subscribes limit, with a
// coded error message.
type liveConn struct {
	l    *Live
	conn *coderws.Conn
	key  string // names the connection in LiveOptions.Subscribes

	mu          sync.Mutex
	initialised bool            // connection_init has been read
	active      map[string]bool // ids subscribed and not yet completed by the server
	closing     bool            // a close handshake has been started
	handshake   chan struct{}   // closed when it ends
	initTimer   *time.Timer
	readTimer   *time.Timer
}

var (
	_ transport.WebsocketImplementation = (*liveConn)(nil)
	_ transport.WebsocketConn           = (*liveConn)(nil)
	_ transport.WebsocketReadLimiter    = (*liveConn)(nil)
	_ transport.WebsocketReadDeadliner  = (*liveConn)(nil)
)

// Accept upgrades the request (its Origin is checked by wsTransport) and
// starts the wait for connection_init.
func (c *liveConn) Accept(w http.ResponseWriter, r *http.Request, opt transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	for k, vs := range opt.ResponseHeader {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	conn, err := coderws.Accept(w, r, &coderws.AcceptOptions{
		Subprotocols:       []string{graphqlTransportWS},
		InsecureSkipVerify: true,
	})
	if err != nil {
		return nil, err
	}
	c.conn = conn
	c.mu.Lock()
	c.initTimer = time.AfterFunc(c.l.opt.InitTimeout, func() {
		c.mu.Lock()
		late := !c.initialised
		c.mu.Unlock()
		if late {
			c.closeWith(closeInitTimeout, "Connection initialisation timeout")
		}
	})
	c.mu.Unlock()
	return c, nil
}

// NextReader answers the next message for gqlgen, after the protocol's
// checks; a message that breaks them closes the connection.
func (c *liveConn) NextReader() (int, io.Reader, error) {
	for {
		typ, data, err := c.conn.Read(context.Background())
		if err != nil {
			switch coderws.CloseStatus(err) {
			case coderws.StatusNormalClosure, coderws.StatusNoStatusRcvd:
				return 0, nil, transport.ErrWebsocketClosed
			}
			return 0, nil, err
		}
		if typ != coderws.MessageText {
			return 0, nil, c.closeWith(closeInvalidMessage, "Invalid message received: messages are JSON text")
		}
		pass, err := c.check(data)
		if r, ok := err.(*subscribeRefusal); ok {
			err = c.writeError(r.id, r.err)
		}
		if err != nil {
			return 0, nil, err
		}
		if pass {
			return int(typ), bytes.NewReader(data), nil
		}
	}
}

// subscribeRefusal is a subscribe check answers with an error message of
// its own.
type subscribeRefusal struct {
	id  string
	err error
}

func (r *subscribeRefusal) Error() string { return r.err.Error() }

// check applies the protocol to one message from the client: pass it to
// gqlgen, answer it here (a *subscribeRefusal, written once c.mu is released), or
// close the connection (another error).
func (c *liveConn) check(data []byte) (pass bool, err error) {
	var m message
	if json.Unmarshal(data, &m) != nil || m.Type == "" {
		return false, c.closeWith(closeInvalidMessage, "Invalid message received")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m.Type {
	case "ping", "pong":
		return true, nil
	case "connection_init":
		if c.initialised {
			return false, c.closeLocked(closeTooManyInitiating, "Too many initialisation requests")
		}
		if !isAbsent(m.Payload) && !isObject(m.Payload) {
			return false, c.closeLocked(closeInvalidMessage, "Invalid message received: the connection_init payload must be an object")
		}
		c.initialised = true
		c.initTimer.Stop()
		return true, nil
	}
	if !c.initialised {
		return false, c.closeLocked(closeUnauthorized, "Unauthorized")
	}
	switch m.Type {
	case "subscribe":
		var p struct {
			Query *string `json:"query"`
		}
		if m.ID == "" || json.Unmarshal(m.Payload, &p) != nil || p.Query == nil {
			return false, c.closeLocked(closeInvalidMessage, "Invalid message received: subscribe needs an id and a payload with a query")
		}
		if c.active[m.ID] {
			return false, c.closeLocked(closeSubscriberExists, closeReason("Subscriber for "+m.ID+" already exists"))
		}
		if ok, wait := c.l.opt.Subscribes.Allow(c.key); !ok {
			return false, &subscribeRefusal{id: m.ID, err: apperr.E(apperr.RateLimited,
				"this connection sends subscribe messages faster than WS_SUBSCRIBE_RPS allows: retry in %d s", httpx.RetryAfterSeconds(wait))}
		}
		if n := len(c.active); n >= c.l.opt.MaxSubscriptions {
			return false, &subscribeRefusal{id: m.ID, err: apperr.E(apperr.RateLimited,
				"this connection has %d subscriptions, the most it may have (MAX_SUBSCRIPTIONS_PER_CONNECTION): complete one first", n)}
		}
		c.active[m.ID] = true
		return true, nil
	case "complete":
		if m.ID == "" {
			return false, c.closeLocked(closeInvalidMessage, "Invalid message received: complete needs an id")
		}
		return true, nil
	}
	return false, c.closeLocked(closeInvalidMessage, closeReason("Invalid message received: unknown type "+m.Type))
}

// writeError answers a subscribe with an error message of its own (the
// subscription never starts), as gqlgen answers a refused operation.
func (c *liveConn) writeError(id string, err error) error {
	b, mErr := json.Marshal(struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Payload []any  `json:"payload"`
	}{id, "error", []any{requestError(apperr.ErrorCode(err), apperr.ErrorMessage(err))}})
	if mErr != nil {
		return mErr
	}
	return c.write(b)
}

// WriteJSON writes a message of gqlgen's. A subscription's id becomes free
// again with its complete or error message; a complete after an error of
// the same id (gqlgen sends both when an operation is refused) is not
// sent, as graphql-transport-ws ends a subscription with one or the other.
func (c *liveConn) WriteJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.HasSuffix(b, []byte(`"type":"next"}`)) {
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("websocket: unreadable message of gqlgen: %w", err)
		}
		if m.Type == "complete" || m.Type == "error" {
			c.mu.Lock()
			was := c.active[m.ID]
			delete(c.active, m.ID)
			c.mu.Unlock()
			if !was && m.Type == "complete" {
				return nil
			}
		}
	}
	return c.write(b)
}

// write sends one text message within wsWriteTimeout; past it coder
// closes the connection.
func (c *liveConn) write(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), wsWriteTimeout)
	defer cancel()
	return c.conn.Write(ctx, coderws.MessageText, b)
}

// closeWith starts the close handshake with code and reason (once; later
// calls do nothing) and answers the error NextReader gives gqlgen.
func (c *liveConn) closeWith(code int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeLocked(code, reason)
}

// closeLocked is closeWith for a caller that holds c.mu. The handshake
// (which waits up to 5 s for the client's close frame) runs in the
// background, as in gqlgen's adapter, so gqlgen's teardown does not wait.
func (c *liveConn) closeLocked(code int, reason string) error {
	if c.closing || c.conn == nil {
		return errClosedByServer
	}
	c.closing = true
	c.handshake = make(chan struct{})
	c.stopTimersLocked()
	done := c.handshake
	go func() {
		defer close(done)
		_ = c.conn.Close(coderws.StatusCode(code), reason)
	}()
	return errClosedByServer
}

func (c *liveConn) stopTimersLocked() {
	if c.initTimer != nil {
		c.initTimer.Stop()
	}
	if c.readTimer != nil {
		c.readTimer.Stop()
		c.readTimer = nil
	}
}

// WriteClose is gqlgen's close: the first close (gqlgen's or the
// server's own) wins.
func (c *liveConn) WriteClose(code int, reason string) error {
	_ = c.closeWith(code, reason)
	return nil
}

// Close drops the connection unless a close handshake owns it.
func (c *liveConn) Close() error {
	c.mu.Lock()
	closing := c.closing
	c.stopTimersLocked()
	c.mu.Unlock()
	if closing {
		return nil
	}
	return c.conn.CloseNow()
}

// Subprotocol answers the negotiated subprotocol.
func (c *liveConn) Subprotocol() string { return c.conn.Subprotocol() }

// SetReadLimit bounds one message from the client; coder closes a
// connection whose message is larger with 1009.
func (c *liveConn) SetReadLimit(limit int64) { c.conn.SetReadLimit(limit) }

// SetReadDeadline drops the connection at t unless it is moved (gqlgen
// sets it while it waits for a pong).
func (c *liveConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readTimer != nil {
		c.readTimer.Stop()
		c.readTimer = nil
	}
	if t.IsZero() || c.closing {
		return nil
	}
	c.readTimer = time.AfterFunc(time.Until(t), func() { _ = c.conn.CloseNow() })
	return nil
}

// Package gqlws is a small client of the graphql-transport-ws protocol
// (the graphql-ws library's), over coder/websocket: the end-to-end tests
// and the benchmarks speak to the server's subscriptions with it as a
// browser's graphql-ws client would. It answers the server's pings and
// leaves every other message, protocol errors included, to its caller.
package gqlws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/coder/websocket"
)

// Subprotocol is the websocket subprotocol the client offers.
const Subprotocol = "graphql-transport-ws"

// Message is one protocol message.
type Message struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Conn is an open connection.
type Conn struct {
	ws *websocket.Conn
}

// Dial opens a websocket to url offering graphql-transport-ws, with header
// (Origin, Authorization) on the upgrade request. A refused upgrade
// answers the HTTP response (its body unread) with the error.
func Dial(ctx context.Context, url string, header http.Header) (*Conn, *http.Response, error) {
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPHeader: header, Subprotocols: []string{Subprotocol},
	})
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(16 << 20)
	return &Conn{ws: ws}, resp, nil
}

// Init sends connection_init with payload (nil: none) and waits for
// connection_ack.
func (c *Conn) Init(ctx context.Context, payload any) error {
	if err := c.Send(ctx, "connection_init", "", payload); err != nil {
		return err
	}
	m, err := c.Next(ctx)
	if err != nil {
		return err
	}
	if m.Type != "connection_ack" {
		return fmt.Errorf("gqlws: %s instead of connection_ack", m.Type)
	}
	return nil
}

// Subscribe sends a subscribe message with the operation.
func (c *Conn) Subscribe(ctx context.Context, id, query string, variables map[string]any) error {
	return c.Send(ctx, "subscribe", id, map[string]any{"query": query, "variables": variables})
}

// Send writes one message; a nil payload is left out.
func (c *Conn) Send(ctx context.Context, typ, id string, payload any) error {
	m := Message{Type: typ, ID: id}
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		m.Payload = b
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.SendRaw(ctx, b)
}

// SendRaw writes b as one text message, as it is.
func (c *Conn) SendRaw(ctx context.Context, b []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// Next answers the next message that is not a ping (pings are answered
// with pong here). When the server closes the connection the error is a
// *CloseError with its code and reason.
func (c *Conn) Next(ctx context.Context) (Message, error) {
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return Message{}, &CloseError{Code: int(ce.Code), Reason: ce.Reason}
			}
			return Message{}, err
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			return Message{}, fmt.Errorf("gqlws: unreadable message %q: %w", b, err)
		}
		if m.Type == "ping" {
			if err := c.Send(ctx, "pong", "", nil); err != nil {
				return Message{}, err
			}
			continue
		}
		return m, nil
	}
}

// Close closes the connection normally.
func (c *Conn) Close() error { return c.ws.Close(websocket.StatusNormalClosure, "") }

// CloseNow drops the connection without the close handshake.
func (c *Conn) CloseNow() error { return c.ws.CloseNow() }

// CloseError is the server's close frame.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("gqlws: closed %d %s", e.Code, e.Reason) }

// CloseCode answers the close code of err, or 0 when the server did not
// close the connection with one.
func CloseCode(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

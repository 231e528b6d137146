package feed

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Channel is the PostgreSQL notification channel that carries the feed
// between replicas.
const Channel = "timeslots_feed"

// MaxPayload bounds one notification's payload in bytes: PostgreSQL
// refuses payloads of 8000 bytes or more.
const MaxPayload = 7999

// The wire format of a notification is JSON:
//
//	{"o": origin, "e": [event, …]}
//
// where each event is
//
//	{"k": kind, "s": slot id, "p": provider id, "a": start, "b": end,
//	 "c": capacity, "r": remaining, "v": version, "n": count}
//
// with the times in Unix microseconds (absent: zero time) and every other
// absent field zero. Encode writes it and Decode reads it.
type wireMessage struct {
	Origin string      `json:"o"`
	Events []wireEvent `json:"e"`
}

type wireEvent struct {
	Kind       Kind   `json:"k"`
	SlotID     int64  `json:"s,omitempty"`
	ProviderID int64  `json:"p,omitempty"`
	Start      *int64 `json:"a,omitempty"`
	End        *int64 `json:"b,omitempty"`
	Capacity   int    `json:"c,omitempty"`
	Remaining  int    `json:"r,omitempty"`
	Version    int64  `json:"v,omitempty"`
	Count      int    `json:"n,omitempty"`
}

// micros is t in Unix microseconds, or nil for the zero time.
func micros(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	us := t.UnixMicro()
	return &us
}

// instant is the time of Unix microseconds us, the zero time for nil.
func instant(us *int64) time.Time {
	if us == nil {
		return time.Time{}
	}
	return time.UnixMicro(*us).UTC()
}

// Encode answers the notification payloads that carry events from origin,
// in order, each at most MaxPayload bytes: as many events to a payload as
// fit.
func Encode(origin string, events []Event) []string {
	var out []string
	head := `{"o":` + mustJSON(origin) + `,"e":[`
	buf := []byte(head)
	n := 0
	for _, e := range events {
		one := mustJSON(wireEvent{Kind: e.Kind, SlotID: e.SlotID, ProviderID: e.ProviderID,
			Start: micros(e.Start), End: micros(e.End), Capacity: e.Capacity, Remaining: e.Remaining,
			Version: e.Version, Count: e.Count})
		if n > 0 && len(buf)+1+len(one)+2 > MaxPayload {
			out = append(out, string(append(buf, "]}"...)))
			buf, n = []byte(head), 0
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, one...)
		n++
	}
	if n > 0 {
		out = append(out, string(append(buf, "]}"...)))
	}
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings, integers and Kinds always marshal
	}
	return string(b)
}

// Decode reads a notification payload: its origin and events. A payload
// that is not the feed's, or names a kind it does not know, is an error.
func Decode(payload string) (origin string, events []Event, err error) {
	var m wireMessage
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		return "", nil, fmt.Errorf("feed: decode notification: %w", err)
	}
	events = make([]Event, 0, len(m.Events))
	for _, w := range m.Events {
		if !w.Kind.known() {
			return "", nil, fmt.Errorf("feed: decode notification: unknown kind %q", w.Kind)
		}
		events = append(events, Event{Kind: w.Kind, SlotID: w.SlotID, ProviderID: w.ProviderID,
			Start: instant(w.Start), End: instant(w.End), Capacity: w.Capacity, Remaining: w.Remaining,
			Version: w.Version, Count: w.Count})
	}
	return m.Origin, events, nil
}

func (k Kind) known() bool {
	switch k {
	case Booked, Cancelled, Rescheduled, Held, Released, Expired, Generated, CleanedUp, ProviderDeactivated, ProviderUpdated, Refetch:
		return true
	}
	return false
}

// newOrigin answers a random name for one feed, so a replica recognises
// its own notifications.
func newOrigin() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

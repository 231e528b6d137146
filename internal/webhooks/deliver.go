package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"timeslots/internal/database"
	"timeslots/internal/slots"
	"timeslots/models"
)

// MaxResponseBody is how much of a receiver's answer is read and kept.
const MaxResponseBody = 4 << 10

// payload is the JSON body of a delivery.
type payload struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"createdAt"`
	Data      any       `json:"data"`
}

// eventBody answers the body of a new event of type kind and its id.
func eventBody(kind string, at time.Time, data any) (string, string, error) {
	id := newEventID()
	body, err := renderEvent(id, kind, at, data)
	return body, id, err
}

// renderEvent answers the body of event id, of type kind, at at.
func renderEvent(id, kind string, at time.Time, data any) (string, error) {
	body, err := json.Marshal(payload{ID: id, Type: kind, CreatedAt: at.UTC(), Data: data})
	return string(body), err
}

// newEventID is "evt_" and 24 URL-safe characters: 144 random bits.
func newEventID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return "evt_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// bookingData is a booking as an event tells it. The booking's reference
// stays out: whoever holds it may cancel the booking.
type bookingData struct {
	ID          int64      `json:"id"`
	SlotID      *int64     `json:"slotId"`
	ProviderID  int64      `json:"providerId"`
	StartTime   time.Time  `json:"startTime"`
	EndTime     time.Time  `json:"endTime"`
	Customer    string     `json:"customer"`
	CustomerID  *string    `json:"customerId"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"createdAt"`
	CancelledAt *time.Time `json:"cancelledAt"`
}

// slotData is a slot as an event tells it.
type slotData struct {
	ID          int64     `json:"id"`
	ProviderID  int64     `json:"providerId"`
	StartTime   time.Time `json:"startTime"`
	EndTime     time.Time `json:"endTime"`
	Capacity    int       `json:"capacity"`
	BookedCount int       `json:"bookedCount"`
	Remaining   int       `json:"remaining"`
}

func slotOf(s *models.TimeSlot) *slotData {
	if s == nil {
		return nil
	}
	return &slotData{ID: s.ID, ProviderID: s.ProviderID, StartTime: s.StartTime.UTC(), EndTime: s.EndTime.UTC(),
		Capacity: s.Capacity, BookedCount: s.BookedCount, Remaining: max(s.Capacity-s.BookedCount, 0)}
}

// holdData is a hold as an event tells it. Like a booking's, the hold's
// reference stays out (whoever holds it may book or release the seat),
// and so does its idempotency key.
type holdData struct {
	ID         int64      `json:"id"`
	SlotID     int64      `json:"slotId"`
	Customer   *string    `json:"customer"`
	CustomerID *string    `json:"customerId"`
	Status     string     `json:"status"`
	ExpiresAt  time.Time  `json:"expiresAt"`
	CreatedAt  time.Time  `json:"createdAt"`
	EndedAt    *time.Time `json:"endedAt"`
}

// eventData is the data of e's body.
func eventData(e slots.Event) any {
	if h := e.Hold; h != nil {
		return struct {
			Hold holdData  `json:"hold"`
			Slot *slotData `json:"slot"`
		}{
			Hold: holdData{ID: h.ID, SlotID: h.SlotID, Customer: h.Customer, CustomerID: h.CustomerID, Status: string(h.Status),
				ExpiresAt: h.ExpiresAt.UTC(), CreatedAt: h.CreatedAt.UTC(), EndedAt: h.EndedAt},
			Slot: slotOf(e.Slot),
		}
	}
	b := e.Booking
	data := struct {
		Booking      bookingData `json:"booking"`
		Slot         *slotData   `json:"slot"`
		PreviousSlot *slotData   `json:"previousSlot,omitempty"`
	}{
		Booking: bookingData{ID: b.ID, SlotID: b.SlotID, ProviderID: b.ProviderID, StartTime: b.StartTime.UTC(),
			EndTime: b.EndTime.UTC(), Customer: b.Customer, CustomerID: b.CustomerID, Status: string(b.Status),
			CreatedAt: b.CreatedAt.UTC(), CancelledAt: b.CancelledAt},
		Slot: slotOf(e.Slot), PreviousSlot: slotOf(e.Previous),
	}
	return data
}

// Sign answers the webhook-signature header of a delivery: "v1," and the
// base64 HMAC-SHA256, keyed with the secret's bytes (the base64 after
// "whsec_"), of "id.timestamp.body".
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		return "", fmt.Errorf("the signing secret is not whsec_ and base64: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// deliveryWorker delivers one event to one endpoint per attempt.
type deliveryWorker struct {
	river.WorkerDefaults[deliveryArgs]
	s *Service
}

// errDelivery is an attempt that reached the receiver and was not
// answered 2xx, or did not reach it.
var errDelivery = errors.New("webhook delivery failed")

func (w *deliveryWorker) Work(ctx context.Context, job *river.Job[deliveryArgs]) error {
	s := w.s
	if job.Args.HoldID != 0 {
		if err := s.holdExpired(ctx, job.Args.HoldID); err != nil {
			return err
		}
	}
	// The view of enabled endpoints answers without a query; one it lacks
	// (created, disabled or deleted since it was read) is read.
	ep, ok := s.view.Load().byID[job.Args.EndpointID]
	if !ok {
		ep = new(models.WebhookEndpoint)
		err := s.db.WithContext(ctx).Take(ep, job.Args.EndpointID).Error
		if errors.Is(err, gorm.ErrRecordNotFound) || err == nil && !ep.Enabled {
			// Deleted or disabled since: nothing is owed to it any more.
			return river.JobCancel(fmt.Errorf("webhook endpoint %d is deleted or disabled", job.Args.EndpointID))
		}
		if err != nil {
			return err
		}
	}
	code, body, sendErr := s.send(ctx, ep, job.Args)
	d := models.WebhookDelivery{
		EndpointID: ep.ID, EventID: job.Args.EventID, EventType: job.Args.Type, JobID: job.ID,
		Attempt: job.Attempt, ResponseBody: body, UpdatedAt: s.now().UTC(),
	}
	d.CreatedAt = d.UpdatedAt
	if code != 0 {
		d.ResponseCode = &code
	}
	switch {
	case sendErr == nil:
		d.Status = models.WebhookDelivered
	case job.Attempt >= job.MaxAttempts:
		d.Status, d.Error = models.WebhookFailed, sendErr.Error()
	default:
		next := d.UpdatedAt.Add(backoff{base: s.opts.Backoff}.after(job.Attempt))
		d.Status, d.Error, d.NextAttemptAt = models.WebhookRetrying, sendErr.Error(), &next
	}
	if err := s.db.WithContext(context.WithoutCancel(ctx)).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "endpoint_id"}, {Name: "event_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"job_id", "status", "attempt", "response_code", "error",
			"response_body", "next_attempt_at", "updated_at"}),
	}).Create(&d).Error; err != nil {
		s.opts.Logger.Error("webhook delivery not recorded", slog.String("event_id", d.EventID), slog.String("error", err.Error()))
	}
	if s.opts.Observe != nil {
		s.opts.Observe(d.Status)
	}
	return sendErr
}

// holdExpiryGrace is how long after a hold's expiry its hold.expired
// waits before it checks the hold, so that a booking of the hold that
// began before the expiry, by a clock a little behind this one, has
// committed (or no longer can) when it looks.
const holdExpiryGrace = 2 * time.Second

// holdExpired answers nil when hold id expired while held, so that its
// hold.expired is owed; River's cancel when it was released or booked
// first, or is gone (its slot deleted); River's snooze until its expiry
// and the grace have passed. On PostgreSQL the check waits for a change of
// the hold that is committing (FOR SHARE).
func (s *Service) holdExpired(ctx context.Context, id int64) error {
	query := "SELECT status, expires_at FROM slot_holds WHERE id = ?"
	if s.db.Dialect == database.Postgres {
		query += " FOR SHARE"
	}
	var h models.Hold
	res := s.db.WithContext(ctx).Raw(query, id).Scan(&h)
	switch {
	case res.Error != nil:
		return res.Error
	case res.RowsAffected == 0:
		return river.JobCancel(fmt.Errorf("hold %d is gone: no hold.expired", id))
	}
	switch status := h.StatusAt(s.now().Add(-holdExpiryGrace)); status {
	case models.HoldExpired:
		return nil
	case models.HoldHeld:
		return river.JobSnooze(h.ExpiresAt.Add(holdExpiryGrace).Sub(s.now()))
	default:
		return river.JobCancel(fmt.Errorf("hold %d was %s before it expired: no hold.expired", id, status))
	}
}

// send makes one attempt: it answers the response's status (0 for none),
// the start of its body, and nil for a 2xx answer.
func (s *Service) send(ctx context.Context, ep *models.WebhookEndpoint, a deliveryArgs) (int, string, error) {
	ts := s.now().Unix()
	sig, err := Sign(ep.Secret, a.EventID, ts, []byte(a.Body))
	if err != nil {
		return 0, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, strings.NewReader(a.Body))
	if err != nil {
		return 0, "", fmt.Errorf("%w: %w", errDelivery, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "timeslots-webhooks")
	req.Header.Set("webhook-id", a.EventID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%w: %w", errDelivery, err)
	}
	defer resp.Body.Close()
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	body := validPrefix(raw)
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return resp.StatusCode, body, fmt.Errorf("%w: the receiver answered %d", errDelivery, resp.StatusCode)
	case readErr != nil:
		return resp.StatusCode, body, fmt.Errorf("%w: reading the answer: %w", errDelivery, readErr)
	}
	return resp.StatusCode, body, nil
}

// validPrefix answers b as text, cut where it stops being valid UTF-8
// (the database keeps text) and without NUL characters.
func validPrefix(b []byte) string {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 || r == 0 {
			return string(b[:i])
		}
		i += n
	}
	return string(b)
}

// newHTTPClient is the client of deliveries: every attempt within
// timeout, no redirect followed (a 3xx is a failed attempt), no proxy, and
// unless allowPrivate a dialer that refuses loopback, private,
// link-local and unspecified addresses after name resolution, so a name
// that resolves there (DNS rebinding included) is refused too.
func newHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		dialer.Control = refusePrivate
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport:     transport,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// errPrivate refuses a dial to an address deliveries may not reach.
var errPrivate = errors.New("the address is loopback, private, link-local or unspecified (WEBHOOK_ALLOW_PRIVATE=true allows it)")

// refusePrivate is the dialer's Control: it sees the address about to be
// connected to, after resolution.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("dial %s: %w", address, errPrivate)
	}
	return nil
}

// Public reports whether deliveries may reach a: not loopback, private
// (RFC 1918, unique local), link-local, unspecified, multicast, or the
// shared address space of carrier-grade NAT.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() && !a.IsLinkLocalMulticast() &&
		!a.IsUnspecified() && !a.IsMulticast() && !a.IsInterfaceLocalMulticast() && !cgnat.Contains(a)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

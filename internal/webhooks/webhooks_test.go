package webhooks_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/internal/webhooks"
	"timeslots/models"
)

var ctx = context.Background()

// day is when the tests stand: each provider has slots at 09:00, 10:00
// and 11:00 UTC the next day.
var day = time.Date(2030, 1, 7, 6, 0, 0, 0, time.UTC)

// delivery is one request a receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver records every request and answers with answer.
type receiver struct {
	*httptest.Server
	got chan delivery
}

func newReceiver(t *testing.T, answer http.HandlerFunc) *receiver {
	r := &receiver{got: make(chan delivery, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.got <- delivery{header: req.Header.Clone(), body: body}
		if answer != nil {
			answer(w, req)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

// verify checks a delivery's signature as the Standard Webhooks
// specification tells a receiver to, from the secret alone.
func verify(secret string, d delivery) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts := d.header.Get("webhook-id"), d.header.Get("webhook-timestamp")
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil || id == "" {
		return fmt.Errorf("webhook-id %q, webhook-timestamp %q", id, ts)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, d.body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(d.header.Get("webhook-signature")) {
		if v, s, ok := strings.Cut(sig, ","); ok && v == "v1" && hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no v1 signature matches in %q", d.header.Get("webhook-signature"))
}

type fixture struct {
	db    *database.DB
	hooks *webhooks.Service
	m     *slots.Manager
	slots []models.TimeSlot
}

func newFixture(t *testing.T, db *database.DB, opts webhooks.Options, outbox func(*webhooks.Service) slots.Outbox) *fixture {
	t.Helper()
	svc, err := webhooks.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(ctx) })
	var o slots.Outbox = svc
	if outbox != nil {
		o = outbox(svc)
	}
	m := slots.New(db, slots.WithClock(func() time.Time { return day }), slots.WithOutbox(o))
	cap1 := 1
	p, err := m.CreateProvider(ctx, models.ProviderInput{Name: "Hooked", TimeZone: "UTC", SlotMinutes: 60,
		Capacity: &cap1, WorkingHours: everyDay("09:00", "12:00")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Generate(ctx, slots.GenerateInput{DaysAhead: 2, ProviderIDs: []int64{p.ID}}); err != nil {
		t.Fatal(err)
	}
	var rows []models.TimeSlot
	if err := db.Where("provider_id = ?", p.ID).Order("start_time").Find(&rows).Error; err != nil || len(rows) < 3 {
		t.Fatalf("slots: %d, %v", len(rows), err)
	}
	return &fixture{db: db, hooks: svc, m: m, slots: rows}
}

func everyDay(start, end string) []models.WorkingHours {
	var out []models.WorkingHours
	for _, d := range models.AllWeekdays {
		out = append(out, models.WorkingHours{Weekday: d, Start: start, End: end})
	}
	return out
}

// jobs answers the delivery jobs on River's queue, once every event a
// booking staged is moved there.
func (f *fixture) jobs(t *testing.T) int64 {
	t.Helper()
	if _, err := f.hooks.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := f.db.Raw("SELECT COUNT(*) FROM river_job WHERE kind = 'webhook_delivery'").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func create(t *testing.T, svc *webhooks.Service, url string, events ...string) *webhooks.Created {
	t.Helper()
	c, err := svc.Create(ctx, webhooks.Input{URL: &url, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var allEvents = []string{"booking.created", "booking.cancelled", "booking.rescheduled"}

// fast are options for tests: short waits, loopback allowed.
func fast() webhooks.Options {
	return webhooks.Options{AllowPrivate: true, Backoff: 20 * time.Millisecond, Poll: 20 * time.Millisecond, Timeout: 5 * time.Second}
}

func TestEachBookingChangeIsDeliveredOnceSignedWithItsType(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		f := newFixture(t, db, fast(), nil)
		rcv := newReceiver(t, nil)
		c := create(t, f.hooks, rcv.URL, allEvents...)
		if !strings.HasPrefix(c.Secret, "whsec_") {
			t.Fatalf("secret %q", c.Secret)
		}
		b, _, err := f.m.Book(ctx, slots.BookInput{SlotID: f.slots[0].ID, Customer: "Ann"})
		if err != nil {
			t.Fatal(err)
		}
		ref := slots.BookingRef{Reference: &b.Reference}
		if _, err := f.m.Reschedule(ctx, slots.Actor{}, slots.RescheduleInput{Booking: ref, SlotID: f.slots[1].ID}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.m.Cancel(ctx, slots.Actor{}, ref); err != nil {
			t.Fatal(err)
		}
		if n := f.jobs(t); n != 3 {
			t.Fatalf("%d delivery jobs enqueued, want 3", n)
		}
		if err := f.hooks.Start(ctx); err != nil {
			t.Fatal(err)
		}
		types := map[string]int{}
		for range 3 {
			d := <-rcv.got
			if err := verify(c.Secret, d); err != nil {
				t.Fatal(err)
			}
			var p struct {
				ID, Type string
				Data     struct {
					Booking struct {
						ID     int64
						SlotID int64
						Status string
					}
					Slot         struct{ ID, Remaining int64 }
					PreviousSlot *struct{ ID, Remaining int64 }
				}
			}
			if err := json.Unmarshal(d.body, &p); err != nil {
				t.Fatal(err)
			}
			if p.ID != d.header.Get("webhook-id") || p.Data.Booking.ID != b.ID {
				t.Fatalf("body %s with webhook-id %q", d.body, d.header.Get("webhook-id"))
			}
			types[p.Type]++
			switch p.Type {
			case "booking.created":
				if p.Data.Slot.ID != f.slots[0].ID || p.Data.Slot.Remaining != 0 || p.Data.Booking.Status != "confirmed" {
					t.Fatalf("created: %s", d.body)
				}
			case "booking.rescheduled":
				if p.Data.Booking.SlotID != f.slots[1].ID || p.Data.PreviousSlot == nil || p.Data.PreviousSlot.ID != f.slots[0].ID ||
					p.Data.PreviousSlot.Remaining != 1 {
					t.Fatalf("rescheduled: %s", d.body)
				}
			case "booking.cancelled":
				if p.Data.Booking.Status != "cancelled" || p.Data.Slot.ID != f.slots[1].ID || p.Data.Slot.Remaining != 1 {
					t.Fatalf("cancelled: %s", d.body)
				}
			}
		}
		if types["booking.created"] != 1 || types["booking.rescheduled"] != 1 || types["booking.cancelled"] != 1 {
			t.Fatalf("event types delivered: %v", types)
		}
		ds := waitDeliveries(t, f.hooks, c.Endpoint.ID, 3, models.WebhookDelivered)
		for _, d := range ds {
			if d.ResponseCode == nil || *d.ResponseCode != 200 || d.Attempt != 1 {
				t.Fatalf("delivery %+v", d)
			}
		}
	})
}

// waitDeliveries waits until the endpoint has n deliveries, each of
// status, and answers them.
func waitDeliveries(t *testing.T, svc *webhooks.Service, endpoint int64, n int, status models.WebhookDeliveryStatus) []models.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds, err := svc.Deliveries(ctx, endpoint, 100)
		if err != nil {
			t.Fatal(err)
		}
		done := len(ds) == n
		for _, d := range ds {
			done = done && d.Status == status
		}
		if done {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %+v; want %d %s", ds, n, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// failingOutbox enqueues in the change's transaction, then fails: the
// booking must roll back with what was enqueued. (It is no
// StatementOutbox: on PostgreSQL too the booking goes through Enqueue.)
type failingOutbox struct{ s *webhooks.Service }

var errOutbox = errors.New("the outbox fails")

func (o failingOutbox) Wants(kind slots.EventKind) bool { return o.s.Wants(kind) }

func (o failingOutbox) Enqueue(ctx context.Context, tx *sql.Tx, e slots.Event) error {
	if err := o.s.Enqueue(ctx, tx, e); err != nil {
		return err
	}
	return errOutbox
}

func TestAChangeThatIsRefusedOrRolledBackEnqueuesNothing(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		f := newFixture(t, db, fast(), nil)
		create(t, f.hooks, "https://receiver.example/hooks", allEvents...)
		if _, _, err := f.m.Book(ctx, slots.BookInput{SlotID: f.slots[0].ID, Customer: "Ann"}); err != nil {
			t.Fatal(err)
		}
		_, _, err := f.m.Book(ctx, slots.BookInput{SlotID: f.slots[0].ID, Customer: "Bob"})
		if apperr.ErrorCode(err) != apperr.SlotUnavailable {
			t.Fatalf("booking a full slot: %v", err)
		}
		if n := f.jobs(t); n != 1 {
			t.Fatalf("%d jobs after one booking and one refusal, want 1", n)
		}

		g := newFixture(t, db, fast(), func(s *webhooks.Service) slots.Outbox { return failingOutbox{s} })
		create(t, g.hooks, "https://receiver.example/other", allEvents...)
		if _, _, err := g.m.Book(ctx, slots.BookInput{SlotID: g.slots[0].ID, Customer: "Cy"}); !errors.Is(err, errOutbox) {
			t.Fatalf("booking whose outbox fails: %v", err)
		}
		var bookings int64
		if err := db.Raw("SELECT COUNT(*) FROM bookings WHERE slot_id = ?", g.slots[0].ID).Scan(&bookings).Error; err != nil {
			t.Fatal(err)
		}
		if n := g.jobs(t); n != 1 || bookings != 0 {
			t.Fatalf("after a rolled-back booking: %d jobs (want 1), %d bookings (want 0)", n, bookings)
		}
	})
}

func TestOnlyTheEventsAnEndpointWantsAreEnqueued(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		f := newFixture(t, db, fast(), nil)
		c := create(t, f.hooks, "https://receiver.example/cancel", "booking.cancelled")
		b, _, err := f.m.Book(ctx, slots.BookInput{SlotID: f.slots[0].ID, Customer: "Ann"})
		if err != nil {
			t.Fatal(err)
		}
		if n := f.jobs(t); n != 0 {
			t.Fatalf("a booking enqueued %d jobs for an endpoint of cancellations only", n)
		}
		if _, _, err := f.m.Cancel(ctx, slots.Actor{}, slots.BookingRef{Reference: &b.Reference}); err != nil {
			t.Fatal(err)
		}
		if n := f.jobs(t); n != 1 {
			t.Fatalf("%d jobs after the cancellation, want 1", n)
		}
		off := false
		if _, err := f.hooks.Update(ctx, c.Endpoint.ID, webhooks.Input{Enabled: &off}); err != nil {
			t.Fatal(err)
		}
		if f.hooks.Wants(slots.BookingCancelled) {
			t.Fatal("a disabled endpoint still wants cancellations")
		}
		var ae *apperr.Error
		if _, err := f.hooks.SendTest(ctx, c.Endpoint.ID); !errors.As(err, &ae) || ae.Code != apperr.BadUserInput || ae.Field != "id" {
			t.Fatalf("a test event to a disabled webhook: %v", err)
		}
	})
}

func TestEndpointInputIsValidated(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, database.SQLite)
	svc, err := webhooks.New(db, webhooks.Options{})
	if err != nil {
		t.Fatal(err)
	}
	long := "https://x.example/" + strings.Repeat("a", webhooks.MaxURLLength)
	for _, c := range []struct {
		name, url string
		events    []string
		field     string
	}{
		{"a URL of another scheme", "ftp://x.example/", allEvents, "url"},
		{"a relative URL", "/hooks", allEvents, "url"},
		{"an empty URL", "", allEvents, "url"},
		{"a URL too long", long, allEvents, "url"},
		{"a loopback address without WEBHOOK_ALLOW_PRIVATE", "http://127.0.0.1:9/x", allEvents, "url"},
		{"a private address", "http://10.1.2.3/x", allEvents, "url"},
		{"no events", "https://x.example/", nil, "events"},
		{"an unknown event", "https://x.example/", []string{"booking.created", "slot.exploded"}, "events"},
	} {
		_, err := svc.Create(ctx, webhooks.Input{URL: &c.url, Events: c.events})
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != apperr.BadUserInput || ae.Field != c.field {
			t.Errorf("%s: %v; want BAD_USER_INPUT naming %s", c.name, err, c.field)
		}
	}
	if _, err := svc.Update(ctx, 12345, webhooks.Input{}); apperr.ErrorCode(err) != apperr.NotFound {
		t.Errorf("update of a missing webhook: %v", err)
	}
	if err := svc.Delete(ctx, 12345); apperr.ErrorCode(err) != apperr.NotFound {
		t.Errorf("delete of a missing webhook: %v", err)
	}
}

// deliverOnce sends a test event to url with opts and waits for its
// delivery's final state.
func deliverOnce(t *testing.T, db *database.DB, opts webhooks.Options, url string) models.WebhookDelivery {
	t.Helper()
	opts.MaxAttempts = 1
	svc, err := webhooks.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(ctx) })
	c := create(t, svc, url, allEvents...)
	if _, err := svc.SendTest(ctx, c.Endpoint.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds, err := svc.Deliveries(ctx, c.Endpoint.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 {
			return ds[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDeliveriesAreGuarded(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		t.Run("a name resolving to loopback is refused at dial time without the flag", func(t *testing.T) {
			rcv := newReceiver(t, nil)
			url := strings.Replace(rcv.URL, "127.0.0.1", "localhost", 1)
			opts := fast()
			opts.AllowPrivate = false
			d := deliverOnce(t, db, opts, url)
			if d.Status != models.WebhookFailed || d.ResponseCode != nil || !strings.Contains(d.Error, "loopback, private") {
				t.Fatalf("delivery %+v", d)
			}
			if len(rcv.got) != 0 {
				t.Fatal("the receiver on loopback was reached")
			}
		})
		t.Run("a redirect is not followed", func(t *testing.T) {
			target := newReceiver(t, nil)
			rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL, http.StatusFound)
			})
			d := deliverOnce(t, db, fast(), rcv.URL)
			if d.Status != models.WebhookFailed || d.ResponseCode == nil || *d.ResponseCode != 302 || len(target.got) != 0 {
				t.Fatalf("delivery %+v; the target got %d requests", d, len(target.got))
			}
		})
		t.Run("a big answer is kept cut at 4 KiB", func(t *testing.T) {
			rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
			})
			d := deliverOnce(t, db, fast(), rcv.URL)
			if d.Status != models.WebhookDelivered || len(d.ResponseBody) != webhooks.MaxResponseBody {
				t.Fatalf("status %s, body of %d bytes", d.Status, len(d.ResponseBody))
			}
		})
		t.Run("an attempt past the timeout fails", func(t *testing.T) {
			rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
			opts := fast()
			opts.Timeout = 300 * time.Millisecond
			d := deliverOnce(t, db, opts, rcv.URL)
			if d.Status != models.WebhookFailed || d.ResponseCode != nil || !strings.Contains(d.Error, "deadline exceeded") && !strings.Contains(d.Error, "timeout") {
				t.Fatalf("delivery %+v", d)
			}
		})
	})
}

// holdEvent is a hold event's body, as the tests read it.
type holdEvent struct {
	Type string
	Data struct {
		Hold struct {
			ID        int64
			SlotID    int64
			Status    string
			ExpiresAt time.Time
		}
		Slot *struct{ ID, Remaining int64 }
	}
}

func readHoldEvent(t *testing.T, body []byte) holdEvent {
	t.Helper()
	var p holdEvent
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAHoldAndItsReleaseAreEnqueuedWithoutItsReference(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		f := newFixture(t, db, fast(), nil)
		create(t, f.hooks, "https://receiver.example/holds", "hold.created", "hold.released")
		h, _, err := f.m.Hold(ctx, slots.HoldInput{SlotID: f.slots[0].ID, Customer: "Ann", IdempotencyKey: "key-1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.m.Book(ctx, slots.BookInput{SlotID: f.slots[1].ID, Customer: "Bob"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.m.ReleaseHold(ctx, h.Reference); err != nil {
			t.Fatal(err)
		}
		var bodies []string
		if err := db.Raw("SELECT args->>'body' FROM river_job WHERE kind = 'webhook_delivery' ORDER BY id").Scan(&bodies).Error; err != nil {
			t.Fatal(err)
		}
		if len(bodies) != 2 {
			t.Fatalf("%d jobs for a hold, a booking and a release to an endpoint of hold events, want 2: %v", len(bodies), bodies)
		}
		for i, want := range []string{"hold.created", "hold.released"} {
			p := readHoldEvent(t, []byte(bodies[i]))
			status := map[string]string{"hold.created": "held", "hold.released": "released"}[want]
			if p.Type != want || p.Data.Hold.ID != h.ID || p.Data.Hold.SlotID != f.slots[0].ID || p.Data.Hold.Status != status ||
				p.Data.Slot == nil || p.Data.Slot.ID != f.slots[0].ID {
				t.Fatalf("event %d: %s", i, bodies[i])
			}
			if strings.Contains(bodies[i], h.Reference) || strings.Contains(bodies[i], "key-1") {
				t.Fatalf("the event tells the hold's reference or key: %s", bodies[i])
			}
		}
	})
}

// A hold's hold.expired is enqueued with the hold, for its expiry, and
// delivered then only if the hold expired held: not for a hold released
// or booked first. One manager's clock stands two minutes back, so its
// one-minute holds have expired by the real clock the deliveries run on.
func TestAHoldThatExpiresHeldIsDeliveredAsExpired(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		f := newFixture(t, db, fast(), nil)
		rcv := newReceiver(t, nil)
		c := create(t, f.hooks, rcv.URL, "hold.expired")
		past := slots.New(db, slots.WithClock(func() time.Time { return time.Now().Add(-2 * time.Minute) }), slots.WithOutbox(f.hooks))
		hold := func(m *slots.Manager, slot int64) *models.Hold {
			t.Helper()
			h, _, err := m.Hold(ctx, slots.HoldInput{SlotID: slot, Customer: "Ann", TTLMinutes: ptr(1)})
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		expired := hold(past, f.slots[0].ID)
		released := hold(past, f.slots[1].ID)
		if _, _, err := past.ReleaseHold(ctx, released.Reference); err != nil {
			t.Fatal(err)
		}
		booked := hold(past, f.slots[2].ID)
		if _, _, err := past.BookHold(ctx, booked.Reference, slots.BookInput{Customer: "Ann"}); err != nil {
			t.Fatal(err)
		}
		live := hold(f.m, f.slots[3].ID) // the fixture's clock: 2030
		type job struct {
			Hold        int64
			State       string
			ScheduledAt time.Time
		}
		jobs := func() map[int64]job {
			var rows []job
			if err := db.Raw(`SELECT CAST(COALESCE(args->>'hold_id', '0') AS BIGINT) AS hold, state, scheduled_at
				FROM river_job WHERE kind = 'webhook_delivery'`).Scan(&rows).Error; err != nil {
				t.Fatal(err)
			}
			out := map[int64]job{}
			for _, r := range rows {
				out[r.Hold] = r
			}
			return out
		}
		if js := jobs(); len(js) != 4 || !js[live.ID].ScheduledAt.Equal(live.ExpiresAt) {
			t.Fatalf("jobs %+v for four holds, want one each, the live hold's for %s", js, live.ExpiresAt)
		}
		if err := f.hooks.Start(ctx); err != nil {
			t.Fatal(err)
		}
		d := <-rcv.got
		if err := verify(c.Secret, d); err != nil {
			t.Fatal(err)
		}
		p := readHoldEvent(t, d.body)
		if p.Type != "hold.expired" || p.Data.Hold.ID != expired.ID || p.Data.Hold.SlotID != f.slots[0].ID ||
			p.Data.Hold.Status != "expired" || !p.Data.Hold.ExpiresAt.Equal(expired.ExpiresAt) || p.Data.Slot != nil {
			t.Fatalf("delivered %s", d.body)
		}
		if strings.Contains(string(d.body), expired.Reference) {
			t.Fatalf("the event tells the hold's reference: %s", d.body)
		}
		waitDeliveries(t, f.hooks, c.Endpoint.ID, 1, models.WebhookDelivered)
		deadline := time.Now().Add(30 * time.Second)
		for {
			js := jobs()
			if js[released.ID].State == "cancelled" && js[booked.ID].State == "cancelled" && js[expired.ID].State == "completed" {
				if js[live.ID].State != "scheduled" {
					t.Fatalf("the live hold's job: %+v", js[live.ID])
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("jobs %+v: want the released and booked holds' cancelled", js)
			}
			time.Sleep(20 * time.Millisecond)
		}
		select {
		case d := <-rcv.got:
			t.Fatalf("a second delivery: %s", d.body)
		default:
		}
		if ds, err := f.hooks.Deliveries(ctx, c.Endpoint.ID, 10); err != nil || len(ds) != 1 {
			t.Fatalf("deliveries %+v, %v", ds, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// A hold.expired is not delivered before its hold's expiry and the grace
// after it (the job waits, snoozed, when it comes due sooner).
func TestAHoldExpiredIsNotDeliveredBeforeItsGrace(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		f := newFixture(t, db, fast(), nil)
		rcv := newReceiver(t, nil)
		create(t, f.hooks, rcv.URL, "hold.expired")
		// A one-minute hold taken 58 s ago by this manager's clock.
		soon := slots.New(db, slots.WithClock(func() time.Time { return time.Now().Add(-58 * time.Second) }), slots.WithOutbox(f.hooks))
		h, _, err := soon.Hold(ctx, slots.HoldInput{SlotID: f.slots[0].ID, TTLMinutes: ptr(1)})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.hooks.Start(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-rcv.got:
			if at := time.Now(); at.Before(h.ExpiresAt.Add(2 * time.Second)) {
				t.Fatalf("delivered at %s, before the hold's expiry %s and its grace", at.Format(time.RFC3339Nano), h.ExpiresAt.Format(time.RFC3339Nano))
			}
			if p := readHoldEvent(t, d.body); p.Type != "hold.expired" || p.Data.Hold.ID != h.ID {
				t.Fatalf("delivered %s", d.body)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the hold's expiry was not delivered")
		}
	})
}

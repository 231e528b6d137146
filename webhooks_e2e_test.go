package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// hookReceiver is a webhook receiver that counts what it gets, by event
// id, and answers 500 while down is set. It deduplicates nothing.
type hookReceiver struct {
	*httptest.Server
	down atomic.Bool

	mu        sync.Mutex
	attempts  int               // every request
	delivered map[string]int    // 2xx answers, by webhook-id
	bodies    map[string][]byte // by webhook-id
	headers   map[string]http.Header
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{delivered: map[string]int{}, bodies: map[string][]byte{}, headers: map[string]http.Header{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		if r.down.Load() {
			http.Error(w, "down for maintenance", http.StatusInternalServerError)
			return
		}
		r.delivered[id]++
		r.bodies[id], r.headers[id] = body, req.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

// stats answers the requests so far and the deliveries by event id.
func (r *hookReceiver) stats() (int, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.delivered))
	for k, v := range r.delivered {
		out[k] = v
	}
	return r.attempts, out
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkSignature verifies a delivery as the Standard Webhooks
// specification tells a receiver to, from the secret alone.
func checkSignature(t *testing.T, secret string, h http.Header, body []byte) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		t.Fatalf("webhook-timestamp %q", h.Get("webhook-timestamp"))
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.%s", h.Get("webhook-id"), ts, body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(h.Get("webhook-signature")), []byte(want)) {
		t.Fatalf("webhook-signature %q does not verify", h.Get("webhook-signature"))
	}
}

const webhookAdmin = "webhook-admin-token-0123456789"

// hookEnv is the configuration of the webhook tests: loopback receivers
// allowed, short waits.
func hookEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"ADMIN_TOKEN": webhookAdmin, "WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_BACKOFF": "50ms",
		"WEBHOOK_POLL": "20ms", "WEBHOOK_REFRESH": "50ms", "WEBHOOK_TIMEOUT": "5s", "LOG_LEVEL": "warn",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// createWebhook registers url for every booking event and answers its id
// and secret.
func createWebhook(t *testing.T, base, url string) (id, secret string) {
	t.Helper()
	var out struct {
		CreateWebhook struct {
			Webhook struct{ ID string }
			Secret  string
		}
	}
	postGraphQL(t, base, `mutation($url: String!) { createWebhook(input: {url: $url,
		events: ["booking.created", "booking.cancelled", "booking.rescheduled"], description: "e2e"}) { webhook { id } secret } }`,
		map[string]any{"url": url}, bearer(webhookAdmin, false)).Decode(t, &out)
	return out.CreateWebhook.Webhook.ID, out.CreateWebhook.Secret
}

// freeSlots answers the ids of n bookable slots.
func freeSlots(t *testing.T, base string, n int) []string {
	t.Helper()
	var out struct {
		TimeSlots struct{ Nodes []struct{ ID string } }
	}
	postGraphQL(t, base, `query($n: Int) { timeSlots(first: $n) { nodes { id } } }`, map[string]any{"n": n}, nil).Decode(t, &out)
	if len(out.TimeSlots.Nodes) < n {
		t.Fatalf("%d free slots, want %d", len(out.TimeSlots.Nodes), n)
	}
	ids := make([]string, n)
	for i, s := range out.TimeSlots.Nodes[:n] {
		ids[i] = s.ID
	}
	return ids
}

func bookSlot(t *testing.T, base, slot, customer string) {
	t.Helper()
	var out struct {
		BookSlot struct{ Booking struct{ ID string } }
	}
	postGraphQL(t, base, `mutation($slot: ID!, $c: String!) { bookSlot(input: {slotId: $slot, customer: $c}) { booking { id } } }`,
		map[string]any{"slot": slot, "c": customer}, nil).Decode(t, &out)
}

type deliveryView struct {
	EventID, EventType, Status, Error string
	Attempt                           int
	ResponseCode                      *int
	NextAttemptAt                     *string
}

func deliveriesOf(t *testing.T, base string) []deliveryView {
	t.Helper()
	var out struct {
		Webhooks []struct{ Deliveries []deliveryView }
	}
	postGraphQL(t, base, `{ webhooks { deliveries(first: 10) { eventId eventType status attempt responseCode error nextAttemptAt } } }`,
		nil, bearer(webhookAdmin, false)).Decode(t, &out)
	if len(out.Webhooks) != 1 {
		t.Fatalf("%d webhooks", len(out.Webhooks))
	}
	return out.Webhooks[0].Deliveries
}

// A receiver that is down for a while gets the booking's event once it
// is back, signed; meanwhile admins see the failed attempts.
func TestAWebhookReceiverDownForAWhileGetsTheEventOnceBack(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			rcv := newHookReceiver(t)
			rcv.down.Store(true)
			srv := startServer(t, testEnv(t, d, hookEnv(nil)))
			_, secret := createWebhook(t, srv.URL, rcv.URL)
			bookSlot(t, srv.URL, freeSlots(t, srv.URL, 1)[0], "Ann")
			waitFor(t, "two failed attempts", func() bool { n, _ := rcv.stats(); return n >= 2 })
			ds := deliveriesOf(t, srv.URL)
			if len(ds) != 1 || ds[0].EventType != "booking.created" || ds[0].Status == "DELIVERED" ||
				ds[0].ResponseCode == nil || *ds[0].ResponseCode != 500 {
				t.Fatalf("while down: %+v", ds)
			}
			rcv.down.Store(false)
			waitFor(t, "the delivery", func() bool { _, got := rcv.stats(); return len(got) == 1 })
			_, got := rcv.stats()
			for id, n := range got {
				rcv.mu.Lock()
				checkSignature(t, secret, rcv.headers[id], rcv.bodies[id])
				rcv.mu.Unlock()
				if n != 1 || id != ds[0].EventID {
					t.Fatalf("delivered %v; the failed attempts were of %s", got, ds[0].EventID)
				}
			}
			waitFor(t, "the delivery recorded", func() bool { ds = deliveriesOf(t, srv.URL); return ds[0].Status == "DELIVERED" })
			if ds[0].Attempt < 3 || *ds[0].ResponseCode != 204 || ds[0].NextAttemptAt != nil {
				t.Fatalf("delivered: %+v", ds[0])
			}

			// Bad input names its field; sendTestEvent enqueues a test event.
			r := postGraphQL(t, srv.URL, `mutation { createWebhook(input: {url: "gopher://x", events: ["booking.created"]}) { secret } }`,
				nil, bearer(webhookAdmin, false))
			if r.Code() != "BAD_USER_INPUT" || r.Errors[0].Extensions["argument"] != "url" {
				t.Fatalf("a gopher URL: %s", r.Body)
			}
			if r := postGraphQL(t, srv.URL, `{ webhooks { id } }`, nil, nil); r.Code() != "UNAUTHENTICATED" {
				t.Fatalf("webhooks without the admin token: %s", r.Body)
			}
		})
	}
}

// riverStates counts the delivery jobs by state.
func riverStates(t *testing.T, db *database.DB) map[string]int {
	t.Helper()
	var rows []struct {
		State string
		N     int
	}
	if err := db.Raw("SELECT state, COUNT(*) AS n FROM river_job WHERE kind = 'webhook_delivery' GROUP BY state").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out
}

// A server killed (SIGKILL) after a booking committed and before its
// event was delivered leaves the delivery in the queue; the next server
// delivers it.
func TestAnEventCommittedBeforeAKillIsDeliveredAfterTheRestart(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			dbURL := dbtest.URL(t, d)
			rcv := newHookReceiver(t)
			rcv.down.Store(true)
			env := []string{"PORT=0", "DATABASE_URL=" + dbURL, "RATE_LIMIT_RPS=0", "LOG_LEVEL=info", "SCHEDULER_ENABLED=false"}
			for k, v := range hookEnv(map[string]string{"WEBHOOK_BACKOFF": "1s", "LOG_LEVEL": "info"}) {
				env = append(env, k+"="+v)
			}
			first := startBinary(t, bin, env...)
			base := listenedURL(t, first)
			createWebhook(t, base, rcv.URL)
			bookSlot(t, base, freeSlots(t, base, 1)[0], "Ann")
			db := openDatabase(t, dbURL)
			// The first attempt failed and River has recorded it: the job
			// waits for its retry, nothing is delivered.
			waitFor(t, "a failed attempt recorded", func() bool { return riverStates(t, db)["retryable"] == 1 })
			if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-first.exited
			rcv.down.Store(false)
			if _, got := rcv.stats(); len(got) != 0 {
				t.Fatalf("delivered before the kill: %v", got)
			}
			startBinary(t, bin, env...)
			waitFor(t, "the delivery after the restart", func() bool { _, got := rcv.stats(); return len(got) == 1 })
			waitFor(t, "the job completed", func() bool { return riverStates(t, db)["completed"] == 1 })
			if _, got := rcv.stats(); len(got) != 1 {
				t.Fatalf("delivered %v", got)
			}
		})
	}
}

// listenedURL answers the base URL a started binary logged.
func listenedURL(t *testing.T, p *process) string {
	t.Helper()
	m := listeningLine.FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("no listening line:\n%s", p.out.String())
	}
	return m[1]
}

// Three replicas on one PostgreSQL: every event reaches the endpoint
// exactly once, whichever replica booked and whichever delivered.
func TestThreeReplicasDeliverEachEventOncePerEndpoint(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.URL(t, database.Postgres)
	rcv := newHookReceiver(t)
	var servers []*testServer
	for range 3 {
		env := testEnv(t, database.Postgres, hookEnv(map[string]string{"DB_MAX_CONNS": "8", "WEBHOOK_WORKERS": "4"}))
		env["DATABASE_URL"] = dbURL
		servers = append(servers, startServer(t, env))
	}
	createWebhook(t, servers[0].URL, rcv.URL)
	for _, s := range servers {
		waitFor(t, "every replica to know the endpoint", func() bool {
			a, err := getAnswer(nil, http.MethodGet, s.URL+"/metrics", nil, nil)
			return err == nil && strings.Contains(string(a.Body), "\ntimeslots_webhook_endpoints 1\n")
		})
	}
	const perReplica = 10
	slots := freeSlots(t, servers[0].URL, 3*perReplica)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range servers {
		for j := range perReplica {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				bookSlot(t, s.URL, slots[i*perReplica+j], fmt.Sprintf("c%d-%d", i, j))
			}()
		}
	}
	close(start)
	wg.Wait()
	db := openDatabase(t, dbURL)
	waitFor(t, "every job completed", func() bool { return riverStates(t, db)["completed"] == 3*perReplica })
	_, got := rcv.stats()
	if len(got) != 3*perReplica {
		t.Fatalf("%d events delivered, want %d", len(got), 3*perReplica)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	var bodies []map[string]any
	rcv.mu.Lock()
	for _, b := range rcv.bodies {
		var p map[string]any
		_ = json.Unmarshal(b, &p)
		bodies = append(bodies, p)
	}
	rcv.mu.Unlock()
	for _, p := range bodies {
		if p["type"] != "booking.created" {
			t.Fatalf("event %v", p)
		}
	}
}

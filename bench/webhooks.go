package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// webhookRounds is how many times the bookings are measured without and
// with a webhook, alternately; medians are reported.
const webhookRounds = 3

// webhookFigure is booking throughput without and with a webhook
// endpoint configured, the rate at which a backlog of deliveries drains
// to a local receiver, and bookings while deliveries run beside them.
type webhookFigure struct {
	Bookings      int // per round
	Without, With []float64
	// Busy is the bookings/s of one round while the deliveries run
	// beside it, on the same CPUs.
	Busy           float64
	Backlog        int
	Drain          time.Duration
	DeliveredTwice int
}

// medianRate is the median of rates.
func medianRate(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func (f webhookFigure) ratio() float64 { return medianRate(f.With) / medianRate(f.Without) }

func (f webhookFigure) drainRate() float64 { return float64(f.Backlog) / f.Drain.Seconds() }

func (f webhookFigure) line() string {
	return fmt.Sprintf("  bookings/s without a webhook %s, with one %s (%.2f×); %d deliveries drained in %s (%s/s); %s bookings/s with deliveries running",
		rate(medianRate(f.Without)), rate(medianRate(f.With)), f.ratio(), f.Backlog, secs(f.Drain), rate(f.drainRate()), rate(f.Busy))
}

// hookSink is the local receiver: it counts deliveries by webhook-id and
// answers 204, or 503 while down.
type hookSink struct {
	srv  *http.Server
	url  string
	down atomic.Bool

	mu   sync.Mutex
	seen map[string]int
	ok   int
}

func newHookSink() (*hookSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	k := &hookSink{url: "http://" + ln.Addr().String() + "/hooks", seen: map[string]int{}}
	k.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		k.mu.Lock()
		k.seen[r.Header.Get("webhook-id")]++
		k.ok++
		k.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = k.srv.Serve(ln) }()
	return k, nil
}

// delivered answers the 2xx answers so far and the events delivered more
// than once.
func (k *hookSink) delivered() (ok, twice int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, n := range k.seen {
		if n > 1 {
			twice++
		}
	}
	return k.ok, twice
}

// waitDelivered waits until the sink has n 2xx answers.
func (k *hookSink) waitDelivered(ctx context.Context, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if ok, _ := k.delivered(); ok >= n {
			return nil
		}
		if time.Now().After(deadline) {
			ok, _ := k.delivered()
			return fmt.Errorf("%d of %d deliveries within %s", ok, n, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// adminGraphQL sends one admin operation and decodes its data into out.
func adminGraphQL(ctx context.Context, s *server, query string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		return errors.New(r.Errors[0].Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Data, out)
}

func createHook(ctx context.Context, s *server, url string) (string, error) {
	var out struct {
		CreateWebhook struct{ Webhook struct{ ID string } }
	}
	err := adminGraphQL(ctx, s, `mutation($u: String!) { createWebhook(input: {url: $u, events: ["booking.created"]}) { webhook { id } } }`,
		map[string]any{"u": url}, &out)
	return out.CreateWebhook.Webhook.ID, err
}

func deleteHook(ctx context.Context, s *server, id string) error {
	return adminGraphQL(ctx, s, `mutation($id: ID!) { deleteWebhook(id: $id) }`, map[string]any{"id": id}, nil)
}

// measureWebhooks measures, on a second server whose delivery workers
// look for work only every 10 minutes (so that none runs) while the main
// server is stopped (SIGSTOP), o.bookings distinct bookings per round with
// wrk, alternately with the one webhook disabled (no endpoint wants the
// event: the booking runs as without webhooks) and enabled (each booking
// enqueues its delivery in its transaction). Then it lets the main server
// go on (SIGCONT) and times how fast it drains the backlog of deliveries
// those rounds left, to a receiver in this process that answers 204 at
// once; last, one round on the main server with the deliveries running
// beside the bookings.
func measureWebhooks(ctx context.Context, b *benchDB, s *server, bin string, o *options) (webhookFigure, error) {
	n := o.bookings
	f := webhookFigure{Bookings: n}
	sink, err := newHookSink()
	if err != nil {
		return f, err
	}
	defer sink.srv.Close()
	var free []int64
	want := (2*webhookRounds + 1) * n
	rows, err := b.pool.Query(ctx, "SELECT id FROM time_slots WHERE booked_count = 0 AND start_time > now() + interval '1 day' ORDER BY random() LIMIT $1", want)
	if err != nil {
		return f, err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return f, err
		}
		free = append(free, id)
	}
	if err := rows.Err(); err != nil {
		return f, err
	}
	if len(free) < want {
		return f, fmt.Errorf("%d free slots, want %d", len(free), want)
	}
	next := func() []int64 { ids := free[:n]; free = free[n:]; return ids }
	book := func(on *server) (float64, cpuSplit, error) {
		meter := startCPU(ctx, b, on.cmd.Process.Pid)
		l, client, err := runWrk(ctx, on.base, bookingsOf(next()), o.conns, max(time.Minute, time.Duration(n/100)*time.Second))
		cpu := meter.finish(ctx, n, client)
		if err != nil {
			return 0, cpu, err
		}
		if l.Errors > 0 || l.Requests != uint64(n) {
			return 0, cpu, fmt.Errorf("%d of %d bookings failed; first: %s", l.Errors, l.Requests, l.FirstError)
		}
		return float64(n) / l.Duration.Seconds(), cpu, nil
	}

	quiet, err := startServer(ctx, bin, b.url, append(slices.Clone(o.serverEnv), "WEBHOOK_POLL=10m")...)
	if err != nil {
		return f, err
	}
	defer quiet.stop()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return f, err
	}
	stopped := true
	defer func() {
		if stopped {
			_ = s.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	id, err := createHook(ctx, quiet, sink.url)
	if err != nil {
		return f, err
	}
	for range webhookRounds {
		if err := enableHook(ctx, quiet, id, false); err != nil {
			return f, err
		}
		r0, c0, err := book(quiet)
		if err != nil {
			return f, fmt.Errorf("without a webhook: %w", err)
		}
		if err := enableHook(ctx, quiet, id, true); err != nil {
			return f, err
		}
		r1, c1, err := book(quiet)
		if err != nil {
			return f, fmt.Errorf("with a webhook: %w", err)
		}
		f.Without, f.With = append(f.Without, r0), append(f.With, r1)
		fmt.Printf("  round: %s bookings/s without a webhook (CPU per booking: %s), %s with one (%s)\n", rate(r0), c0, rate(r1), c1)
	}
	// The bookings staged their events; the quiet server moves them onto
	// River's queue within moments.
	for waited := time.Duration(0); ; waited += 10 * time.Millisecond {
		staged, err := b.count(ctx, "SELECT count(*) FROM webhook_outbox")
		if err != nil {
			return f, err
		}
		if staged == 0 {
			break
		}
		if waited > 10*time.Second {
			return f, fmt.Errorf("%d events still staged 10 s after the last round", staged)
		}
		time.Sleep(10 * time.Millisecond)
	}
	backlog, err := b.count(ctx, "SELECT count(*) FROM river_job WHERE kind = 'webhook_delivery' AND state = 'available'")
	if err != nil {
		return f, err
	}
	if backlog != int64(webhookRounds*n) {
		return f, fmt.Errorf("%d deliveries wait, want %d: the quiet server delivered some", backlog, webhookRounds*n)
	}
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return f, err
	}
	stopped = false
	if err := sink.waitDelivered(ctx, webhookRounds*n, 5*time.Minute); err != nil {
		return f, err
	}
	f.Backlog, f.Drain = webhookRounds*n, time.Since(start)

	before, _ := sink.delivered()
	if f.Busy, _, err = book(s); err != nil {
		return f, fmt.Errorf("with deliveries running: %w", err)
	}
	if err := sink.waitDelivered(ctx, before+n, 5*time.Minute); err != nil {
		return f, err
	}
	if _, f.DeliveredTwice = sink.delivered(); f.DeliveredTwice > 0 {
		return f, fmt.Errorf("%d events delivered twice", f.DeliveredTwice)
	}
	return f, deleteHook(ctx, s, id)
}

func enableHook(ctx context.Context, s *server, id string, on bool) error {
	return adminGraphQL(ctx, s, `mutation($id: ID!, $on: Boolean!) { updateWebhook(id: $id, input: {enabled: $on}) { id } }`,
		map[string]any{"id": id, "on": on}, nil)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// dbProxy is a TCP relay between the server and PostgreSQL that the test
// can cut (every relayed connection is closed and new ones are closed at
// once, as if the database were gone) and restore. It disturbs only the
// server behind it, not other tests on the same PostgreSQL.
type dbProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *dbProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dbProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *dbProxy) Addr() string { return p.ln.Addr().String() }

func (p *dbProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c, up) {
			continue
		}
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// track registers a relayed pair, unless the proxy was cut meanwhile.
func (p *dbProxy) track(a, b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		_ = a.Close()
		_ = b.Close()
		return false
	}
	p.conns[a], p.conns[b] = true, true
	return true
}

func (p *dbProxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// cut drops every relayed connection and refuses new ones.
func (p *dbProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *dbProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// outcome is what one booking attempt saw.
type outcome struct {
	start, end time.Time
	slotID     int64
	customer   string
	bookingID  string // set on success
	status     int
	code       string // extensions.code of a refusal
	retryAfter string // the answer's Retry-After
	message    string
}

// bookOnce books slot for customer through GraphQL. It runs in the
// test's goroutines, so it records what it saw instead of failing the test.
func bookOnce(client *http.Client, base string, slot int64, customer string) outcome {
	o := outcome{start: time.Now(), slotID: slot, customer: customer}
	q := fmt.Sprintf(`{"query":"mutation { bookSlot(input: {slotId: \"%d\", customer: \"%s\"}) { booking { id } } }"}`, slot, customer)
	a, err := getAnswer(client, http.MethodPost, base+"/graphql", http.Header{"Content-Type": {"application/json"}}, strings.NewReader(q))
	o.end = time.Now()
	if err != nil {
		o.message = err.Error()
		return o
	}
	o.status, o.retryAfter = a.Status, a.Header.Get("Retry-After")
	res, err := parseGraphQL(a)
	var data struct {
		BookSlot *struct{ Booking struct{ ID string } }
	}
	if err == nil && res.Data != nil {
		err = json.Unmarshal(res.Data, &data)
	}
	if err != nil {
		o.message = "undecodable answer: " + string(a.Body)
		return o
	}
	if len(res.Errors) > 0 {
		o.code, o.message = res.Code(), res.Errors[0].Message
		return o
	}
	if data.BookSlot != nil {
		o.bookingID = data.BookSlot.Booking.ID
	}
	return o
}

// PostgreSQL goes away while bookings flow, then comes back: the server
// keeps running, /readyz goes 503 and back to 200 within 10 s, requests
// fail only while the database is away and then only as UNAVAILABLE (503
// with Retry-After: the connection could not be opened, or broke before
// the statement went out) or, when a connection broke while a statement
// ran and its outcome is unknown, INTERNAL_SERVER_ERROR; never with driver
// text; and no booking is lost or doubled.
func TestDatabaseOutageWhileBookingsFlow(t *testing.T) {
	t.Parallel()
	realURL := dbtest.URL(t, database.Postgres)
	u, err := url.Parse(realURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, u.Host)
	u.Host = proxy.Addr()
	srv := startServer(t, testEnv(t, database.Postgres, map[string]string{"DATABASE_URL": u.String(), "SEED_DEMO": "true"}))
	client := &http.Client{Timeout: 30 * time.Second}
	// statusOf answers the status of GET path, 0 when no answer came.
	statusOf := func(path string) int {
		a, _ := getAnswer(client, http.MethodGet, srv.URL+path, nil, nil)
		return a.Status
	}

	from := pastDemoNotice() // bookable demo slots, whatever the hour
	resp, err := getAnswer(client, http.MethodGet, srv.URL+"/api/time-slots?limit=200&status=available&startDate="+from, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Data []struct{ ID int64 } }
	if err := json.Unmarshal(resp.Body, &list); resp.Status != 200 || err != nil || len(list.Data) < 50 {
		t.Fatalf("slots: %v %s", err, resp)
	}

	var (
		mu       sync.Mutex
		outcomes []outcome
		stop     atomic.Bool
		wg       sync.WaitGroup
		next     atomic.Int64
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				slot := list.Data[int(next.Add(1))%len(list.Data)].ID
				o := bookOnce(client, srv.URL, slot, fmt.Sprintf("c%d-%d", w, i))
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(outcomes) }
	waitFor := func(what string, limit time.Duration, cond func() bool) time.Time {
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("%s: not within %s", what, limit)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Now()
	}

	waitFor("bookings before the outage", 20*time.Second, func() bool { return count() >= 20 })
	cutAt := time.Now()
	proxy.cut()
	waitFor("/readyz 503 while the database is away", 10*time.Second, func() bool { return statusOf("/readyz") == 503 })
	during := count()
	waitFor("requests failing during the outage", 10*time.Second, func() bool { return count() >= during+20 })
	if got := statusOf("/healthz"); got != 200 {
		t.Errorf("/healthz during the outage: %d, want 200 (the process is alive)", got)
	}
	restoredAt := time.Now()
	proxy.restore()
	readyAt := waitFor("/readyz 200 after the database returns", 10*time.Second, func() bool { return statusOf("/readyz") == 200 })
	after := count()
	waitFor("bookings after the outage", 20*time.Second, func() bool { return count() >= after+40 })
	stop.Store(true)
	wg.Wait()
	t.Logf("%d attempts; /readyz back %v after the database returned", len(outcomes), readyAt.Sub(restoredAt).Round(time.Millisecond))

	// Classify: only attempts that overlapped the outage may fail, and only
	// as UNAVAILABLE or INTERNAL_SERVER_ERROR without driver details.
	var ok, refused, failedInOutage, unavailable, afterReady int
	confirmed := map[string]bool{}
	for _, o := range outcomes {
		overlapped := !o.end.Before(cutAt) && o.start.Before(readyAt)
		switch {
		case o.bookingID != "":
			ok++
			confirmed[o.bookingID] = true
		case o.code == "SLOT_UNAVAILABLE":
			refused++
		case overlapped && (o.code == "INTERNAL_SERVER_ERROR" || o.code == "UNAVAILABLE"):
			failedInOutage++
			if o.code == "UNAVAILABLE" {
				unavailable++
				if o.status != http.StatusServiceUnavailable || o.retryAfter == "" {
					t.Errorf("UNAVAILABLE answered %d with Retry-After %q, want 503 with Retry-After", o.status, o.retryAfter)
				}
			}
			for _, leak := range []string{"dial", "pgx", "SQLSTATE", "connection", "EOF", "127.0.0.1"} {
				if strings.Contains(o.message, leak) {
					t.Errorf("an internal error shows %q to the client: %q", leak, o.message)
				}
			}
		default:
			t.Errorf("attempt %v–%v (outage %v–%v): status %d code %q %q", o.start.Format("15:04:05.000"), o.end.Format("15:04:05.000"),
				cutAt.Format("15:04:05.000"), readyAt.Format("15:04:05.000"), o.status, o.code, o.message)
		}
		if !o.start.Before(readyAt) && o.bookingID == "" && o.code != "SLOT_UNAVAILABLE" {
			afterReady++
		}
	}
	if failedInOutage == 0 || ok == 0 {
		t.Errorf("%d bookings, %d failures during the outage: the test did not exercise both", ok, failedInOutage)
	}
	if afterReady > 0 {
		t.Errorf("%d attempts started after /readyz was 200 again still failed", afterReady)
	}

	// No booking lost (every answered booking is confirmed in the database)
	// and none doubled (every slot's count equals its confirmed bookings).
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, realURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id FROM bookings WHERE status = 'confirmed'")
	if err != nil {
		t.Fatal(err)
	}
	inDB := map[string]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		inDB[fmt.Sprint(id)] = true
	}
	for id := range confirmed {
		if !inDB[id] {
			t.Errorf("booking %s was answered as made but is not in the database", id)
		}
	}
	// UNAVAILABLE invites a retry, so it is only ever answered for a
	// booking that was not made.
	for _, o := range outcomes {
		if o.code != "UNAVAILABLE" {
			continue
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM bookings WHERE customer = $1", o.customer).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("the booking of %s was answered UNAVAILABLE, yet made", o.customer)
		}
	}
	var mismatched int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM time_slots s WHERE s.booked_count <>
		(SELECT count(*) FROM bookings b WHERE b.slot_id = s.id AND b.status = 'confirmed')`).Scan(&mismatched); err != nil {
		t.Fatal(err)
	}
	if mismatched != 0 {
		t.Errorf("%d slots whose booked_count differs from their confirmed bookings", mismatched)
	}
	t.Logf("%d booked, %d refused as full, %d failed during the outage (%d of them UNAVAILABLE); %d confirmed in the database",
		ok, refused, failedInOutage, unavailable, len(inDB))
}

// SIGTERM while requests are in flight: the real binary finishes them all,
// stops the scheduler and exits 0. (And a bad configuration makes the
// binary exit 1 with one line.)
func TestSIGTERMFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "timeslots")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// A bad configuration: one line naming the variable, exit status 1.
	bad := exec.Command(bin)
	bad.Env = append(os.Environ(), "PORT=0", "GENERATE_SCHEDULE=every day")
	badOut, err := bad.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 ||
		!strings.HasPrefix(string(badOut), "timeslots: GENERATE_SCHEDULE ") || strings.Count(string(badOut), "\n") != 1 {
		t.Errorf("bad GENERATE_SCHEDULE: %v, output %q; want exit 1 and one line naming it", err, badOut)
	}

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"PORT=0", "DATABASE_URL=sqlite:"+filepath.Join(t.TempDir(), "sigterm.db"), "SEED_DEMO=true",
		"RATE_LIMIT_RPS=0", "REQUEST_TIMEOUT=2m", "SHUTDOWN_TIMEOUT=2m", "LOG_LEVEL=debug",
		"SCHEDULER_ENABLED=true", "GENERATE_SCHEDULE=@every 1s", "GENERATE_DAYS_AHEAD=2", "CLEANUP_SCHEDULE=@every 1s")
	out := newOutputBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var base string
	select {
	case base = <-out.ready:
	case err := <-exited:
		t.Fatalf("the binary stopped before listening: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the binary did not start:\n%s", out.String())
	}

	// Admin generations of two to three months for every demo provider (they
	// run one at a time), sent together.
	const n = 4
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"daysAhead": %d}`, 60+10*i)
			a, err := getAnswer(nil, http.MethodPost, base+"/api/admin/time-slots",
				http.Header{"Content-Type": {"application/json"}}, strings.NewReader(body))
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			statuses[i] = a.Status
		})
	}
	// Every request has reached a handler (logged at debug level) before
	// the signal, so all four are the server's in-flight work.
	started := regexp.MustCompile(`"msg":"request started","request_id":"[^"]+","method":"POST","path":"/api/admin/time-slots"`)
	for deadline := time.Now().Add(30 * time.Second); len(started.FindAllString(out.String(), -1)) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("the requests did not reach the server\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	signalledAt := len(out.String())
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v (want status 0)\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the process did not exit within 2 minutes of SIGTERM\n%s", out.String())
	}
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("in-flight request %d answered %d, want 200", i, s)
		}
	}
	logs := out.String()
	afterSignal := logs[signalledAt:]
	t.Logf("%d of %d generations finished after SIGTERM", strings.Count(afterSignal, `"path":"/api/admin/time-slots"`), n)
	if strings.Count(afterSignal, `"path":"/api/admin/time-slots"`) == 0 {
		t.Errorf("no generation finished after SIGTERM: the requests were not in flight\n%s", logs)
	}
	for _, line := range []string{`"msg":"shutting down"`, `"msg":"scheduler stopped"`, `"msg":"stopped"`} {
		if !strings.Contains(afterSignal, line) {
			t.Errorf("no %s after SIGTERM\n%s", line, logs)
		}
	}
	if i, j := strings.Index(logs, `"msg":"shutting down"`), strings.LastIndex(logs, `"path":"/api/admin/time-slots"`); i < 0 || j < i {
		t.Errorf("the in-flight requests did not finish after shutdown began\n%s", logs)
	}
}

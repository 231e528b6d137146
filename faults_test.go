package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
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

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// withWroteRequest calls f once the client has written the whole request.
func withWroteRequest(ctx context.Context, f func()) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { f() }})
}

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
	bookingID  string // set on success
	status     int
	code       string // extensions.code of a refusal
	message    string
}

// bookOnce books slot for customer through GraphQL.
func bookOnce(client *http.Client, base string, slot int64, customer string) outcome {
	o := outcome{start: time.Now(), slotID: slot}
	q := fmt.Sprintf(`{"query":"mutation { bookSlot(input: {slotId: \"%d\", customer: \"%s\"}) { booking { id } } }"}`, slot, customer)
	resp, err := client.Post(base+"/graphql", "application/json", strings.NewReader(q))
	o.end = time.Now()
	if err != nil {
		o.message = err.Error()
		return o
	}
	defer resp.Body.Close()
	o.status = resp.StatusCode
	var body struct {
		Data *struct {
			BookSlot *struct{ Booking struct{ ID string } }
		}
		Errors []struct {
			Message    string
			Extensions struct{ Code string }
		}
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		o.message = "undecodable answer: " + string(raw)
		return o
	}
	if len(body.Errors) > 0 {
		o.code, o.message = body.Errors[0].Extensions.Code, body.Errors[0].Message
		return o
	}
	if body.Data != nil && body.Data.BookSlot != nil {
		o.bookingID = body.Data.BookSlot.Booking.ID
	}
	return o
}

func statusOf(t *testing.T, client *http.Client, u string) int {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// PostgreSQL goes away while bookings flow, then comes back: the server
// keeps running, /readyz goes 503 and back to 200 within 10 s, requests
// fail only while the database is away and then only as
// INTERNAL_SERVER_ERROR (no driver text), and no booking is lost or
// doubled.
func TestDatabaseOutageWhileBookingsFlow(t *testing.T) {
	t.Parallel()
	realURL := dbtest.URL(t, database.Postgres)
	u, err := url.Parse(realURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, u.Host)
	u.Host = proxy.Addr()
	srv := startServer(t, database.Postgres, map[string]string{"DATABASE_URL": u.String(), "SEED_DEMO": "true"})
	client := &http.Client{Timeout: 30 * time.Second}

	// Every bookable slot of the demo data.
	status, body := getBody(t, srv.URL+"/api/time-slots?limit=200&status=available")
	var list struct{ Data []struct{ ID int64 } }
	if err := json.Unmarshal([]byte(body), &list); status != 200 || err != nil || len(list.Data) < 50 {
		t.Fatalf("slots: %d %v %s", status, err, body)
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
	waitFor("/readyz 503 while the database is away", 10*time.Second, func() bool { return statusOf(t, client, srv.URL+"/readyz") == 503 })
	during := count()
	waitFor("requests failing during the outage", 10*time.Second, func() bool { return count() >= during+20 })
	if got := statusOf(t, client, srv.URL+"/healthz"); got != 200 {
		t.Errorf("/healthz during the outage: %d, want 200 (the process is alive)", got)
	}
	restoredAt := time.Now()
	proxy.restore()
	readyAt := waitFor("/readyz 200 after the database returns", 10*time.Second, func() bool { return statusOf(t, client, srv.URL+"/readyz") == 200 })
	after := count()
	waitFor("bookings after the outage", 20*time.Second, func() bool { return count() >= after+40 })
	stop.Store(true)
	wg.Wait()
	t.Logf("%d attempts; /readyz back %v after the database returned", len(outcomes), readyAt.Sub(restoredAt).Round(time.Millisecond))

	// Classify: only attempts that overlapped the outage may fail, and only
	// as INTERNAL_SERVER_ERROR without driver details.
	var ok, refused, failedInOutage, afterReady int
	confirmed := map[string]bool{}
	for _, o := range outcomes {
		overlapped := !o.end.Before(cutAt) && o.start.Before(readyAt)
		switch {
		case o.bookingID != "":
			ok++
			confirmed[o.bookingID] = true
		case o.code == "SLOT_UNAVAILABLE":
			refused++
		case overlapped && o.code == "INTERNAL_SERVER_ERROR":
			failedInOutage++
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
	var mismatched int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM time_slots s WHERE s.booked_count <>
		(SELECT count(*) FROM bookings b WHERE b.slot_id = s.id AND b.status = 'confirmed')`).Scan(&mismatched); err != nil {
		t.Fatal(err)
	}
	if mismatched != 0 {
		t.Errorf("%d slots whose booked_count differs from their confirmed bookings", mismatched)
	}
	t.Logf("%d booked, %d refused as full, %d failed during the outage; %d confirmed in the database", ok, refused, failedInOutage, len(inDB))
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
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var base string
	for deadline := time.Now().Add(60 * time.Second); base == ""; {
		if m := listeningLine.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("the binary did not start:\n%s", out.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Admin generations of two to three months for every demo provider (they
	// run one at a time), sent together: once every request is written, they
	// are in the server's hands.
	const n = 4
	var sent, wg sync.WaitGroup
	sent.Add(n)
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"daysAhead": %d}`, 60+10*i)
			req, _ := http.NewRequest(http.MethodPost, base+"/api/admin/time-slots", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			var once sync.Once
			req = req.WithContext(withWroteRequest(req.Context(), func() { once.Do(sent.Done) }))
			resp, err := http.DefaultClient.Do(req)
			once.Do(sent.Done)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	sent.Wait()
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

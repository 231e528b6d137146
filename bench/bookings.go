package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"timeslots/internal/database"
)

// claimSQL is the seat claim alone, the ceiling bookings are measured
// against: one conditional UPDATE per slot, committed on its own.
const claimSQL = `UPDATE time_slots SET booked_count = booked_count + 1, version = version + 1, updated_at = now() WHERE id = $1 AND booked_count < capacity AND start_time > now()`

// bookingFigure is many clients booking distinct slots over GraphQL beside
// pgbench running the same claim.
type bookingFigure struct {
	Bookings int
	Conns    int
	Load     loadResult
	Claim    pgbenchResult // the conditional UPDATE alone
	Txn      pgbenchResult // every statement our booking transaction sends
	ClaimSQL string
	TxnSQL   []string
	LoadCPU  cpuSplit
	ClaimCPU cpuSplit
	TxnCPU   cpuSplit
}

func (f bookingFigure) rate() float64 { return float64(f.Bookings) / f.Load.Duration.Seconds() }

// hotFigure is the contention check: many attempts released together on a
// few slots, exactly capacity winners each.
type hotFigure struct {
	Slots, Capacity, Attempts int
	Winners, Refused          int
	PerSlot                   []int
	Elapsed                   time.Duration
}

// measureBookings books n distinct slots with o.conns clients over
// GraphQL, then runs pgbench on two other sets of n distinct slots: the
// bare claim and the whole transaction our server sends.
func measureBookings(ctx context.Context, b *benchDB, s *server, bin, tmp string, o *options, ds *dataset) (bookingFigure, error) {
	n := o.bookings
	fig := bookingFigure{Bookings: n, Conns: o.conns}
	total := int64(ds.w.Slots())
	per := (n + o.conns - 1) / o.conns
	n = per * o.conns // pgbench runs the same count per client
	fig.Bookings = n
	if int64(3*n) > total {
		return fig, fmt.Errorf("%d slots are too few for 3 × %d distinct bookings", total, n)
	}
	// Ids are 1..total after a fresh generation, all in the future and free:
	// GraphQL books a random sample of the first third, pgbench the claim on
	// the second third and the whole transaction on the last third.
	var ids []int64
	rows, err := b.pool.Query(ctx, "SELECT id FROM time_slots WHERE id <= $1 AND booked_count = 0 ORDER BY random() LIMIT $2", total/3, n)
	if err != nil {
		return fig, err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return fig, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return fig, err
	}
	if len(ids) != n {
		return fig, fmt.Errorf("found %d free slots, want %d", len(ids), n)
	}

	// Learn the SQL of one booking (on a slot outside all three sets).
	captureID := total
	caps, err := capture(ctx, b, bin, o.pgLog, []func(*server) error{func(cs *server) error {
		return bookSlot.send(ctx, http.DefaultClient, cs.base, bookRequest(captureID, "capture"))
	}})
	if err != nil {
		return fig, err
	}
	txn := caps[0]
	claims := 0
	for _, st := range txn {
		fig.TxnSQL = append(fig.TxnSQL, st.SQL)
		if strings.Contains(st.SQL, "UPDATE time_slots SET booked_count = booked_count + 1") && strings.Contains(st.SQL, "< capacity") {
			claims++
		}
	}
	fmt.Printf("  SQL of one booking (%d statements):\n%s", len(fig.TxnSQL), indent(strings.Join(fig.TxnSQL, "\n")))
	if claims != 1 {
		return fig, fmt.Errorf("the captured booking has %d conditional UPDATEs, want 1: %q", claims, fig.TxnSQL)
	}
	sidText := strconv.FormatInt(captureID, 10)
	// The claim ceiling is the bare conditional UPDATE of one seat, whatever
	// else the server's booking statement does.
	claim := []statement{{SQL: claimSQL, Params: []string{sidText}, Nulls: []bool{false}}}
	fig.ClaimSQL = claimSQL
	// Each replayed transaction books its own slot, and its booking needs a
	// reference of its own (references are unique): the slot id serves, as
	// text, and cannot meet a server-made "bk_" reference.
	bySlotID := func(st statement) func(string, int) string {
		return func(_ string, k int) string {
			if p := st.Params[k-1]; p == sidText || strings.HasPrefix(p, "bk_") {
				return "sid"
			}
			return ""
		}
	}
	build := func(stmts []statement, prefix string) pgbenchScript {
		var sc pgbenchScript
		head := "\\set k :k + 1\n\\set sid :base + :client_id * " + strconv.Itoa(per) + " + :k\n"
		sc.Defines = map[string]string{}
		var text strings.Builder
		text.WriteString(head)
		for i, st := range stmts {
			one := scriptFor([]statement{st}, fmt.Sprintf("%s%d", prefix, i), "", bySlotID(st))
			text.WriteString(one.Text)
			for k, v := range one.Defines {
				sc.Defines[k] = v
			}
		}
		sc.Text = text.String()
		return sc
	}
	// GraphQL bookings, on wrk like the reads: each slot once, dealt to its
	// threads in turn, until the last answer; wrk is stopped if the load
	// falls below 100 bookings/s (a minute at the least).
	limit := max(time.Minute, time.Duration(n/100)*time.Second)
	meter := startCPU(ctx, b, s.cmd.Process.Pid)
	var client time.Duration
	fig.Load, client, err = runWrk(ctx, s.base, bookingsOf(ids), o.conns, limit)
	fig.LoadCPU = meter.finish(ctx, int(fig.Load.Requests), client)
	if err != nil {
		return fig, err
	}
	if fig.Load.Errors > 0 {
		return fig, fmt.Errorf("bookings: %d of %d failed; first: %s", fig.Load.Errors, fig.Load.Requests, fig.Load.FirstError)
	}
	if fig.Load.Requests != uint64(n) {
		return fig, fmt.Errorf("bookings: sent %d requests, want %d", fig.Load.Requests, n)
	}
	booked, err := b.count(ctx, "SELECT count(*) FROM time_slots WHERE id = ANY($1) AND booked_count = 1", ids)
	if err != nil {
		return fig, err
	}
	confirmed, err := b.count(ctx, "SELECT count(*) FROM bookings WHERE slot_id = ANY($1) AND status = 'confirmed'", ids)
	if err != nil {
		return fig, err
	}
	if booked != int64(n) || confirmed != int64(n) {
		return fig, fmt.Errorf("after %d bookings: %d slots booked and %d confirmed bookings", n, booked, confirmed)
	}

	// The ceilings: the same claim, and the same transaction, as pgbench.
	vars := map[string]string{"k": "0", "base": strconv.FormatInt(total/3, 10)}
	meter = startCPU(ctx, b, 0)
	fig.Claim, err = runPgbench(ctx, b.url, tmp, []pgbenchScript{build(claim, "c")}, vars, o.conns, 0, per)
	fig.ClaimCPU = meter.finish(ctx, fig.Claim.Txns, fig.Claim.CPU)
	if err != nil {
		return fig, err
	}
	vars["base"] = strconv.FormatInt(2*total/3, 10)
	meter = startCPU(ctx, b, 0)
	fig.Txn, err = runPgbench(ctx, b.url, tmp, []pgbenchScript{build(txn, "t")}, vars, o.conns, 0, per)
	fig.TxnCPU = meter.finish(ctx, fig.Txn.Txns, fig.Txn.CPU)
	if err != nil {
		return fig, err
	}
	for _, r := range []pgbenchResult{fig.Claim, fig.Txn} {
		if r.Failed > 0 || r.Txns != n {
			return fig, fmt.Errorf("pgbench: %d of %d transactions, %d failed", r.Txns, n, r.Failed)
		}
	}
	claimed, err := b.count(ctx, "SELECT count(*) FROM time_slots WHERE id > $1 AND id <= $2 AND booked_count = 1", total/3, total/3+int64(n))
	if err != nil {
		return fig, err
	}
	if claimed != int64(n) {
		return fig, fmt.Errorf("pgbench claimed %d slots, want %d", claimed, n)
	}
	return fig, nil
}

// measureHotSlots releases attempts concurrent bookings together on the
// slots of a provider with the given capacity and checks that exactly
// capacity win per slot, in the answers and in the database.
func measureHotSlots(ctx context.Context, b *benchDB, s *server, o *options, capacity int) (*hotFigure, error) {
	hf := &hotFigure{Slots: o.hotSlots, Capacity: capacity, Attempts: o.hotAttempts}
	target, err := database.ParseURL(b.url)
	if err != nil {
		return nil, err
	}
	db, err := database.Open(ctx, target, database.Options{MaxOpenConns: 2})
	if err != nil {
		return nil, err
	}
	w := workload{Name: "hot", Providers: 1, SlotMinutes: 30, Start: "09:00", End: "17:00", Days: 2, Capacity: capacity}
	ds, err := createProviders(ctx, db, w, capacity)
	db.Close()
	if err != nil {
		return nil, err
	}
	pid := ds.providers[0].ID
	var gen struct {
		GenerateSlots struct{ Created int } `json:"generateSlots"`
	}
	if err := s.graphql(ctx, http.DefaultClient, true,
		`mutation($p: [ID!]) { generateSlots(input: {daysAhead: 2, providerIds: $p}) { created } }`,
		map[string]any{"p": []string{strconv.FormatInt(pid, 10)}}, &gen); err != nil {
		return nil, err
	}
	var hot []int64
	rows, err := b.pool.Query(ctx, "SELECT id FROM time_slots WHERE provider_id = $1 ORDER BY start_time LIMIT $2", pid, o.hotSlots)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id int64
		_ = rows.Scan(&id)
		hot = append(hot, id)
	}
	if len(hot) != o.hotSlots {
		return nil, fmt.Errorf("hot provider has %d slots, want %d", len(hot), o.hotSlots)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.hotAttempts, MaxConnsPerHost: 0}, Timeout: 60 * time.Second}
	defer client.CloseIdleConnections()
	type outcome struct {
		slot int
		code string
		err  error
	}
	out := make([]outcome, o.hotAttempts)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < o.hotAttempts; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slot := i % len(hot)
			out[i].slot = slot
			<-gate
			out[i].code, out[i].err = bookOnce(ctx, client, s.base, hot[slot], fmt.Sprintf("hot-%d", i))
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	hf.Elapsed = time.Since(start)
	hf.PerSlot = make([]int, len(hot))
	for _, r := range out {
		switch {
		case r.err != nil:
			return hf, fmt.Errorf("hot slot attempt: %w", r.err)
		case r.code == "":
			hf.Winners++
			hf.PerSlot[r.slot]++
		case r.code == "SLOT_UNAVAILABLE":
			hf.Refused++
		default:
			return hf, fmt.Errorf("hot slot attempt refused with %s, want SLOT_UNAVAILABLE", r.code)
		}
	}
	for i, n := range hf.PerSlot {
		var booked, confirmed int64
		if err := b.pool.QueryRow(ctx, "SELECT booked_count, (SELECT count(*) FROM bookings WHERE slot_id = $1 AND status = 'confirmed') FROM time_slots WHERE id = $1", hot[i]).Scan(&booked, &confirmed); err != nil {
			return hf, err
		}
		if n != capacity || booked != int64(capacity) || confirmed != int64(capacity) {
			return hf, fmt.Errorf("hot slot %d: %d winners, booked_count %d, %d confirmed bookings; capacity %d", hot[i], n, booked, confirmed, capacity)
		}
	}
	return hf, nil
}

// bookOnce books one seat and answers the GraphQL error code ("" on success).
func bookOnce(ctx context.Context, client *http.Client, base string, slotID int64, customer string) (string, error) {
	status, body, err := bookSlot.do(ctx, client, base, bookRequest(slotID, customer))
	if err != nil {
		return "", err
	}
	var r gqlResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return "", fmt.Errorf("HTTP %d: undecodable answer: %w", status, err)
	}
	if len(r.Errors) > 0 {
		code, _ := r.Errors[0].Extensions["code"].(string)
		if code == "" {
			return "", fmt.Errorf("error without code: %s", r.Errors[0].Message)
		}
		return code, nil
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", status)
	}
	return "", nil
}

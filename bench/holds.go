package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// holdRounds is how many times direct bookings and checkouts through a
// hold are measured, alternately; medians are reported.
const holdRounds = 3

// holdsFigure is the holds phase: the GraphQL read load's CPU per page on
// one server without holds ("none"), with every other slot of the read
// windows booked ("booked", what a page costs that reads past as many
// full slots without holds), with the same slots held instead ("held"),
// and with those holds' summaries outdated ("outdated"); then bookings of free
// slots straight (bookSlot) and through a hold (holdSlot, then bookSlot
// of the hold), alternately, by the same client; and the page's plan.
type holdsFigure struct {
	Slots, Booked, Held, Conns int
	Reads                      []holdsRead
	Direct                     []clientRun
	Checkout                   []clientRun
	// The page's SQL, and its plan with the holds, then with their
	// summaries outdated.
	SQL, Plan, OutdatedPlan string
}

// holdsRead is one read load of the phase; Part is 0 for the loads
// before the summaries were outdated, 1 after.
type holdsRead struct {
	Name string
	Part int
	Load loadResult
	CPU  cpuSplit
}

// readsOf answers the loads of name in part.
func (f holdsFigure) readsOf(name string, part int) []holdsRead {
	var out []holdsRead
	for _, r := range f.Reads {
		if r.Name == name && r.Part == part {
			out = append(out, r)
		}
	}
	return out
}

// medianPage is the median CPU per page (server and PostgreSQL) of reads,
// and the load of that median round.
func medianPage(reads []holdsRead) holdsRead {
	if len(reads) == 0 {
		return holdsRead{}
	}
	s := slices.Clone(reads)
	slices.SortFunc(s, func(a, b holdsRead) int { return cmp.Compare(a.perPage(), b.perPage()) })
	return s[len(s)/2]
}

// perPage is the server's and PostgreSQL's CPU per page (the load
// generator's apart: it does not change with holds).
func (r holdsRead) perPage() time.Duration { return r.CPU.per(r.CPU.Server + r.CPU.Postgres) }

// clientRun is one round of n operations by the phase's Go client.
type clientRun struct {
	N   int
	D   time.Duration
	CPU cpuSplit
}

func (c clientRun) rate() float64 { return float64(c.N) / c.D.Seconds() }

func medianRun(runs []clientRun) clientRun {
	rates := make([]float64, len(runs))
	for i, r := range runs {
		rates[i] = r.rate()
	}
	m := medianRate(rates)
	for _, r := range runs {
		if r.rate() == m {
			return r
		}
	}
	return clientRun{}
}

// against is the median CPU per page (server and PostgreSQL) of name's
// loads over booked's loads of the same part.
func (f holdsFigure) against(name string, part int) float64 {
	base := medianPage(f.readsOf("booked", part)).perPage()
	if base == 0 {
		return 0
	}
	return float64(medianPage(f.readsOf(name, part)).perPage()) / float64(base)
}

// readRows are the report's rows: the name and part of each kind of load.
var readRows = []struct {
	name string
	part int
}{{"none", 0}, {"booked", 0}, {"held", 0}, {"booked", 1}, {"outdated", 1}}

// checkoutRatio is checkouts/s over bookings/s, medians of the rounds.
func (f holdsFigure) checkoutRatio() float64 {
	return medianRun(f.Checkout).rate() / medianRun(f.Direct).rate()
}

// text is the phase's section of the report.
func (f holdsFigure) text() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("### Slot holds (%s slots; a third of the providers' slots free, a third with %s booked, a third with %s held)\n\n", humanCount(f.Slots), humanCount(f.Booked), humanCount(f.Held))
	p("| GraphQL timeSlots, the providers' slots | server + PostgreSQL CPU per page (each round) | median | the median round's split | its pages/s, p50, p99 | errors | against booked (same rounds) |\n|---|---|---:|---|---|---:|---:|\n")
	for i, row := range readRows {
		reads := f.readsOf(row.name, row.part)
		if len(reads) == 0 {
			continue
		}
		per, errs := make([]string, len(reads)), 0
		for j, r := range reads {
			per[j] = fmt.Sprintf("%.0f", us(r.perPage()))
			errs += r.Load.Errors
		}
		m := medianPage(reads)
		label := map[string]string{"none": "free", "booked": "every other one booked", "held": "every other one held",
			"outdated": "every other one held, summaries outdated"}[row.name]
		if i == 3 {
			label += " (beside outdated)"
		}
		p("| %s | %s µs | %.0f µs | %s | %s, %s, %s | %d | **%.2f×** |\n", label, strings.Join(per, ", "), us(m.perPage()), m.CPU,
			rate(m.Load.RPS), ms(m.Load.P50), ms(m.Load.P99), errs, f.against(row.name, row.part))
	}
	if len(f.Direct) > 0 && len(f.Checkout) > 0 {
		d, c := medianRun(f.Direct), medianRun(f.Checkout)
		p("\n| %d clients, %d slots per round | per second (each round) | median | CPU per operation (median round) |\n|---|---|---:|---|\n", f.Conns, d.N)
		p("| bookSlot | %s | %s | %s |\n", runRates(f.Direct), rate(d.rate()), d.CPU)
		p("| holdSlot, then bookSlot of the hold | %s | %s | %s |\n\n", runRates(f.Checkout), rate(c.rate()), c.CPU)
		p("Checkouts through a hold ran at **%.2f×** the rate of direct bookings.\n\n", f.checkoutRatio())
	}
	if f.Plan != "" {
		p("The page's SQL (one provider, one week), and its plan with the holds, then with their summaries outdated (`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF)`, the logged values written in):\n\n```sql\n%s\n```\n\n```\n%s```\n\n```\n%s```\n", f.SQL, f.Plan, f.OutdatedPlan)
	}
	return b.String()
}

func (f holdsFigure) line() string {
	var b strings.Builder
	for _, r := range f.Reads {
		fmt.Fprintf(&b, "  reads, %s: %s pages/s, p50 %s, p99 %s, %d errors; CPU per page %s (server + PostgreSQL %.0f µs)\n",
			r.Name, rate(r.Load.RPS), ms(r.Load.P50), ms(r.Load.P99), r.Load.Errors, r.CPU, us(r.perPage()))
	}
	fmt.Fprintf(&b, "  CPU per page (medians) against the same slots booked: none %.2f×, held %.2f×, outdated %.2f×\n",
		f.against("none", 0), f.against("held", 0), f.against("outdated", 1))
	if len(f.Direct) > 0 && len(f.Checkout) > 0 {
		d, c := medianRun(f.Direct), medianRun(f.Checkout)
		fmt.Fprintf(&b, "  bookSlot: %s bookings/s (rounds %s), %s per booking\n", rate(d.rate()), runRates(f.Direct), d.CPU)
		fmt.Fprintf(&b, "  holdSlot + bookSlot: %s checkouts/s (rounds %s), %s per checkout; %.2f× the bookings/s",
			rate(c.rate()), runRates(f.Checkout), c.CPU, f.checkoutRatio())
	}
	return b.String()
}

func runRates(runs []clientRun) string {
	rs := make([]float64, len(runs))
	for i, r := range runs {
		rs[i] = r.rate()
	}
	return rates(rs)
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

// Operations of the phase.
const (
	holdMutation     = `mutation Hold($s: ID!) { holdSlot(input: {slotId: $s, ttlMinutes: 60}) { reference expiresAt slot { id remaining } } }`
	bookHoldMutation = `mutation BookHold($h: String!, $c: String!) { bookSlot(input: {holdReference: $h, customer: $c}) { booking { id status } slot { id remaining status } } }`
)

// measureHolds runs the holds phase on server s over dataset ds. Its
// providers make three groups: one keeps its slots free ("none"), one has
// every other slot of the read windows booked ("booked"), one the same
// slots held ("held", then "outdated"); the read loads take the groups in
// turn, holdRounds times, so that each ratio compares loads of the same
// minutes.
func measureHolds(ctx context.Context, b *benchDB, s *server, bin string, o *options, ds *dataset) (holdsFigure, error) {
	fig := holdsFigure{Slots: ds.w.Slots(), Conns: o.conns}
	if len(ds.providers) < 3 {
		return fig, fmt.Errorf("%d providers: the phase needs three groups", len(ds.providers))
	}
	third := len(ds.providers) / 3
	group := func(i int) *dataset {
		g := *ds
		g.providers = ds.providers[i*third : (i+1)*third]
		return &g
	}
	none, booked, held := group(0), group(1), group(2)
	part := 0
	read := func(name string, g *dataset) error {
		var meter *backendMeter
		l, client, err := readLoadMetered(ctx, s, g, graphqlRead, o, o.duration, func() { meter = startCPU(ctx, b, s.cmd.Process.Pid) })
		r := holdsRead{Name: name, Part: part, Load: l}
		if meter != nil {
			r.CPU = meter.finish(ctx, int(l.Requests), client)
		}
		fig.Reads = append(fig.Reads, r)
		if err == nil && l.Errors > 0 {
			err = fmt.Errorf("reads %s: %d of %d requests failed; first: %s", name, l.Errors, l.Requests, l.FirstError)
		}
		return err
	}
	// Every other slot of the read windows: with one seat a slot, a booked
	// or held slot is full, so a page reads past it.
	wins := readWindows(ds, 0)
	everyOther := func(g *dataset) ([]int64, error) {
		ids, err := slotIDs(ctx, b, `SELECT id FROM time_slots WHERE provider_id = ANY($1) AND date BETWEEN $2 AND $3 AND booked_count = 0
			AND start_time > now() ORDER BY provider_id, start_time, id`, providerIDs(g), string(wins[0].Start), string(wins[len(wins)-1].End))
		var out []int64
		for i := 0; i < len(ids); i += 2 {
			out = append(out, ids[i])
		}
		return out, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.conns}}
	book := func(ctx context.Context, id int64) error {
		code, err := bookOnce(ctx, client, s.base, id, "bench-"+strconv.FormatInt(id, 10))
		if err == nil && code != "" {
			err = errors.New(code)
		}
		return err
	}
	toBook, err := everyOther(booked)
	if err != nil {
		return fig, err
	}
	toHold, err := everyOther(held)
	if err != nil {
		return fig, err
	}
	if _, err := clientLoop(ctx, o.conns, toBook, book); err != nil {
		return fig, fmt.Errorf("book: %w", err)
	}
	if _, err := clientLoop(ctx, o.conns, toHold, func(ctx context.Context, id int64) error {
		_, err := holdOnce(ctx, s, client, id)
		return err
	}); err != nil {
		return fig, fmt.Errorf("hold: %w", err)
	}
	fig.Booked, fig.Held = len(toBook), len(toHold)
	if n, err := b.count(ctx, "SELECT count(*) FROM time_slots WHERE held_count = 1"); err != nil || int(n) != fig.Held {
		return fig, fmt.Errorf("%d slots show a hold after %d holds (%v)", n, fig.Held, err)
	}
	if err := b.exec(ctx, "VACUUM ANALYZE time_slots, slot_holds, bookings"); err != nil {
		return fig, err
	}
	for range holdRounds {
		for _, r := range []struct {
			name string
			g    *dataset
		}{{"none", none}, {"booked", booked}, {"held", held}} {
			if err := read(r.name, r.g); err != nil {
				return fig, err
			}
		}
	}
	if fig.SQL, fig.Plan, err = pagePlan(ctx, b, bin, o, held); err != nil {
		return fig, fmt.Errorf("plan: %w", err)
	}
	// Outdated summaries: as if a hold of each held slot had expired since
	// the summary was written, so every held slot's live holds are counted
	// from slot_holds (the holds themselves stay live).
	if err := b.exec(ctx, "UPDATE time_slots SET held_first = now() - interval '1 minute' WHERE held_count > 0"); err != nil {
		return fig, err
	}
	if err := b.exec(ctx, "VACUUM ANALYZE time_slots"); err != nil {
		return fig, err
	}
	part = 1
	for range holdRounds {
		if err := read("booked", booked); err != nil {
			return fig, err
		}
		if err := read("outdated", held); err != nil {
			return fig, err
		}
	}
	if _, fig.OutdatedPlan, err = pagePlan(ctx, b, bin, o, held); err != nil {
		return fig, fmt.Errorf("plan: %w", err)
	}

	// Checkouts against direct bookings, on free slots a day ahead or more.
	n := max(o.bookings/holdRounds, 50)
	free, err := slotIDs(ctx, b, `SELECT id FROM time_slots WHERE held_count = 0 AND booked_count = 0 AND start_time > now() + interval '1 day'
		ORDER BY random() LIMIT $1`, 2*holdRounds*n)
	if err != nil {
		return fig, err
	}
	if len(free) < 2*holdRounds*n {
		return fig, fmt.Errorf("%d free slots for %d bookings", len(free), 2*holdRounds*n)
	}
	for round := range holdRounds {
		for _, checkout := range []bool{false, true} {
			ids := free[:n]
			free = free[n:]
			op := book
			if checkout {
				op = func(ctx context.Context, id int64) error { return checkoutOnce(ctx, s, client, id) }
			}
			meter := startCPU(ctx, b, s.cmd.Process.Pid)
			d, err := clientLoop(ctx, o.conns, ids, op)
			run := clientRun{N: len(ids), D: d, CPU: meter.finish(ctx, len(ids), 0)}
			if err != nil {
				return fig, fmt.Errorf("round %d (checkout %v): %w", round+1, checkout, err)
			}
			if checkout {
				fig.Checkout = append(fig.Checkout, run)
			} else {
				fig.Direct = append(fig.Direct, run)
			}
		}
	}
	confirmed, err := b.count(ctx, "SELECT count(*) FROM bookings WHERE status = 'confirmed'")
	if want := fig.Booked + 2*holdRounds*n; err == nil && int(confirmed) != want {
		err = fmt.Errorf("%d confirmed bookings, want %d", confirmed, want)
	}
	return fig, err
}

// providerIDs answers the ids of ds's providers.
func providerIDs(ds *dataset) []int64 {
	ids := make([]int64, len(ds.providers))
	for i, p := range ds.providers {
		ids[i] = p.ID
	}
	return ids
}

// slotIDs answers the ids query selects.
func slotIDs(ctx context.Context, b *benchDB, query string, args ...any) ([]int64, error) {
	rows, err := b.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// clientLoop runs op on every id with conns workers, each taking the next
// id as soon as its last op answered, and answers the time until the last
// answer; the first error stops it.
func clientLoop(ctx context.Context, conns int, ids []int64, op func(context.Context, int64) error) (time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(ids) {
					return
				}
				if err := op(ctx, ids[i]); err != nil {
					cancel(fmt.Errorf("slot %d: %w", ids[i], err))
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return d, err
	}
	return d, nil
}

// holdOnce holds one seat of slot id and answers the hold's reference.
func holdOnce(ctx context.Context, s *server, client *http.Client, id int64) (string, error) {
	var out struct {
		HoldSlot struct {
			Reference string
			Slot      struct{ Remaining int }
		}
	}
	if err := s.graphql(ctx, client, false, holdMutation, map[string]any{"s": strconv.FormatInt(id, 10)}, &out); err != nil {
		return "", err
	}
	if !strings.HasPrefix(out.HoldSlot.Reference, "hd_") || out.HoldSlot.Slot.Remaining != 0 {
		return "", fmt.Errorf("hold answered %+v", out.HoldSlot)
	}
	return out.HoldSlot.Reference, nil
}

// checkoutOnce holds slot id, then books the hold.
func checkoutOnce(ctx context.Context, s *server, client *http.Client, id int64) error {
	ref, err := holdOnce(ctx, s, client, id)
	if err != nil {
		return err
	}
	var out struct {
		BookSlot struct {
			Booking struct{ Status string }
			Slot    struct{ Remaining int }
		}
	}
	vars := map[string]any{"h": ref, "c": "bench-" + strconv.FormatInt(id, 10)}
	if err := s.graphql(ctx, client, false, bookHoldMutation, vars, &out); err != nil {
		return err
	}
	if out.BookSlot.Booking.Status != "CONFIRMED" || out.BookSlot.Slot.Remaining != 0 {
		return fmt.Errorf("booking the hold answered %+v", out.BookSlot)
	}
	return nil
}

// pagePlan captures the SQL of one GraphQL page (a middle provider, the
// first read window) and answers it with PostgreSQL's plan of it run with
// the logged values: EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF).
func pagePlan(ctx context.Context, b *benchDB, bin string, o *options, ds *dataset) (string, string, error) {
	pid, w := ds.providers[len(ds.providers)/2].ID, readWindows(ds, 0)[0]
	caps, err := capture(ctx, b, bin, o.pgLog, []func(*server) error{func(s *server) error {
		return graphqlRead.send(ctx, http.DefaultClient, s.base, graphqlRead.request(pid, w))
	}})
	if err != nil {
		return "", "", err
	}
	st := caps[0][0]
	sql := bindLiterals(st)
	rows, err := b.pool.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "+sql)
	if err != nil {
		return st.SQL, "", err
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return st.SQL, "", err
		}
		plan.WriteString(line + "\n")
	}
	return st.SQL, plan.String(), rows.Err()
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

// bindLiterals writes st's logged values into its text as quoted literals
// (NULL for nulls), which PostgreSQL types from their context.
func bindLiterals(st statement) string {
	return placeholder.ReplaceAllStringFunc(st.SQL, func(p string) string {
		i, _ := strconv.Atoi(p[1:])
		if i < 1 || i > len(st.Params) {
			return p
		}
		if i-1 < len(st.Nulls) && st.Nulls[i-1] {
			return "NULL"
		}
		return "'" + strings.ReplaceAll(st.Params[i-1], "'", "''") + "'"
	})
}

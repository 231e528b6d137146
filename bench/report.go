package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// machine is what the figures were measured on.
type machine struct {
	CPUs       int
	CPUModel   string
	MemGiB     float64
	Postgres   string
	Settings   string
	SyncCommit string
	GoVersion  string
	Date       string
	LoadStart  string // /proc/loadavg when the run started
	LoadEnd    string
}

func (m machine) String() string {
	return fmt.Sprintf("machine: %d CPUs (%s), %.0f GiB memory, PostgreSQL %s (%s), %s, %s",
		m.CPUs, m.CPUModel, m.MemGiB, m.Postgres, m.Settings, m.GoVersion, m.Date)
}

// loadAvg answers the 1-, 5- and 15-minute load averages: on a shared
// machine they tell how much else was running.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func readMachine(ctx context.Context, b *benchDB) machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Date: time.Now().UTC().Format("2006-01-02")}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(raw), "\n", 2)[0], "MemTotal:"), "%f", &kb)
		m.MemGiB = kb / (1 << 20)
	}
	m.LoadStart = loadAvg()
	m.Postgres = b.serverVersion(ctx)
	m.SyncCommit = b.setting(ctx, "synchronous_commit")
	m.Settings = fmt.Sprintf("shared_buffers %s, synchronous_commit %s, fsync %s",
		b.setting(ctx, "shared_buffers"), b.setting(ctx, "synchronous_commit"), b.setting(ctx, "fsync"))
	return m
}

// report collects every figure of a run.
type report struct {
	opts    *options
	machine machine
	elapsed time.Duration

	sqlite *sqliteFigure
	seed   *genFigure
	gens   []genFigure

	scaling  []scalingPoint
	reads    []readFigure
	health   *loadResult // the read loads' closed loop on GET /healthz
	cache    *cacheFigure
	bookings *bookingFigure
	hot      *hotFigure
	webhooks *webhookFigure
	cleanup  *cleanupFigure
	subs     *subscriptionFigure
	topology *topologyFigure
	holds    *holdsFigure
}

func secs(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%.3f s", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func rate(f float64) string {
	switch {
	case f >= 1e6:
		return fmt.Sprintf("%.2fM", f/1e6)
	case f >= 1e4:
		return fmt.Sprintf("%.0fk", f/1e3)
	case f >= 1e3:
		return fmt.Sprintf("%.1fk", f/1e3)
	default:
		return fmt.Sprintf("%.0f", f)
	}
}

// humanCount writes 14400 as 14,400.
// rates writes each rate of xs, separated by commas.
func rates(xs []float64) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = rate(x)
	}
	return strings.Join(out, ", ")
}

func humanCount(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (g genFigure) line() string {
	return fmt.Sprintf("  %s slots: generateSlots %s = %s rows/s, peak RSS %s | COPY ceiling %s = %s rows/s | ratio %.2f×\n  CPU per row: generateSlots %s | COPY %s",
		humanCount(g.W.Slots()), secs(g.Ours), rate(g.oursRate()), mib(g.PeakRSS), secs(g.Copy), rate(g.copyRate()), g.ratio(), g.OursCPU, g.CopyCPU)
}

// text renders the results as the Markdown that goes into bench/README.md.
func (r *report) text() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	mode := "full run"
	if r.opts.smoke {
		mode = "smoke run (tiny sizes, timings not meaningful)"
	}
	p("Measured %s, %s; %s in %s. Load average (1/5/15 min) %s at the start, %s at the end.\n\n",
		r.machine.Date, mode, r.machine.String(), r.elapsed.Round(time.Second), r.machine.LoadStart, r.machine.LoadEnd)
	r.targets(p)

	if r.seed != nil || len(r.gens) > 0 {
		p("### Generation (generateSlots over GraphQL vs. pgx CopyFrom into the same table)\n\n")
		p("| slots | workload | runs | generateSlots | rows/s | peak RSS | COPY ceiling | COPY rows/s | ratio |\n")
		p("|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
		all := r.gens
		if r.seed != nil {
			all = append([]genFigure{*r.seed}, all...)
		}
		for _, g := range all {
			p("| %s | %d providers × %d days × %d | %d | %s | %s | %s | %s | %s | **%.2f×** |\n",
				humanCount(g.W.Slots()), g.W.Providers, g.W.Days, g.W.perDay(), g.Runs, secs(g.Ours), rate(g.oursRate()),
				mib(g.PeakRSS), secs(g.Copy), rate(g.copyRate()), g.ratio())
		}
		p("\n")
	}
	if len(r.reads) > 0 {
		p("### Reads (%d connections, %s measured after a %s warm-up; wrk vs. pgbench -M prepared -c %d running the captured SQL)\n\n",
			r.opts.conns, r.opts.duration, r.opts.warmup, r.opts.conns)
		p("| endpoint | slots | req/s | p50 | p99 | errors | pgbench tps | pgbench p50 | pgbench p99 | ratio |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, f := range r.reads {
			p("| %s | %s | %s | %s | %s | %d | %s | %s | %s | **%.2f×** |\n", f.API, humanCount(f.Slots), rate(f.Load.RPS),
				ms(f.Load.P50), ms(f.Load.P99), f.Load.Errors, rate(f.Ceiling.TPS), ms(f.Ceiling.P50), ms(f.Ceiling.P99), f.ratio())
		}
		if h := r.health; h != nil {
			p("\nFor scale, the same closed loop on `GET /healthz`, which the server answers without the database through the same middleware: %s req/s, p50 %s, p99 %s, %d errors.\n",
				rate(h.RPS), ms(h.P50), ms(h.P99), h.Errors)
		}
		p("\nCPU per request (process CPU time divided by requests; the sum bounds throughput on %d cores):\n\n", r.machine.CPUs)
		p("| load | CPU per request |\n|---|---|\n")
		for _, f := range r.reads {
			p("| %s | %s |\n| pgbench, same SQL | %s |\n", f.API, f.LoadCPU, f.CeilCPU)
		}
		p("\nThe SQL both endpoints send per page (captured from the PostgreSQL log; pgbench draws the provider and one of eight week windows per transaction):\n\n```sql\n%s\n```\n\n", strings.Join(r.reads[0].SQL, ";\n"))
	}
	if c := r.cache; c != nil {
		p("### Read cache (the reads above on a server with CACHE_MAX_BYTES=%d MiB, which holds them all, beside pgbench running their SQL)\n\n", c.Budget>>20)
		p("| endpoint | req/s | p50 | p99 | errors | pgbench tps | ratio | with 1%% bookings: req/s | bookings/s | ratio |\n")
		p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for i, f := range c.Reads {
			mixed := "| | | |"
			if i < len(c.Mixed) {
				m := c.Mixed[i]
				mixed = fmt.Sprintf("| %s | %s | **%.2f×** |", rate(m.Load.RPS), rate(m.Bookings.RPS), m.ratio())
			}
			p("| %s | %s | %s | %s | %d | %s | **%.2f×** %s\n", f.API, rate(f.Load.RPS), ms(f.Load.P50), ms(f.Load.P99), f.Load.Errors,
				rate(f.Ceiling.TPS), f.ratio(), mixed)
		}
		p("\nCPU per cached request: ")
		for i, f := range c.Reads {
			if i > 0 {
				p("; ")
			}
			p("%s %s", f.API, f.LoadCPU)
		}
		inv := c.Invalidation
		p(".\n\n**Invalidation across two servers** (%d bookings on server A, each of the first slot of a page server B holds in its cache; from A's answer to B's first answer without the slot): p50 %s, p99 %s, max %s.\n\n",
			inv.N, ms(inv.P50), ms(inv.P99), ms(inv.Max))
		f := c.Full
		p("**Memory with the default budget full** (%d MiB; the three reads above, %s each): the cache holds %.1f MiB in %.0f answers; the server's RSS %s, against %s for a server without a cache after the same reads.\n\n",
			f.Budget>>20, r.opts.duration, f.CacheBytes/(1<<20), f.Entries, mib(f.RSS), mib(f.RSSOff))
	}
	if f := r.bookings; f != nil {
		p("### Bookings (%d clients, %s distinct slots over GraphQL; synchronous_commit %s)\n\n", f.Conns, humanCount(f.Bookings), r.machine.syncCommit())
		p("| what | bookings/s | p50 | p99 | errors | CPU per booking | ratio of ours to it |\n|---|---:|---:|---:|---:|---|---:|\n")
		p("| **bookSlot over GraphQL** | %s | %s | %s | %d | %s | |\n", rate(f.rate()), ms(f.Load.P50), ms(f.Load.P99), f.Load.Errors, f.LoadCPU)
		p("| pgbench: the claim alone (conditional UPDATE) | %s | %s | %s | %d | %s | **%.2f×** |\n", rate(f.Claim.TPS), ms(f.Claim.P50), ms(f.Claim.P99), f.Claim.Failed, f.ClaimCPU, f.rate()/f.Claim.TPS)
		p("| pgbench: the SQL our server sends per booking (%s) | %s | %s | %s | %d | %s | **%.2f×** |\n\n", statements(len(f.TxnSQL)), rate(f.Txn.TPS), ms(f.Txn.P50), ms(f.Txn.P99), f.Txn.Failed, f.TxnCPU, f.rate()/f.Txn.TPS)
		p("The claim alone, as pgbench runs it:\n\n```sql\n%s\n```\n\nWhat our server sends per booking (captured from the PostgreSQL log):\n\n```sql\n%s\n```\n\n", f.ClaimSQL, strings.Join(f.TxnSQL, ";\n"))
	}
	if h := r.hot; h != nil {
		p("**Hot slots:** %d booking attempts released together on %d slots of capacity %d: %d winners (per slot %v, checked against `booked_count` and the confirmed bookings in the database), %d refused with `SLOT_UNAVAILABLE`, no other outcome, in %s.\n\n",
			h.Attempts, h.Slots, h.Capacity, h.Winners, h.PerSlot, h.Refused, secs(h.Elapsed))
	}
	if w := r.webhooks; w != nil {
		p("### Webhooks (%d clients, %s distinct slots per round over GraphQL; %d rounds, medians)\n\n", r.opts.conns, humanCount(w.Bookings), len(w.With))
		p("| what | bookings/s (each round) | median |\n|---|---|---:|\n")
		p("| bookSlot, no webhook configured | %s | %s |\n", rates(w.Without), rate(medianRate(w.Without)))
		p("| bookSlot, one webhook wanting booking.created (enqueued in the booking's transaction) | %s | %s |\n", rates(w.With), rate(medianRate(w.With)))
		p("| bookSlot, the webhook's deliveries running beside the bookings on the same CPUs | %s | %s |\n\n", rate(w.Busy), rate(w.Busy))
		p("Ratio with/without: **%.2f×** (%.2f× with the deliveries running beside). Delivery throughput to a local receiver: the backlog of %s deliveries those rounds left, drained by one server in %s: **%s deliveries/s**, none delivered twice.\n\n",
			w.ratio(), w.Busy/medianRate(w.Without), humanCount(w.Backlog), secs(w.Drain), rate(w.drainRate()))
	}
	if f := r.subs; f != nil {
		p("### Subscriptions (%d graphql-transport-ws subscribers to one provider; latency from the bookSlot request to each subscriber's receipt)\n\n", f.Subscribers)
		p("| subscribers on | bookings | receipts | p50 | p99 | max |\n|---|---:|---:|---:|---:|---:|\n")
		p("| the booking's server | %d | %d | %s | %s | %s |\n", f.Bookings, f.Bookings*f.Subscribers, ms(f.Local.P50), ms(f.Local.P99), ms(f.Local.Max))
		p("| another server (through PostgreSQL NOTIFY) | %d | %d | %s | %s | %s |\n\n", f.Bookings, f.Bookings*f.Subscribers, ms(f.Remote.P50), ms(f.Remote.P99), ms(f.Remote.Max))
		p("The booking requests themselves took p50 %s; the other server's p50 is **%.2f×** the booking server's. ", ms(f.BookingP50), float64(f.Remote.P50)/float64(max(f.Local.P50, 1)))
		p("A burst of %d bookings by %d clients reached all %d subscribers (%s changes) in %s: **%s changes/s fanned out**.\n\n",
			f.BurstBookings, f.BurstConns, f.Subscribers, humanCount(f.BurstBookings*f.Subscribers), secs(f.BurstWall), rate(f.Fanout))
	}
	if c := r.cleanup; c != nil {
		p("### Cleanup (cleanupSlots deleting the oldest 30%% of %s slots while GraphQL reads go on at %d/s)\n\n", humanCount(c.Slots), c.ReadRate)
		p("| deleted | seconds | rows/s | longest DELETE transaction (sampled every ms) | DELETEs seen | reads p50 / p99 before | reads p50 / p99 during | read errors |\n")
		p("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		p("| %s | %s | %s | %s | %d | %s / %s | %s / %s | %d |\n\n", humanCount(c.Deleted), secs(c.Wall), rate(float64(c.Deleted)/c.Wall.Seconds()),
			ms(c.LongestLock), c.Statements, ms(c.Before.P50), ms(c.Before.P99), ms(c.During.P50), ms(c.During.P99), c.Before.Errors+c.During.Errors)
	}
	if r.topology != nil {
		p("%s\n", r.topology.text(r.machine.CPUs))
	}
	if r.holds != nil {
		p("%s\n", r.holds.text())
	}
	if len(r.scaling) > 0 {
		p("### Scaling (GraphQL reads %s per step, %s at the largest; generation as above)\n\n", r.opts.scalingDur, r.opts.duration)
		p("| slots | read p50 | read p99 | generateSlots rows/s | COPY rows/s |\n|---:|---:|---:|---:|---:|\n")
		for _, pt := range r.scaling {
			gen, cp := "not run", "not run" // -only without generation: the slots were copied in
			if pt.GenRowsPerSec > 0 {
				gen, cp = rate(pt.GenRowsPerSec), rate(pt.CopyRowsPerSec)
			}
			p50, p99 := "not run", "not run" // -only without reads
			if pt.ReadP50 > 0 {
				p50, p99 = fmt.Sprintf("%.2f ms", pt.ReadP50), fmt.Sprintf("%.2f ms", pt.ReadP99)
			}
			p("| %s | %s | %s | %s | %s |\n", humanCount(pt.Slots), p50, p99, gen, cp)
		}
		if r.opts.chart != "" {
			p("\n![read latency and generation rate by table size](%s)\n", filepath.Base(r.opts.chart))
		}
		p("\n")
	}
	if r.sqlite != nil {
		s := r.sqlite
		p("### SQLite default (the seed workload on the embedded database)\n\n")
		p("| slots | runs | generateSlots | rows/s | server peak RSS |\n|---:|---:|---:|---:|---:|\n")
		p("| %s | %d | %s | %s | %s |\n\n", humanCount(s.W.Slots()), s.Runs, secs(s.Ours),
			rate(float64(s.W.Slots())/s.Ours.Seconds()), mib(s.PeakRSS))
	}
	return b.String()
}

const (
	beginMarker = "<!-- bench:results:begin -->"
	endMarker   = "<!-- bench:results:end -->"
)

// writeReadme replaces the text between the result markers of path.
func (r *report) writeReadme(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(raw)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s markers", path, beginMarker, endMarker)
	}
	out := s[:i+len(beginMarker)] + "\n" + r.text() + s[j:]
	return os.WriteFile(path, []byte(out), 0o644)
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", msf(d)) }

func (l loadResult) line() string {
	corrected := ""
	if l.WrkP99 > 0 {
		corrected = fmt.Sprintf(" (wrk's corrected p99 %s)", ms(l.WrkP99))
	}
	return fmt.Sprintf("  %s req/s, p50 %s, p99 %s%s, max %s, %d requests, %d errors",
		rate(l.RPS), ms(l.P50), ms(l.P99), corrected, ms(l.Max), l.Requests, l.Errors)
}

func (f readFigure) line() string {
	return fmt.Sprintf("%s\n  CPU per request: %s\n  pgbench ceiling: %s tps, p50 %s, p99 %s; CPU per transaction: %s | ratio %.2f×",
		f.Load.line(), f.LoadCPU, rate(f.Ceiling.TPS), ms(f.Ceiling.P50), ms(f.Ceiling.P99), f.CeilCPU, f.ratio())
}

func (f bookingFigure) line() string {
	return fmt.Sprintf("  %d bookings in %s = %s bookings/s, p50 %s, p99 %s, %d errors; CPU per booking: %s\n  pgbench claim (conditional UPDATE): %s tps; CPU %s | ratio %.2f×\n  pgbench, the SQL our server sends per booking (%s): %s tps; CPU %s | ratio %.2f×",
		f.Bookings, secs(f.Load.Duration), rate(f.rate()), ms(f.Load.P50), ms(f.Load.P99), f.Load.Errors, f.LoadCPU,
		rate(f.Claim.TPS), f.ClaimCPU, f.rate()/f.Claim.TPS, statements(len(f.TxnSQL)), rate(f.Txn.TPS), f.TxnCPU, f.rate()/f.Txn.TPS)
}

func (h *hotFigure) line() string {
	return fmt.Sprintf("  %d winners (per slot: %v), %d refused SLOT_UNAVAILABLE, in %s",
		h.Winners, h.PerSlot, h.Refused, secs(h.Elapsed))
}

func (f cleanupFigure) line() string {
	return fmt.Sprintf("  deleted %s of %s slots in %s (%s in the server); longest DELETE transaction seen %s (%d statements seen, %d samples)\n  reads at %d/s: before p50 %s p99 %s | during p50 %s p99 %s, %d errors",
		humanCount(f.Deleted), humanCount(f.Slots), secs(f.Wall), secs(f.Reported), ms(f.LongestLock), f.Statements, f.Samples,
		f.ReadRate, ms(f.Before.P50), ms(f.Before.P99), ms(f.During.P50), ms(f.During.P99), f.Before.Errors+f.During.Errors)
}

func (m machine) syncCommit() string { return m.SyncCommit }

// targets prints the targets beside what this run measured.
func (r *report) targets(p func(string, ...any)) {
	type row struct{ what, target, got, met string }
	var rows []row
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	if g := r.seed; g != nil {
		rows = append(rows, row{"seed workload (14,400 slots) on PostgreSQL", "≤ 0.3 s", fmt.Sprintf("%s (COPY of the same rows: %s)", secs(g.Ours), secs(g.Copy)), yes(g.Ours <= 300*time.Millisecond)})
	}
	var rss int64
	for _, g := range append(r.gens, r.seedList()...) {
		rss = max(rss, g.PeakRSS)
		if g.W.Slots() >= 1_000_000 && g.W.Slots() < 2_000_000 {
			rows = append(rows, row{"1M slots against COPY", "≥ 0.7×", fmt.Sprintf("%.2f× (%s vs %s rows/s)", g.ratio(), rate(g.oursRate()), rate(g.copyRate())), yes(g.ratio() >= 0.7)})
		}
	}
	if rss > 0 {
		rows = append(rows, row{"peak RSS of the generating process, any size", "≤ 64 MiB", mib(rss), yes(rss <= 64<<20)})
	}
	for _, f := range r.reads {
		rows = append(rows, row{f.API + " against pgbench", "≥ 0.3×", fmt.Sprintf("%.2f×", f.ratio()), yes(f.ratio() >= 0.3)})
		rows = append(rows, row{f.API + " p99", "≤ 10 ms", ms(f.Load.P99), yes(f.Load.P99 <= 10*time.Millisecond)})
		rows = append(rows, row{f.API + " errors", "0", fmt.Sprint(f.Load.Errors), yes(f.Load.Errors == 0)})
	}
	if f := r.bookings; f != nil {
		rows = append(rows, row{"bookings against the pgbench claim", "≥ 0.25×", fmt.Sprintf("%.2f× (%s vs %s /s)", f.rate()/f.Claim.TPS, rate(f.rate()), rate(f.Claim.TPS)), yes(f.rate()/f.Claim.TPS >= 0.25)})
		rows = append(rows, row{"booking errors", "0", fmt.Sprint(f.Load.Errors), yes(f.Load.Errors == 0)})
	}
	if w := r.webhooks; w != nil {
		rows = append(rows, row{"bookings with a webhook configured against without", "≥ 0.8×", fmt.Sprintf("%.2f× (%s vs %s /s)", w.ratio(), rate(medianRate(w.With)), rate(medianRate(w.Without))), yes(w.ratio() >= 0.8)})
	}
	if h := r.hot; h != nil {
		rows = append(rows, row{"hot slots: winners per slot", fmt.Sprintf("exactly %d", h.Capacity), fmt.Sprint(h.PerSlot), "yes"})
	}
	if s := r.sqlite; s != nil {
		rows = append(rows, row{"seed workload on SQLite", "≤ 1 s", secs(s.Ours), yes(s.Ours <= time.Second)})
	}
	if len(rows) == 0 {
		return
	}
	p("| target | wanted | measured | met |\n|---|---|---|---|\n")
	for _, x := range rows {
		p("| %s | %s | %s | %s |\n", x.what, x.target, x.got, x.met)
	}
	p("\n")
}

func (r *report) seedList() []genFigure {
	if r.seed == nil {
		return nil
	}
	return []genFigure{*r.seed}
}

func statements(n int) string {
	if n == 1 {
		return "1 statement"
	}
	return fmt.Sprintf("%d statements", n)
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The topology phase (-only topology, with -pgbouncer and -replica; see
// bench/topology.sh, which makes both): GraphQL reads through PgBouncer in
// transaction mode against straight to PostgreSQL, at the read loads' 32
// and at 256 connections; reads with one streaming replica against the
// primary alone; and bookings with the replica routing on against off.

// topoRead is one read load of the topology phase.
type topoRead struct {
	What    string
	Conns   int
	Load    loadResult
	CPU     cpuSplit      // server, the primary's backends, the load generator
	Replica time.Duration // the replica's backends, in all
	Bouncer time.Duration // PgBouncer's process, in all
}

// topoBookings is one booking load of the topology phase.
type topoBookings struct {
	What string
	Load loadResult
	N    int
	CPU  cpuSplit
}

func (b topoBookings) rate() float64 { return float64(b.N) / b.Load.Duration.Seconds() }

type topologyFigure struct {
	Reads    []topoRead
	Bookings []topoBookings
}

// onHost answers raw with its host:port replaced by hostport.
func onHost(raw, hostport string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	u.Host = hostport
	return u.String(), nil
}

// bouncerPID reads PgBouncer's pid file (0 when none is given).
func bouncerPID(path string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	return pid
}

// waitReplicaHealthy waits until the server's /readyz lists its replicas,
// every one healthy.
func waitReplicaHealthy(ctx context.Context, s *server) error {
	deadline := time.Now().Add(2 * time.Minute)
	var last []byte
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var body struct{ Replicas []struct{ State string } }
			last, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			err = json.Unmarshal(last, &body)
			healthy := err == nil && len(body.Replicas) > 0
			for _, r := range body.Replicas {
				healthy = healthy && r.State == "healthy"
			}
			if healthy {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the replica was not healthy within 2 minutes: /readyz %s", last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func measureTopology(ctx context.Context, b *benchDB, bin string, o *options, ds *dataset) (*topologyFigure, error) {
	if o.pgbouncer == "" || o.replica == "" {
		return nil, fmt.Errorf("the topology phase needs -pgbouncer and -replica (bench/topology.sh makes both)")
	}
	pooled, err := onHost(b.url, o.pgbouncer)
	if err != nil {
		return nil, err
	}
	replicaURL, err := onHost(b.url, o.replica)
	if err != nil {
		return nil, err
	}
	rpool, err := pgxpool.New(ctx, replicaURL)
	if err != nil {
		return nil, err
	}
	defer rpool.Close()
	replicaDB := &benchDB{url: replicaURL, pool: rpool}
	bouncer := bouncerPID(o.pgbouncerPID)
	fig := &topologyFigure{}

	read := func(what string, conns int, env ...string) error {
		s, err := startServer(ctx, bin, b.url, append(append([]string{}, o.serverEnv...), env...)...)
		if err != nil {
			return err
		}
		defer s.stop()
		if strings.Contains(strings.Join(env, " "), "DATABASE_REPLICA_URLS=") {
			if err := waitReplicaHealthy(ctx, s); err != nil {
				return err
			}
		}
		ro := *o
		ro.conns = conns
		var meter, rmeter *backendMeter
		var b0 time.Duration
		viaBouncer := strings.Contains(strings.Join(env, " "), "DATABASE_URL=")
		res, client, err := readLoadMetered(ctx, s, ds, graphqlRead, &ro, o.duration, func() {
			meter = startCPU(ctx, b, s.cmd.Process.Pid)
			rmeter = startCPU(ctx, replicaDB, 0)
			if bouncer != 0 && viaBouncer {
				b0, _ = procCPU(bouncer)
			}
		})
		if err != nil {
			return err
		}
		tr := topoRead{What: what, Conns: conns, Load: res, CPU: meter.finish(ctx, int(res.Requests), client)}
		tr.Replica = rmeter.finish(ctx, int(res.Requests), client).Postgres
		if bouncer != 0 && viaBouncer {
			if b1, ok := procCPU(bouncer); ok {
				tr.Bouncer = b1 - b0
			}
		}
		fig.Reads = append(fig.Reads, tr)
		fmt.Println(tr.line())
		if res.Errors > 0 {
			return fmt.Errorf("%s: %d of %d requests failed; first: %s", what, res.Errors, res.Requests, res.FirstError)
		}
		return nil
	}
	for _, conns := range []int{32, 256} {
		fmt.Printf("-- topology: GraphQL timeSlots, %d connections, straight to PostgreSQL and through PgBouncer\n", conns)
		if err := read("direct", conns); err != nil {
			return fig, err
		}
		if err := read("through PgBouncer", conns, "DATABASE_URL="+pooled, "DATABASE_DIRECT_URL="+b.url); err != nil {
			return fig, err
		}
	}
	fmt.Printf("-- topology: GraphQL timeSlots, %d connections, the primary alone and with one replica\n", o.conns)
	if err := read("primary alone", o.conns); err != nil {
		return fig, err
	}
	if err := read("one replica", o.conns, "DATABASE_REPLICA_URLS="+replicaURL); err != nil {
		return fig, err
	}

	// Bookings: distinct free slots, half with the replica routing off
	// and half with it on; each slot once.
	n := min(o.bookings, int(ds.w.Slots())/4)
	n -= n % o.conns
	var ids []int64
	rows, err := b.pool.Query(ctx, "SELECT id FROM time_slots WHERE booked_count = 0 AND start_time > now() + interval '1 day' ORDER BY random() LIMIT $1", 2*n)
	if err != nil {
		return fig, err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fig, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) != 2*n {
		return fig, fmt.Errorf("found %d free slots, want %d", len(ids), 2*n)
	}
	for i, c := range []struct {
		what string
		env  []string
	}{{"replica routing off", nil}, {"one replica", []string{"DATABASE_REPLICA_URLS=" + replicaURL}}} {
		fmt.Printf("-- topology: %d bookings over GraphQL, %s\n", n, c.what)
		s, err := startServer(ctx, bin, b.url, append(append([]string{}, o.serverEnv...), c.env...)...)
		if err != nil {
			return fig, err
		}
		if c.env != nil {
			if err := waitReplicaHealthy(ctx, s); err != nil {
				s.stop()
				return fig, err
			}
		}
		meter := startCPU(ctx, b, s.cmd.Process.Pid)
		res, client, err := runWrk(ctx, s.base, bookingsOf(ids[i*n:(i+1)*n]), o.conns, max(time.Minute, time.Duration(n/100)*time.Second))
		tb := topoBookings{What: c.what, Load: res, N: n, CPU: meter.finish(ctx, int(res.Requests), client)}
		s.stop()
		if err != nil {
			return fig, err
		}
		fig.Bookings = append(fig.Bookings, tb)
		fmt.Printf("  %s bookings/s, p50 %s, p99 %s, %d errors; CPU per booking: %s\n", rate(tb.rate()), ms(res.P50), ms(res.P99), res.Errors, tb.CPU)
		if res.Errors > 0 || res.Requests != uint64(n) {
			return fig, fmt.Errorf("%s: %d of %d bookings failed; first: %s", c.what, res.Errors, res.Requests, res.FirstError)
		}
	}
	return fig, nil
}

func (t topoRead) line() string {
	extra := ""
	if t.Replica > 0 {
		extra += fmt.Sprintf(" + replica %.0f µs", float64(t.Replica)/1e3/float64(max(t.CPU.Ops, 1)))
	}
	if t.Bouncer > 0 {
		extra += fmt.Sprintf(" + PgBouncer %.0f µs", float64(t.Bouncer)/1e3/float64(max(t.CPU.Ops, 1)))
	}
	return fmt.Sprintf("  %s, %d conns:%s\n  CPU per request: %s%s", t.What, t.Conns, t.Load.line(), t.CPU, extra)
}

// topologyText is the phase's section of the report.
func (f *topologyFigure) text(cpus int) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("### Topologies: PgBouncer (transaction mode) and one streaming replica, GraphQL timeSlots\n\n")
	p("| setup | connections | req/s | p50 | p99 | errors | server | primary's backends | replica's backends | PgBouncer | client | all, per request |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	us := func(d time.Duration, ops int) string {
		if ops == 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f µs", float64(d)/1e3/float64(ops))
	}
	for _, r := range f.Reads {
		all := r.CPU.Server + r.CPU.Postgres + r.Replica + r.Bouncer + r.CPU.Client
		p("| %s | %d | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s |\n", r.What, r.Conns, rate(r.Load.RPS), ms(r.Load.P50), ms(r.Load.P99),
			r.Load.Errors, us(r.CPU.Server, r.CPU.Ops), us(r.CPU.Postgres, r.CPU.Ops), us(r.Replica, r.CPU.Ops), us(r.Bouncer, r.CPU.Ops),
			us(r.CPU.Client, r.CPU.Ops), us(all, r.CPU.Ops))
	}
	p("\n| bookings (%d cores) | bookings/s | p50 | p99 | errors | CPU per booking |\n|---|---:|---:|---:|---:|---|\n", cpus)
	for _, k := range f.Bookings {
		p("| %s | %s | %s | %s | %d | %s |\n", k.What, rate(k.rate()), ms(k.Load.P50), ms(k.Load.P99), k.Load.Errors, k.CPU)
	}
	if len(f.Bookings) == 2 {
		p("\nBookings with the replica routing on ran at **%.2f×** the rate with it off.\n", f.Bookings[1].rate()/f.Bookings[0].rate())
	}
	return b.String()
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"timeslots/models"
)

// window is a startDate..endDate filter (inclusive, the providers' dates).
type window struct{ Start, End models.Date }

// readWindows are eight one-week windows spread over the generated month;
// each request picks one at random, and so does pgbench.
func readWindows(ds *dataset, offsetDays int) []window {
	var out []window
	for i := 0; i < 8; i++ {
		s := ds.today.AddDays(offsetDays + 3*i)
		out = append(out, window{Start: s, End: s.AddDays(6)})
	}
	return out
}

// loadResult is one load run as the client saw it.
type loadResult struct {
	Requests   uint64
	RPS        float64
	P50, P99   time.Duration // as measured, request by request
	Max        time.Duration
	Errors     int
	FirstError string
	Duration   time.Duration
	// wrk only: WrkP99 is the p99 wrk itself reports, after its correction
	// for coordinated omission (undoWrkCorrection); Span is a deal load's
	// time from its first request to its last answer (load.lua).
	WrkP99 time.Duration
	Span   time.Duration
	cpu    time.Duration // wrk's CPU time until its end
}

// runLoad attacks with vegeta: workers concurrent connections, as fast as
// they go (freq 0) or at freq requests/s, for d or, for a Deal load, until
// its requests run out; every answer is held to l's check.
func runLoad(ctx context.Context, base string, l load, workers, freq int, d time.Duration) loadResult {
	atk := vegeta.NewAttacker(
		vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(workers)),
		vegeta.Connections(workers), vegeta.MaxConnections(workers),
		vegeta.KeepAlive(true), vegeta.HTTP2(false), vegeta.Timeout(60*time.Second),
	)
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	var m vegeta.Metrics
	var res loadResult
	for r := range atk.Attack(l.targeter(base), vegeta.Rate{Freq: freq, Per: time.Second}, d, l.Name) {
		if r.Error == vegeta.ErrNoTargets.Error() && r.Method == "" {
			continue // the targeter ran out: not a request
		}
		m.Add(r)
		if err := l.Check.verifyResult(r); err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = err.Error()
			}
		}
	}
	m.Close()
	res.Requests = m.Requests
	res.Duration = m.Duration + m.Wait
	if res.Duration > 0 {
		res.RPS = float64(m.Requests) / res.Duration.Seconds()
	}
	res.P50, res.P99, res.Max = m.Latencies.P50, m.Latencies.P99, m.Latencies.Max
	return res
}

// readFigure is one read endpoint under load beside pgbench running the
// SQL it sends.
type readFigure struct {
	API      string
	Slots    int
	Load     loadResult
	Ceiling  pgbenchResult
	SQL      []string
	Conns    int
	Duration time.Duration
	LoadCPU  cpuSplit
	CeilCPU  cpuSplit
}

func (f readFigure) ratio() float64 { return f.Load.RPS / f.Ceiling.TPS }

// readLoad warms up, then measures one endpoint with wrk.
func readLoad(ctx context.Context, s *server, ds *dataset, api readAPI, o *options, d time.Duration) (loadResult, error) {
	l, _, err := readLoadMetered(ctx, s, ds, api, o, d, func() {})
	return l, err
}

// readLoadMetered is readLoad calling begin between warm-up and measure; it
// also answers the load generator's CPU time over the measured part.
func readLoadMetered(ctx context.Context, s *server, ds *dataset, api readAPI, o *options, d time.Duration, begin func()) (loadResult, time.Duration, error) {
	l := readsOf(api, ds, readWindows(ds, 0))
	if o.warmup > 0 {
		if _, _, err := runWrk(ctx, s.base, l, o.conns, o.warmup); err != nil {
			return loadResult{}, 0, err
		}
	}
	begin()
	return runWrk(ctx, s.base, l, o.conns, d)
}

// healthLoad runs the read loads' closed loop (warm-up, then the measured
// time) on GET /healthz: the latency this machine gives any answer of the
// server at that concurrency, before a query or a page is written.
func healthLoad(ctx context.Context, s *server, o *options) (loadResult, error) {
	l := healthChecks()
	if o.warmup > 0 {
		if _, _, err := runWrk(ctx, s.base, l, o.conns, o.warmup); err != nil {
			return loadResult{}, err
		}
	}
	res, _, err := runWrk(ctx, s.base, l, o.conns, o.duration)
	if err == nil && res.Errors > 0 {
		err = fmt.Errorf("%s: %d of %d requests failed; first: %s", l.Name, res.Errors, res.Requests, res.FirstError)
	}
	return res, err
}

// captureReads learns the SQL each read endpoint sends, one request per
// window, and turns each into a pgbench script with a random provider.
func captureReads(ctx context.Context, b *benchDB, bin string, o *options, ds *dataset, api readAPI) ([]pgbenchScript, []string, error) {
	wins := readWindows(ds, 0)
	pid := ds.providers[len(ds.providers)/2].ID
	var reqs []func(*server) error
	for _, w := range wins {
		reqs = append(reqs, func(s *server) error {
			return api.send(ctx, http.DefaultClient, s.base, api.request(pid, w))
		})
	}
	caps, err := capture(ctx, b, bin, o.pgLog, reqs)
	if err != nil {
		return nil, nil, err
	}
	lo, hi := ds.providers[0].ID, ds.providers[len(ds.providers)-1].ID
	head := fmt.Sprintf("\\set pid random(%d, %d)\n", lo, hi)
	var scripts []pgbenchScript
	for i, stmts := range caps {
		found := false
		vary := func(sql string, n int) string {
			if paramAfter(sql, "provider_id") == n {
				found = true
				return "pid"
			}
			return ""
		}
		scripts = append(scripts, scriptFor(stmts, "w"+strconv.Itoa(i), head, vary))
		if !found {
			return nil, nil, fmt.Errorf("%s: no provider_id parameter in the captured SQL %q", api.Name, stmts[0].SQL)
		}
	}
	var sqls []string
	for _, st := range caps[0] {
		sqls = append(sqls, st.SQL)
	}
	return scripts, sqls, nil
}

// measureRead runs one endpoint's load and its pgbench ceiling.
func measureRead(ctx context.Context, b *benchDB, s *server, bin, tmp string, o *options, ds *dataset, api readAPI) (readFigure, error) {
	fig := readFigure{API: api.Name, Slots: ds.w.Slots(), Conns: o.conns, Duration: o.duration}
	scripts, sqls, err := captureReads(ctx, b, bin, o, ds, api)
	if err != nil {
		return fig, err
	}
	fig.SQL = sqls
	fmt.Printf("  SQL per request (%d statements), pgbench script 1:\n%s", len(sqls), indent(scripts[0].Text))
	var meter *backendMeter
	var client time.Duration
	fig.Load, client, err = readLoadMetered(ctx, s, ds, api, o, o.duration, func() { meter = startCPU(ctx, b, s.cmd.Process.Pid) })
	if meter != nil {
		fig.LoadCPU = meter.finish(ctx, int(fig.Load.Requests), client)
	}
	if err != nil {
		return fig, err
	}
	// A warm-up only warms: one that ended while its clients were still
	// connecting has done what it could.
	if o.warmup > 0 {
		if _, err := runPgbench(ctx, b.url, tmp, scripts, nil, o.conns, o.warmup, 0); err != nil && !errors.Is(err, errNoTransactions) {
			return fig, err
		}
	}
	// The ceiling has to measure something: a run that ended while its
	// clients were still connecting (a short smoke run on a loaded
	// machine) runs again for twice as long, twice at most.
	for d, try := o.duration, 0; ; d, try = 2*d, try+1 {
		meter = startCPU(ctx, b, 0)
		fig.Ceiling, err = runPgbench(ctx, b.url, tmp, scripts, nil, o.conns, d, 0)
		fig.CeilCPU = meter.finish(ctx, fig.Ceiling.Txns, fig.Ceiling.CPU)
		if !errors.Is(err, errNoTransactions) || try == 2 {
			break
		}
		fmt.Printf("  pgbench ended in %s before any transaction did: again for %s\n", d, 2*d)
	}
	if err != nil {
		return fig, err
	}
	if fig.Load.Errors > 0 {
		return fig, fmt.Errorf("%s: %d of %d requests failed; first: %s", api.Name, fig.Load.Errors, fig.Load.Requests, fig.Load.FirstError)
	}
	if fig.Ceiling.Failed > 0 {
		return fig, fmt.Errorf("pgbench: %d transactions failed", fig.Ceiling.Failed)
	}
	return fig, nil
}

func indent(s string) string {
	var b bytes.Buffer
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n")) {
		b.WriteString("    ")
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

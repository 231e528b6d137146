package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed" // load.lua
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The closed loads (N connections, each sending its next request when the
// answer came) are run by wrk, a C load generator on epoll: on two cores
// its CPU per request is a fraction of a Go client's, which leaves the
// server and PostgreSQL the machine that pgbench's equally light client
// leaves PostgreSQL. One Lua script, load.lua, runs every load from a data
// file the bench writes (load.luaData): the requests, how they are sent and
// the check every answer must pass.

// loadScript is wrk's script of every load.
//
//go:embed load.lua
var loadScript string

// wrkThreads is how many threads wrk runs.
const wrkThreads = 2

// luaData answers l as the data file load.lua reads: a Lua chunk that
// returns one table (its fields are described at the top of load.lua).
func (l load) luaData() ([]byte, error) {
	if len(l.Requests) == 0 {
		return nil, fmt.Errorf("%s: a load without requests", l.Name)
	}
	if l.Deal && len(l.Requests) < wrkThreads {
		return nil, fmt.Errorf("%s: %d requests to deal to %d threads", l.Name, len(l.Requests), wrkThreads)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "-- %s: written by the timeslots bench for load.lua\nreturn {\n", l.Name)
	fmt.Fprintf(&b, "method = %s,\n", luaQuote(l.Method))
	b.WriteString("headers = {")
	if l.ContentType != "" {
		fmt.Fprintf(&b, "[%s] = %s", luaQuote("Content-Type"), luaQuote(l.ContentType))
	}
	b.WriteString("},\n")
	fmt.Fprintf(&b, "deal = %t,\nthreads = %d,\nstatus = %d,\nrules = {\n", l.Deal, wrkThreads, l.Check.Status)
	for _, r := range l.Check.Rules {
		if r.Text == "" {
			return nil, fmt.Errorf("%s: a rule on %s counts an empty text", l.Name, r.What)
		}
		fmt.Fprintf(&b, "  {what = %s, text = %s, min = %d, max = %d, want = %s},\n",
			luaQuote(r.What), luaQuote(r.Text), r.Min, r.Max, luaQuote(r.want()))
	}
	b.WriteString("},\npaths = {\n")
	bodies := false
	for _, r := range l.Requests {
		b.WriteString(luaQuote(r.Path))
		b.WriteString(",\n")
		bodies = bodies || r.Body != nil
	}
	b.WriteString("},\n")
	if bodies {
		b.WriteString("bodies = {\n")
		for _, r := range l.Requests {
			if r.Body == nil {
				b.WriteString("false")
			} else {
				b.WriteString(luaQuote(string(r.Body)))
			}
			b.WriteString(",\n")
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// luaQuote answers s as a Lua string literal that reads back byte for
// byte: printable ASCII stays as it is but for the quote and the
// backslash, and every other byte becomes a three-digit decimal escape
// (three digits, so that a digit after it cannot extend it).
func luaQuote(s string) string {
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < ' ' || c > '~':
			b = append(b, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
		default:
			b = append(b, c)
		}
	}
	return string(append(b, '"'))
}

// wrkCommand answers the command running l against base (the script and
// the data are written to a temporary directory, removed by the returned
// func): conns connections on wrkThreads threads for at most d.
func wrkCommand(ctx context.Context, base string, l load, conns int, d time.Duration) (*exec.Cmd, func(), error) {
	data, err := l.luaData()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "timeslots-bench-wrk-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	script, dataFile := filepath.Join(dir, "load.lua"), filepath.Join(dir, "data.lua")
	if err := os.WriteFile(script, []byte(loadScript), 0o644); err != nil {
		cleanup()
		return nil, nil, err
	}
	if err := os.WriteFile(dataFile, data, 0o644); err != nil {
		cleanup()
		return nil, nil, err
	}
	secs := max(1, int((d+time.Second/2)/time.Second))
	cmd := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(wrkThreads), "-c", strconv.Itoa(conns), "-d", strconv.Itoa(secs)+"s",
		"--timeout", "60s", "-s", script, base, dataFile)
	return cmd, cleanup, nil
}

// runWrk runs l with wrk against base: conns connections for d, or, for a
// Deal load, until every request is answered but for at most d (once every
// thread has said it is done, it interrupts wrk, which then reports as at
// the end of its time; the load's duration is then the script's span,
// from the first request to the last answer). It answers the load as wrk
// saw it and wrk's own CPU time over it.
func runWrk(ctx context.Context, base string, l load, conns int, d time.Duration) (loadResult, time.Duration, error) {
	cmd, cleanup, err := wrkCommand(ctx, base, l, conns, d)
	if err != nil {
		return loadResult{}, 0, err
	}
	defer cleanup()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return loadResult{}, 0, err
	}
	if err := cmd.Start(); err != nil {
		return loadResult{}, 0, err
	}
	var out strings.Builder
	finished := make(chan struct{})
	sc := bufio.NewScanner(pipe)
	sc.Buffer(nil, 64<<20)
	done := 0
	for sc.Scan() {
		out.WriteString(sc.Text())
		out.WriteByte('\n')
		if sc.Text() == "wrk-thread-done" {
			if done++; done == wrkThreads {
				// wrk takes SIGINT only once its threads run: repeat it
				// until wrk has ended.
				go func() {
					t := time.NewTicker(200 * time.Millisecond)
					defer t.Stop()
					for {
						_ = cmd.Process.Signal(os.Interrupt)
						select {
						case <-finished:
							return
						case <-t.C:
						}
					}
				}()
			}
		}
	}
	_, _ = io.Copy(io.Discard, pipe)
	err = cmd.Wait()
	close(finished)
	if err != nil {
		return loadResult{}, 0, fmt.Errorf("wrk: %v: %s%s", err, stderr.String(), out.String())
	}
	res, err := parseWrk(out.String(), conns)
	cpu := res.cpu
	if err != nil || !l.Deal {
		return res, cpu, err
	}
	if done < wrkThreads {
		if res.Errors == 0 {
			res.Errors = 1
			res.FirstError = fmt.Sprintf("wrk ran out of its %s before every answer came", d)
		}
		return res, cpu, nil
	}
	if res.Span <= 0 {
		return res, cpu, fmt.Errorf("wrk's script reported no span from its first request to its last answer")
	}
	res.Duration = res.Span
	res.RPS = float64(res.Requests) / res.Duration.Seconds()
	return res, cpu, nil
}

// parseWrk reads the lines the scripts' done() prints for a load of conns
// connections.
func parseWrk(out string, conns int) (loadResult, error) {
	var res loadResult
	found := false
	var hist []latencyCount
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "wrk-first-error "); ok {
			res.FirstError = rest
			continue
		}
		if rest, ok := strings.CutPrefix(line, "wrk-latency "); ok {
			for _, vc := range strings.Fields(rest) {
				v, c, _ := strings.Cut(vc, ":")
				us, err1 := strconv.ParseInt(v, 10, 64)
				n, err2 := strconv.ParseInt(c, 10, 64)
				if err1 != nil || err2 != nil {
					return res, fmt.Errorf("wrk latency %q: not µs:count", vc)
				}
				hist = append(hist, latencyCount{us, n})
			}
			continue
		}
		rest, ok := strings.CutPrefix(line, "wrk-result ")
		if !ok {
			continue
		}
		found = true
		v := map[string]int64{}
		for _, kv := range strings.Fields(rest) {
			k, n, _ := strings.Cut(kv, "=")
			x, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				return res, fmt.Errorf("wrk output %q: %v", line, err)
			}
			v[k] = x
		}
		us := func(k string) time.Duration { return time.Duration(v[k]) * time.Microsecond }
		res.Requests = uint64(v["requests"])
		res.Duration = us("duration_us")
		res.Span = us("span_us")
		res.WrkP99 = us("wrk_p99_us")
		res.cpu = us("cpu_us")
		res.Errors = int(v["failed"] + v["connect"] + v["read"] + v["write"] + v["timeout"])
		if res.FirstError == "" && res.Errors > int(v["failed"]) {
			res.FirstError = fmt.Sprintf("socket errors: connect %d, read %d, write %d, timeout %d", v["connect"], v["read"], v["write"], v["timeout"])
		}
	}
	if !found {
		return res, fmt.Errorf("wrk printed no result:\n%s", out)
	}
	if res.Duration > 0 {
		res.RPS = float64(res.Requests) / res.Duration.Seconds()
	}
	raw := undoWrkCorrection(hist, int64(res.Duration/time.Microsecond), int64(res.Requests), int64(conns))
	res.P50, res.P99, res.Max = histQuantile(raw, 0.50), histQuantile(raw, 0.99), histQuantile(raw, 1)
	return res, nil
}

// latencyCount is one bucket of wrk's latency histogram: Count answers
// that took US microseconds.
type latencyCount struct{ US, Count int64 }

// undoWrkCorrection answers the latencies wrk measured from the histogram
// it reports. At its end wrk "corrects" the histogram for coordinated
// omission: with e = run time ÷ (answers ÷ connections), for each answer
// that took L ≥ 2e it adds phantom answers at L−e, L−2e, … while above e
// (stats_correct in wrk's stats.c). pgbench's latencies beside ours are
// per transaction as measured, and so are these: the measured count at
// m > e is the reported count at m less the reported count at m+e (every
// phantom at m+e has one at m, and the measured answers at m+e have theirs
// there too); at m ≤ e nothing was added.
func undoWrkCorrection(hist []latencyCount, runtimeUS, requests, conns int64) []latencyCount {
	if conns <= 0 || requests/conns == 0 {
		return hist
	}
	e := runtimeUS / (requests / conns)
	at := make(map[int64]int64, len(hist))
	for _, b := range hist {
		at[b.US] += b.Count
	}
	var raw []latencyCount
	for _, b := range hist {
		n := b.Count
		if b.US > e {
			n -= at[b.US+e]
		}
		if n > 0 {
			raw = append(raw, latencyCount{b.US, n})
		}
	}
	slices.SortFunc(raw, func(a, b latencyCount) int { return int(a.US - b.US) })
	return raw
}

// histQuantile answers the q-quantile of a histogram sorted by latency,
// as quantile does for a sorted list.
func histQuantile(hist []latencyCount, q float64) time.Duration {
	var total int64
	for _, b := range hist {
		total += b.Count
	}
	if total == 0 {
		return 0
	}
	rank := int64(q * float64(total-1))
	var seen int64
	for _, b := range hist {
		seen += b.Count
		if seen > rank {
			return time.Duration(b.US) * time.Microsecond
		}
	}
	return time.Duration(hist[len(hist)-1].US) * time.Microsecond
}

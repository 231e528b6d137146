package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pgbenchScript is one pgbench transaction script and the fixed values
// (-D) it refers to.
type pgbenchScript struct {
	Text    string
	Defines map[string]string
}

// scriptFor turns the statements of one request into a pgbench script that
// sends exactly that SQL, in order, as prepared statements. head is put
// first (\set lines); vary names the parameters the script draws itself
// (answering the variable, e.g. "pid"); every other parameter keeps the
// captured value through a -D variable, so the statement text stays the
// server's, with $n placeholders.
func scriptFor(stmts []statement, prefix, head string, vary func(sql string, n int) string) pgbenchScript {
	sc := pgbenchScript{Defines: map[string]string{}}
	var b strings.Builder
	b.WriteString(head)
	for i, st := range stmts {
		sql := st.SQL
		for n := len(st.Params); n >= 1; n-- {
			ph := "$" + strconv.Itoa(n)
			switch {
			case vary != nil && vary(st.SQL, n) != "":
				sql = strings.ReplaceAll(sql, ph, ":"+vary(st.SQL, n))
			case st.Nulls[n-1]:
				sql = strings.ReplaceAll(sql, ph, "NULL")
			default:
				name := fmt.Sprintf("%s_%d_%d", prefix, i, n)
				sc.Defines[name] = st.Params[n-1]
				sql = strings.ReplaceAll(sql, ph, ":"+name)
			}
		}
		b.WriteString(strings.TrimSuffix(strings.TrimSpace(sql), ";"))
		b.WriteString(";\n")
	}
	sc.Text = b.String()
	return sc
}

// paramAfter answers the $n that follows column in sql ("provider_id = $3"),
// the way to recognise which captured parameter is the provider or slot id.
func paramAfter(sql, column string) int {
	re := regexp.MustCompile(`(?:^|[^a-z_."])"?` + regexp.QuoteMeta(column) + `"?\s*=\s*\$(\d+)`)
	m := re.FindStringSubmatch(sql)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// pgbenchResult is one pgbench run.
type pgbenchResult struct {
	TPS      float64
	AvgLat   time.Duration
	P50, P99 time.Duration
	Txns     int
	Failed   int
	Duration time.Duration
	CPU      time.Duration // pgbench's own CPU
}

// errNoTransactions is a pgbench run whose time was up before any
// transaction ended: its clients were still connecting, as a one-second
// warm-up's can be on a loaded machine.
var errNoTransactions = errors.New("pgbench ended before any transaction did")

var (
	reTPS    = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	reLat    = regexp.MustCompile(`latency average = ([0-9.]+) ms`)
	reTxns   = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	reFailed = regexp.MustCompile(`number of failed transactions: (\d+)`)
)

// runPgbench runs scripts (picked at random, equal weights) with clients
// connections for d (or, when txnsPerClient > 0, that many transactions per
// client), and reads its throughput and, from a sampled transaction log,
// its latency percentiles.
func runPgbench(ctx context.Context, dbURL, dir string, scripts []pgbenchScript, vars map[string]string, clients int, d time.Duration, txnsPerClient int) (pgbenchResult, error) {
	if _, err := exec.LookPath("pgbench"); err != nil {
		return pgbenchResult{}, fmt.Errorf("pgbench is not installed (Debian: apt-get install postgresql-contrib)")
	}
	logDir, err := os.MkdirTemp(dir, "pgbench-")
	if err != nil {
		return pgbenchResult{}, err
	}
	defer os.RemoveAll(logDir)
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(clients), "-j", "2",
		"-l", "--sampling-rate=0.2", "--log-prefix=" + filepath.Join(logDir, "tx")}
	if txnsPerClient > 0 {
		args = append(args, "-t", strconv.Itoa(txnsPerClient))
	} else {
		args = append(args, "-T", strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))))
	}
	for i, sc := range scripts {
		f := filepath.Join(logDir, fmt.Sprintf("script%d.sql", i))
		if err := os.WriteFile(f, []byte(sc.Text), 0o644); err != nil {
			return pgbenchResult{}, err
		}
		args = append(args, "-f", f+"@1")
		for k, v := range sc.Defines {
			args = append(args, "-D", k+"="+v)
		}
	}
	for k, v := range vars {
		args = append(args, "-D", k+"="+v)
	}
	args = append(args, dbURL)
	cmd := exec.CommandContext(ctx, "pgbench", args...)
	cmd.Dir = logDir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	res := pgbenchResult{Duration: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if err != nil {
		return res, fmt.Errorf("pgbench: %v\n%s", err, out)
	}
	if err := parsePgbench(string(out), &res); err != nil {
		return res, err
	}
	lats, err := readPgbenchLogs(logDir)
	if err != nil {
		return res, err
	}
	res.P50, res.P99 = quantile(lats, 0.50), quantile(lats, 0.99)
	return res, nil
}

// parsePgbench reads pgbench's summary into res: its throughput, average
// latency and transaction counts.
func parsePgbench(text string, res *pgbenchResult) error {
	txns := reTxns.FindStringSubmatch(text)
	if txns != nil {
		res.Txns, _ = strconv.Atoi(txns[1])
	}
	if m := reTPS.FindStringSubmatch(text); m != nil {
		res.TPS, _ = strconv.ParseFloat(m[1], 64)
	} else if txns != nil && res.Txns == 0 {
		return fmt.Errorf("%w:\n%s", errNoTransactions, text)
	} else {
		return fmt.Errorf("pgbench printed no tps:\n%s", text)
	}
	if m := reLat.FindStringSubmatch(text); m != nil {
		f, _ := strconv.ParseFloat(m[1], 64)
		res.AvgLat = time.Duration(f * float64(time.Millisecond))
	}
	if m := reFailed.FindStringSubmatch(text); m != nil {
		res.Failed, _ = strconv.Atoi(m[1])
	}
	return nil
}

// readPgbenchLogs reads the per-transaction latencies (µs, third field) of
// pgbench's transaction logs.
func readPgbenchLogs(dir string) ([]time.Duration, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tx*"))
	if err != nil {
		return nil, err
	}
	var out []time.Duration
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 3 {
				continue
			}
			us, err := strconv.ParseInt(fs[2], 10, 64)
			if err == nil {
				out = append(out, time.Duration(us)*time.Microsecond)
			}
		}
		fh.Close()
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// quantile answers the q-quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

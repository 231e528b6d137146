package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CPU time is what a shared machine cannot blur: whatever else runs, a
// request costs the server, PostgreSQL and the load generator about the same
// CPU, and on two cores the sum bounds the throughput. These meters give the
// split per request.

// procCPU answers the user+system CPU time of a live process.
func procCPU(pid int) (time.Duration, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * time.Second / 100, true // USER_HZ is 100 on Linux
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuSplit is the CPU a load cost each party.
type cpuSplit struct {
	Server, Postgres, Client time.Duration
	Ops                      int
}

func (c cpuSplit) per(d time.Duration) time.Duration {
	if c.Ops == 0 {
		return 0
	}
	return d / time.Duration(c.Ops)
}

func (c cpuSplit) String() string {
	if c.Ops == 0 {
		return "n/a"
	}
	us := func(d time.Duration) string {
		if d == 0 {
			return "? µs (too short to sample)"
		}
		return fmt.Sprintf("%.0f µs", float64(c.per(d))/1e3)
	}
	if c.Server > 0 {
		return fmt.Sprintf("server %s + PostgreSQL %s + client %s", us(c.Server), us(c.Postgres), us(c.Client))
	}
	return fmt.Sprintf("PostgreSQL %s + client %s", us(c.Postgres), us(c.Client))
}

// backendMeter follows the CPU of every backend of the bench database while
// a load runs: it polls their pids, so backends that come and go (pgbench's)
// are counted up to the last poll before they exit.
type backendMeter struct {
	b      *benchDB
	stop   context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	first  map[int]time.Duration
	last   map[int]time.Duration
	server int
	t0     time.Duration
	ts     time.Duration
}

// startCPU begins measuring; serverPID may be 0 (no server in the load).
func startCPU(ctx context.Context, b *benchDB, serverPID int) *backendMeter {
	m := &backendMeter{b: b, done: make(chan struct{}), first: map[int]time.Duration{}, last: map[int]time.Duration{}, server: serverPID}
	if serverPID != 0 {
		m.ts, _ = procCPU(serverPID)
	}
	m.t0 = selfCPU()
	m.poll(ctx, true)
	pctx, cancel := context.WithCancel(ctx)
	m.stop = cancel
	go func() {
		defer close(m.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				m.poll(pctx, false)
			}
		}
	}()
	return m
}

func (m *backendMeter) poll(ctx context.Context, baseline bool) {
	rows, err := m.b.pool.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
	if err != nil {
		return
	}
	var pids []int
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			pids = append(pids, pid)
		}
	}
	rows.Close()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, pid := range pids {
		c, ok := procCPU(pid)
		if !ok {
			continue
		}
		if _, seen := m.first[pid]; !seen {
			if baseline {
				m.first[pid] = c
			} else {
				m.first[pid] = 0 // started during the load
			}
		}
		m.last[pid] = c
	}
}

// finish stops measuring and answers the split over ops operations;
// client is the load generator's CPU when it is another process (pgbench),
// else the bench process's own is used.
func (m *backendMeter) finish(ctx context.Context, ops int, client time.Duration) cpuSplit {
	m.poll(ctx, false)
	m.stop()
	<-m.done
	out := cpuSplit{Ops: ops, Client: client}
	if client == 0 {
		out.Client = selfCPU() - m.t0
	}
	if m.server != 0 {
		if c, ok := procCPU(m.server); ok {
			out.Server = c - m.ts
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for pid, c := range m.last {
		out.Postgres += c - m.first[pid]
	}
	return out
}

package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// cleanupDaysOld is the cleanup's cutoff. The cleanup dataset lays 9 of
// the workload's 30 days 39 to 31 days back (30% of the slots, older than
// the cutoff) and the other 21 from today on, where the reads that run
// during the cleanup find bookable slots.
const (
	cleanupDaysOld = 30
	cleanupOldDays = 9
)

func cleanupDays(d int) int {
	if d < cleanupOldDays {
		return d - (cleanupDaysOld + cleanupOldDays)
	}
	return d - cleanupOldDays
}

// cleanupFigure is cleanupSlots deleting the oldest 30% of the slots while
// reads go on.
type cleanupFigure struct {
	Slots, Deleted int
	Wall           time.Duration
	Reported       time.Duration
	LongestLock    time.Duration // longest DELETE transaction seen by sampling
	Samples        int
	Statements     int // distinct DELETE transactions seen
	ReadRate       int
	Before, During loadResult
}

// measureCleanup loads the dataset shifted into the past, measures reads at
// a fixed rate alone, then the same reads while cleanupSlots runs, sampling
// pg_stat_activity every millisecond for the longest-running DELETE (each
// batch is its own transaction, so that is the longest its row locks are
// held).
func measureCleanup(ctx context.Context, b *benchDB, s *server, o *options, ds *dataset) (cleanupFigure, error) {
	fig := cleanupFigure{Slots: ds.w.Slots(), ReadRate: o.cleanupReadRate}
	if err := b.emptySlots(ctx, false); err != nil {
		return fig, err
	}
	if _, _, err := copySlots(ctx, b, ds, cleanupDays); err != nil {
		return fig, err
	}
	if err := b.exec(ctx, "VACUUM ANALYZE time_slots"); err != nil {
		return fig, err
	}
	want := ds.w.Slots() * cleanupOldDays / ds.w.Days

	// Reads of the days that stay: eight one-week windows from today to
	// 20 days ahead.
	var wins []window
	for i := 0; i < 8; i++ {
		st := ds.today.AddDays(2 * i)
		wins = append(wins, window{Start: st, End: st.AddDays(6)})
	}
	reads := readsOf(graphqlRead, ds, wins)
	fig.Before = runLoad(ctx, s.base, reads, o.conns, o.cleanupReadRate, o.scalingDur)

	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var sampleErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		fig.LongestLock, fig.Samples, fig.Statements, sampleErr = sampleDeletes(sctx, b)
	}()
	readCtx, stopReads := context.WithCancel(ctx)
	readDone := make(chan loadResult, 1)
	go func() { readDone <- runLoad(readCtx, s.base, reads, o.conns, o.cleanupReadRate, 0) }()

	var out struct {
		CleanupSlots struct {
			Deleted    int `json:"deleted"`
			DurationMs int `json:"durationMs"`
		} `json:"cleanupSlots"`
	}
	start := time.Now()
	err := s.graphql(ctx, &http.Client{Timeout: 30 * time.Minute}, true,
		`mutation Cleanup($d: Int!) { cleanupSlots(input: {daysOld: $d}) { deleted durationMs } }`,
		map[string]any{"d": cleanupDaysOld}, &out)
	fig.Wall = time.Since(start)
	stopReads()
	fig.During = <-readDone
	stopSampling()
	wg.Wait()
	if err != nil {
		return fig, fmt.Errorf("cleanupSlots: %w", err)
	}
	fig.Deleted, fig.Reported = out.CleanupSlots.Deleted, time.Duration(out.CleanupSlots.DurationMs)*time.Millisecond
	if sampleErr != nil && ctx.Err() == nil {
		return fig, fmt.Errorf("sampling pg_stat_activity: %w", sampleErr)
	}
	if fig.Deleted != want {
		return fig, fmt.Errorf("cleanupSlots deleted %d slots, want %d (30%%)", fig.Deleted, want)
	}
	if left, err := b.count(ctx, "SELECT count(*) FROM time_slots WHERE end_time < now() - interval '30 days'"); err != nil || left != 0 {
		return fig, fmt.Errorf("%d slots older than the cutoff are left (%v)", left, err)
	}
	for _, l := range []loadResult{fig.Before, fig.During} {
		if l.Errors > 0 {
			return fig, fmt.Errorf("reads during cleanup: %d of %d failed; first: %s", l.Errors, l.Requests, l.FirstError)
		}
	}
	return fig, nil
}

// sampleDeletes polls pg_stat_activity until ctx ends and answers the
// longest time a cleanup DELETE transaction was seen open.
func sampleDeletes(ctx context.Context, b *benchDB) (longest time.Duration, samples, statements int, err error) {
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	defer conn.Release()
	seen := map[time.Time]bool{}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return longest, samples, len(seen), nil
		case <-tick.C:
		}
		rows, err := conn.Query(ctx, `SELECT xact_start, (extract(epoch FROM clock_timestamp() - xact_start) * 1e6)::bigint
			FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND xact_start IS NOT NULL
			AND query LIKE 'DELETE FROM "time_slots"%'`)
		if err != nil {
			if ctx.Err() != nil {
				return longest, samples, len(seen), nil
			}
			return longest, samples, len(seen), err
		}
		for rows.Next() {
			var xs time.Time
			var us int64
			if err := rows.Scan(&xs, &us); err != nil {
				rows.Close()
				return longest, samples, len(seen), err
			}
			seen[xs] = true
			longest = max(longest, time.Duration(us)*time.Microsecond)
		}
		rows.Close()
		samples++
	}
}

package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// The lag is read from WAL positions: a replica that has replayed all the
// primary had is 0 behind however old its last replayed commit is (an
// idle primary), and one that has not is as late as the oldest sample it
// has not reached.
func TestLagFromWALPositions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	r := &Replicas{samples: []walSample{
		{at: now.Add(-3 * time.Second), lsn: 100},
		{at: now.Add(-2 * time.Second), lsn: 100}, // idle: nothing written for a second
		{at: now.Add(-time.Second), lsn: 180},
		{at: now.Add(-250 * time.Millisecond), lsn: 200},
	}}
	for _, tc := range []struct {
		name     string
		replayed int64
		lag      time.Duration
		bytes    int64
	}{
		{"caught up with the latest sample", 200, 0, 0},
		{"ahead of the latest sample (it replayed what came after)", 210, 0, 0},
		{"behind the last sample only", 190, 250 * time.Millisecond, 10},
		{"behind what the primary wrote a second ago", 150, time.Second, 50},
		{"behind every sample kept", 50, 3 * time.Second, 150},
	} {
		lag, bytes := r.lagOf(tc.replayed, now)
		if lag != tc.lag || bytes != tc.bytes {
			t.Errorf("%s: lagOf(%d) = %s, %d bytes; want %s, %d", tc.name, tc.replayed, lag, bytes, tc.lag, tc.bytes)
		}
	}
}

// A read's failure on a replica is retried on the primary only when it is
// the replica's: it could not be reached, is going away or refuses
// connections (the replica is then skipped), or cancelled the statement
// for a conflict with replay (it stays in use). The statement's own
// failures and the caller's context are not retried.
func TestRetryOnThePrimaryOnlyForTheReplicasFailures(t *testing.T) {
	t.Parallel()
	pgErr := func(code string) error { return fmt.Errorf("list slots: %w", &pgconn.PgError{Code: code}) }
	for _, tc := range []struct {
		name         string
		err          error
		retry, skips bool
	}{
		{"admin shutdown", pgErr("57P01"), true, true},
		{"starting up", pgErr("57P03"), true, true},
		{"too many connections", pgErr("53300"), true, true},
		{"connection failure", pgErr("08006"), true, true},
		{"a broken connection", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true, true},
		{"conflict with recovery", pgErr("40001"), true, false},
		{"a statement's own error", pgErr("42P01"), false, false},
		{"the caller's deadline", context.DeadlineExceeded, false, false},
		{"the caller's cancel", fmt.Errorf("q: %w", context.Canceled), false, false},
		{"a missing row", errors.New("no such row"), false, false},
		{"a scan's failure", errors.New("can't scan into dest[0]"), false, false},
	} {
		rep := &Replica{name: "r"}
		rep.setState(ReplicaHealthy)
		r := &Replicas{list: []*Replica{rep}}
		if got := r.Retry(rep, tc.err); got != tc.retry {
			t.Errorf("%s: Retry = %v, want %v", tc.name, got, tc.retry)
		}
		if skipped := !rep.healthy(); skipped != tc.skips {
			t.Errorf("%s: replica skipped = %v, want %v", tc.name, skipped, tc.skips)
		}
		if r.Pick() == nil && !tc.skips {
			t.Errorf("%s: no replica picked after a failure that keeps it", tc.name)
		}
	}
}

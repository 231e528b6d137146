package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultReplicaMaxLag is how far behind the primary a replica may be and
// still serve reads (REPLICA_MAX_LAG).
const DefaultReplicaMaxLag = time.Second

// ReplicaState says whether a replica serves reads, and why not.
type ReplicaState string

// The states of a replica: only a healthy one serves reads.
const (
	ReplicaHealthy     ReplicaState = "healthy"
	ReplicaLagging     ReplicaState = "lagging"     // further behind the primary than the lag limit
	ReplicaUnreachable ReplicaState = "unreachable" // its check or a read failed to reach it
	ReplicaNotStandby  ReplicaState = "not_standby" // it answers, but is not in recovery (promoted, or not a replica)
)

// ReplicaStates lists every state, for metrics that report each.
var ReplicaStates = []ReplicaState{ReplicaHealthy, ReplicaLagging, ReplicaUnreachable, ReplicaNotStandby}

// ReplicaStatus is one replica as its last check and the reads saw it.
type ReplicaStatus struct {
	Name  string       // host:port/database, never the credentials
	State ReplicaState //
	// Lag is how long the oldest WAL the replica has not replayed has
	// been on the primary (0 when it has replayed all the primary had at
	// the check).
	Lag time.Duration
	// LagBytes is how much WAL it has still to replay.
	LagBytes int64
	// Reads counts the reads sent to it; Retried those of them that failed
	// to reach it and were answered by the primary.
	Reads, Retried uint64
}

// Replica is one read replica: its pool and its state.
type Replica struct {
	name  string
	pool  *sql.DB
	state atomic.Pointer[ReplicaState]
	lag   atomic.Int64 // nanoseconds
	bytes atomic.Int64
	reads atomic.Uint64
	retry atomic.Uint64
}

// Pool answers the replica's connection pool.
func (r *Replica) Pool() *sql.DB { return r.pool }

// Name answers host:port/database of the replica.
func (r *Replica) Name() string { return r.name }

func (r *Replica) setState(s ReplicaState) { r.state.Store(&s) }

func (r *Replica) healthy() bool { return *r.state.Load() == ReplicaHealthy }

// Replicas routes reads among the read replicas: round-robin among the
// healthy ones. A monitor checks each replica's lag against the primary's
// WAL position every interval; a replica further behind than the limit,
// or unreachable, is skipped until a check finds it caught up again.
type Replicas struct {
	primary *sql.DB
	list    []*Replica
	next    atomic.Uint64
	maxLag  time.Duration
	every   time.Duration

	// samples are the primary's recent WAL positions, oldest first; only
	// the monitor touches them.
	samples []walSample
	keep    int

	stop context.CancelFunc
	done chan struct{}
}

// walSample is the primary's WAL position at a moment.
type walSample struct {
	at  time.Time
	lsn int64
}

// checkInterval is how often the lag is checked: a quarter of the limit,
// so a replica is skipped soon after it falls behind, within bounds.
func checkInterval(maxLag time.Duration) time.Duration {
	return min(max(maxLag/4, 25*time.Millisecond), 250*time.Millisecond)
}

// openReplicas opens a pool per replica (none is connected yet: a replica
// down at start-up is only skipped), checks them once and starts the
// monitor.
func openReplicas(primary *sql.DB, targets []Target, pooled bool, statementTimeout, maxLag, idlePing time.Duration, size func(*sql.DB)) (*Replicas, error) {
	if maxLag <= 0 {
		maxLag = DefaultReplicaMaxLag
	}
	r := &Replicas{primary: primary, maxLag: maxLag, every: checkInterval(maxLag), done: make(chan struct{})}
	r.keep = int(4*maxLag/r.every) + 8
	seen := map[string]int{}
	for _, t := range targets {
		conf, err := pgConfig(t.DSN, pooled, statementTimeout)
		if err != nil {
			r.closePools()
			return nil, errors.New("DATABASE_REPLICA_URLS holds a URL that is not a valid postgres:// URL")
		}
		name := replicaName(t.DSN)
		if seen[name]++; seen[name] > 1 {
			name = fmt.Sprintf("%s#%d", name, seen[name])
		}
		rep := &Replica{name: name, pool: newLiveness(idlePing).openPool(*conf, nil)}
		size(rep.pool)
		rep.setState(ReplicaUnreachable)
		r.list = append(r.list, rep)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	r.check(ctx)
	go r.monitor(ctx)
	return r, nil
}

// replicaName is host:port/database of a URL, without its credentials.
func replicaName(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "replica"
	}
	return u.Host + u.Path
}

func (r *Replicas) monitor(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.check(ctx)
		}
	}
}

// check samples the primary's WAL position, then each replica's replay
// position, and sets each replica's lag and state. The lag is read from
// the positions, not from pg_last_xact_replay_timestamp(): that one grows
// while the primary writes nothing, so an idle primary would make a
// caught-up replica look late. A replica that has replayed all the primary
// had at the check is 0 behind; one that has not is as late as the oldest
// sample it has not reached.
func (r *Replicas) check(ctx context.Context) {
	// A check waits for a busy server (a new connection's start-up
	// included) far longer than it takes to be due again: a replica that
	// answers slowly is late, not gone, and one that is gone refuses
	// connections at once.
	timeout := max(4*r.every, 5*time.Second)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	var lsn int64
	err := r.primary.QueryRowContext(pctx, "SELECT (pg_current_wal_lsn() - '0/0')::bigint").Scan(&lsn)
	cancel()
	primaryKnown := err == nil
	if primaryKnown {
		r.samples = append(r.samples, walSample{at: time.Now(), lsn: lsn})
		if len(r.samples) > r.keep {
			r.samples = append(r.samples[:0], r.samples[len(r.samples)-r.keep:]...)
		}
	}
	var wg sync.WaitGroup
	for _, rep := range r.list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.checkOne(ctx, rep, timeout, primaryKnown)
		}()
	}
	wg.Wait()
}

func (r *Replicas) checkOne(ctx context.Context, rep *Replica, timeout time.Duration, primaryKnown bool) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var standby bool
	var replayed int64
	err := rep.pool.QueryRowContext(cctx,
		"SELECT pg_is_in_recovery(), (COALESCE(pg_last_wal_replay_lsn(), '0/0') - '0/0')::bigint").Scan(&standby, &replayed)
	switch {
	case ctx.Err() != nil:
		return
	case err != nil:
		rep.setState(ReplicaUnreachable)
		return
	case !standby:
		rep.setState(ReplicaNotStandby)
		return
	case !primaryKnown:
		// Without the primary's position the lag is unknown: the replica
		// keeps its state, except that it is reachable again.
		if *rep.state.Load() == ReplicaUnreachable {
			rep.setState(ReplicaLagging)
		}
		return
	}
	lag, behind := r.lagOf(replayed, time.Now())
	rep.lag.Store(int64(lag))
	rep.bytes.Store(behind)
	if lag > r.maxLag {
		rep.setState(ReplicaLagging)
	} else {
		rep.setState(ReplicaHealthy)
	}
}

// lagOf answers how late a replica that has replayed WAL up to replayed
// is at now, and how many bytes behind the latest sample it is.
func (r *Replicas) lagOf(replayed int64, now time.Time) (time.Duration, int64) {
	latest := r.samples[len(r.samples)-1]
	if replayed >= latest.lsn {
		return 0, 0
	}
	for _, s := range r.samples {
		if s.lsn > replayed {
			return now.Sub(s.at), latest.lsn - replayed
		}
	}
	return now.Sub(r.samples[0].at), latest.lsn - replayed
}

// Pick answers the next healthy replica in turn, or nil when none is
// healthy: the read then goes to the primary.
func (r *Replicas) Pick() *Replica {
	n := uint64(len(r.list))
	start := r.next.Add(1)
	for i := range n {
		if rep := r.list[(start+i)%n]; rep.healthy() {
			rep.reads.Add(1)
			return rep
		}
	}
	return nil
}

// Retry reports whether a read's failure on rep is the replica's, so that
// the primary should answer the read instead: the replica could not be
// reached, is shutting down or refuses connections (rep is then skipped
// until a check reaches it again), or cancelled the statement for a
// conflict with the WAL it replays. A failure of the statement itself, or
// of its context, is not retried.
func (r *Replicas) Retry(rep *Replica, err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case pg.Code == "40001": // canceling statement due to conflict with recovery
		case pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03", pg.Code == "53300", pg.Code == "53400",
			len(pg.Code) == 5 && pg.Code[:2] == "08":
			rep.setState(ReplicaUnreachable)
		default:
			return false
		}
		rep.retry.Add(1)
		return true
	}
	if !brokenConnection(err) {
		return false // a scan, a missing row: the read's own outcome
	}
	rep.setState(ReplicaUnreachable)
	rep.retry.Add(1)
	return true
}

// brokenConnection reports whether err says that no answer came from the
// server at all: the connection could not be opened, or broke.
func brokenConnection(err error) bool {
	var connect *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connect) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "conn closed")
}

// Status answers every replica as the checks and reads last saw it, in
// the order of DATABASE_REPLICA_URLS.
func (r *Replicas) Status() []ReplicaStatus {
	out := make([]ReplicaStatus, len(r.list))
	for i, rep := range r.list {
		out[i] = ReplicaStatus{
			Name: rep.name, State: *rep.state.Load(), Lag: time.Duration(rep.lag.Load()), LagBytes: rep.bytes.Load(),
			Reads: rep.reads.Load(), Retried: rep.retry.Load(),
		}
	}
	return out
}

// MaxLag answers the lag limit beyond which a replica is skipped.
func (r *Replicas) MaxLag() time.Duration { return r.maxLag }

func (r *Replicas) close() {
	r.stop()
	<-r.done
	r.closePools()
}

func (r *Replicas) closePools() {
	for _, rep := range r.list {
		_ = rep.pool.Close()
	}
}

// Package pgreplica runs PostgreSQL servers of a test's own on loopback,
// with the binaries of the test PostgreSQL (TEST_DATABASE_URL): a real
// streaming replica of the test PostgreSQL, for the tests of read routing
// (a pg_basebackup -R of the primary), and a standalone cluster (initdb)
// that a test may restart without disturbing anyone else's tests. Each
// runs on a free port and is stopped and removed when the test ends.
// PostgreSQL refuses to run as root, so as root each command runs as the
// postgres user. With REQUIRE_POSTGRES=1 a server that cannot be made
// fails the test; without it the test is skipped.
//
// The primary must accept replication connections from 127.0.0.1 as the
// URL's user (Debian's pg_hba.conf accepts them from no host; .ci/run adds
// the line) and have wal_level replica or logical and a free WAL sender.
package pgreplica

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"timeslots/internal/dbtest"
)

// server is a PostgreSQL server this package runs: its data directory
// and log under dir, listening on 127.0.0.1:Port and a socket in dir.
type server struct {
	Port    int
	dir     string
	bin     string
	stopped bool
}

// Replica is a running streaming replica.
type Replica struct {
	server
	primary string // the primary's admin URL
	slot    string // its replication slot on the primary
}

// slotPrefix starts the names of the replicas' slots: then the test
// process's pid.
const slotPrefix = "ts_replica_"

// dropOrphanSlots drops the inactive replication slots of test processes
// that no longer run, which would keep the primary's WAL for ever.
func dropOrphanSlots(ctx context.Context, admin string) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT slot_name FROM pg_replication_slots WHERE NOT active AND slot_name LIKE $1", slotPrefix+"%")
	if err != nil {
		return
	}
	names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, name := range names {
		pid, _, _ := strings.Cut(strings.TrimPrefix(name, slotPrefix), "_")
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue // its process still runs: its replica may be starting
		}
		_, _ = conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", name)
	}
}

// dropSlot drops the replica's slot on the primary once it is stopped (a
// slot that pg_basebackup did not make is no error).
func (r *Replica) dropSlot(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, r.primary)
	if err != nil {
		t.Errorf("drop replication slot %s: %v", r.slot, err)
		return
	}
	defer conn.Close(ctx)
	// The slot is active until the primary's WAL sender notices the
	// replica is gone.
	for {
		_, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", r.slot)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("drop replication slot %s: %v", r.slot, err)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Start makes a replica of the primary behind TEST_DATABASE_URL and waits
// until it accepts connections.
func Start(t testing.TB) *Replica {
	t.Helper()
	admin := dbtest.PostgresURL(t)
	fail := t.Skipf
	if os.Getenv("REQUIRE_POSTGRES") == "1" {
		fail = t.Fatalf
	}
	ctx := context.Background()
	settings := primarySettings(t, fail, admin, "server_version_num", "max_connections", "max_worker_processes", "max_wal_senders",
		"max_prepared_transactions", "max_locks_per_transaction")
	u, err := url.Parse(admin)
	if err != nil {
		fail("TEST_DATABASE_URL: %v", err)
	}
	r := &Replica{primary: admin}
	r.init(t, fail, settings["server_version_num"], "pgreplica-", func() {
		if r.slot != "" {
			r.dropSlot(t)
		}
	})
	data := filepath.Join(r.dir, "data")
	userName := u.User.Username()
	if userName == "" {
		userName = "postgres"
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	// A physical replication slot keeps the primary's WAL until the
	// replica has it: without one, a busy primary can recycle the segment
	// the replica needs between the backup and its start. Slots left by
	// test processes that are gone are dropped first.
	dropOrphanSlots(ctx, admin)
	r.slot = fmt.Sprintf("%s%d_%d", slotPrefix, os.Getpid(), time.Now().UnixNano())
	if out, err := r.command("pg_basebackup", "-R", "-X", "stream", "-c", "fast", "-C", "-S", r.slot, "-D", data,
		"-h", u.Hostname(), "-p", port, "-U", userName).CombinedOutput(); err != nil {
		fail("pg_basebackup of the primary (does its pg_hba.conf accept replication from %s?): %v\n%s", u.Hostname(), err, out)
	}
	// Debian keeps the configuration out of the data directory; a hot
	// standby needs at least the primary's limits.
	conf := fmt.Sprintf(`hot_standby = on
hot_standby_feedback = on
max_connections = %s
max_worker_processes = %s
max_wal_senders = %s
max_prepared_transactions = %s
max_locks_per_transaction = %s
shared_buffers = 16MB
fsync = off
synchronous_commit = off
wal_receiver_status_interval = 1s
logging_collector = off
`, settings["max_connections"], settings["max_worker_processes"], settings["max_wal_senders"],
		settings["max_prepared_transactions"], settings["max_locks_per_transaction"])
	r.configure(fail, conf)
	r.start(fail, "start")
	return r
}

// primarySettings reads settings of the PostgreSQL at admin.
func primarySettings(t testing.TB, fail func(string, ...any), admin string, names ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		fail("connect to the primary: %v", err)
	}
	defer conn.Close(ctx)
	settings := map[string]string{}
	for _, name := range names {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			fail("read %s of the primary: %v", name, err)
		}
		settings[name] = v
	}
	return settings
}

// init makes the directory of a server run with the binaries of
// PostgreSQL versionNum (server_version_num), and has the test stop the
// server, call cleanup and remove the directory when it ends.
func (s *server) init(t testing.TB, fail func(string, ...any), versionNum, prefix string, cleanup func()) {
	t.Helper()
	major, _ := strconv.Atoi(versionNum)
	bin := fmt.Sprintf("/usr/lib/postgresql/%d/bin", major/10000)
	if _, err := os.Stat(filepath.Join(bin, "pg_ctl")); err != nil {
		fail("PostgreSQL %d's binaries are not in %s: %v", major/10000, bin, err)
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		fail("temp dir: %v", err)
	}
	s.dir, s.bin = dir, bin
	t.Cleanup(func() {
		s.stop(t)
		cleanup()
		_ = os.RemoveAll(dir)
	})
	if err := own(dir); err != nil {
		fail("hand %s to postgres: %v", dir, err)
	}
}

// configure writes the server's postgresql.conf (conf) and a pg_hba.conf
// that trusts local and loopback connections.
func (s *server) configure(fail func(string, ...any), conf string) {
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\n"
	for name, text := range map[string]string{"postgresql.conf": conf, "pg_hba.conf": hba} {
		path := filepath.Join(s.dir, "data", name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			fail("write %s: %v", path, err)
		}
		if err := own(path); err != nil {
			fail("hand %s to postgres: %v", path, err)
		}
	}
}

// start runs pg_ctl's action (start, or restart -m fast) and waits until
// the server accepts connections; the first start takes a free port.
func (s *server) start(fail func(string, ...any), action string) {
	if s.Port == 0 {
		s.Port = freePort(fail)
	}
	data := filepath.Join(s.dir, "data")
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s", s.Port, s.dir)
	args := []string{"-D", data, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "-o", opts}
	if action == "restart" {
		args = append(args, "-m", "fast")
	}
	if out, err := s.command("pg_ctl", append(args, action)...).CombinedOutput(); err != nil {
		logText, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		fail("%s PostgreSQL on port %d: %v\n%s\n%s", action, s.Port, err, out, logText)
	}
	s.stopped = false
}

// command runs a PostgreSQL binary, as the postgres user when this
// process is root.
func (s *server) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// own hands path to the postgres user when this process is root (the
// data directory must belong to the server's user, mode 0700).
func own(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	return os.Chown(path, uid, gid)
}

// freePort answers a loopback port that nothing listens on now.
func freePort(fail func(string, ...any)) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// URL answers the replica's URL of the database that a primary URL names
// (dbtest.URL's), as the primary's user.
func (r *Replica) URL(t testing.TB, primaryURL string) string {
	t.Helper()
	u, err := url.Parse(primaryURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = "127.0.0.1:" + strconv.Itoa(r.Port)
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// CatchUp waits until the replica has replayed everything the primary has
// written so far (a test's database created and migrated there included).
func (r *Replica) CatchUp(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := pgx.Connect(ctx, r.primary)
	if err != nil {
		t.Fatalf("connect to the primary: %v", err)
	}
	defer p.Close(ctx)
	var lsn string
	if err := p.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		t.Fatalf("primary's WAL position: %v", err)
	}
	c := r.admin(t, ctx)
	defer c.Close(ctx)
	for {
		var done bool
		if err := c.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&done); err != nil {
			t.Fatalf("replica's replay position: %v", err)
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the replica did not replay up to %s within a minute: %s", lsn, r.diagnosis())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// diagnosis describes the replica's replay and its log's last lines.
func (r *Replica) diagnosis() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var state string
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", r.Port))
	if err == nil {
		err = c.QueryRow(ctx, `SELECT format('replayed %s, received %s, paused %s, receiver %s', pg_last_wal_replay_lsn(),
			pg_last_wal_receive_lsn(), pg_is_wal_replay_paused(), (SELECT status FROM pg_stat_wal_receiver))`).Scan(&state)
		c.Close(ctx)
	}
	if err != nil {
		state = err.Error()
	}
	log, _ := os.ReadFile(filepath.Join(r.dir, "log"))
	if len(log) > 4000 {
		log = log[len(log)-4000:]
	}
	return state + "\n" + string(log)
}

// admin connects to the replica's postgres database.
func (r *Replica) admin(t testing.TB, ctx context.Context) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", r.Port))
	if err != nil {
		t.Fatalf("connect to the replica: %v", err)
	}
	return c
}

// exec runs one statement on the replica's postgres database.
func (r *Replica) exec(t testing.TB, sql string) {
	t.Helper()
	ctx := context.Background()
	c := r.admin(t, ctx)
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		t.Fatalf("%s on the replica: %v", sql, err)
	}
}

// Pause stops the replica replaying WAL: it falls behind the primary's
// writes from now on.
func (r *Replica) Pause(t testing.TB) { r.exec(t, "SELECT pg_wal_replay_pause()") }

// Resume lets the replica replay WAL again.
func (r *Replica) Resume(t testing.TB) { r.exec(t, "SELECT pg_wal_replay_resume()") }

// Stop shuts the replica down (fast: open sessions are ended); stopping
// a stopped replica does nothing.
func (r *Replica) Stop(t testing.TB) { r.stop(t) }

// stop shuts the server down (fast: open sessions are ended); stopping a
// stopped server does nothing.
func (s *server) stop(t testing.TB) {
	t.Helper()
	if s.stopped {
		return
	}
	data := filepath.Join(s.dir, "data")
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err != nil {
		s.stopped = true
		return
	}
	if out, err := s.command("pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput(); err != nil {
		t.Errorf("stop PostgreSQL on port %d: %v\n%s", s.Port, err, strings.TrimSpace(string(out)))
	}
	s.stopped = true
}

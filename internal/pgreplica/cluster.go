package pgreplica

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"timeslots/internal/dbtest"
)

// Cluster is a standalone PostgreSQL server of one test's own: a test may
// restart it under running servers, which it must never do to the shared
// test PostgreSQL.
type Cluster struct {
	server
}

// StartCluster makes a new cluster (initdb) with the binaries of the
// PostgreSQL behind TEST_DATABASE_URL and waits until it accepts
// connections. Durability is off (fsync, synchronous_commit): a test's
// data need not survive a crash, and the cluster starts in about a second.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("REQUIRE_POSTGRES") == "1" {
		fail = t.Fatalf
	}
	settings := primarySettings(t, fail, dbtest.PostgresURL(t), "server_version_num")
	c := &Cluster{}
	c.init(t, fail, settings["server_version_num"], "pgcluster-", func() {})
	data := filepath.Join(c.dir, "data")
	if out, err := c.command("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
		"--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		fail("initdb: %v\n%s", err, out)
	}
	c.configure(fail, `max_connections = 100
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
`)
	c.start(fail, "start")
	return c
}

// URL answers the URL of the cluster's postgres database, as the
// postgres superuser.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
}

// Restart restarts the cluster as an operator would (pg_ctl restart -m
// fast: every session is ended, the server shuts down and starts again
// on the same port) and returns once it accepts connections again.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.start(t.Fatalf, "restart")
}

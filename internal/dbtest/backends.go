package dbtest

import (
	"database/sql"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// UseConnections lends n connections of pool at once, runs a statement
// on each (all must succeed) and gives them back: afterwards the pool
// holds n connections that it has lent before.
func UseConnections(t testing.TB, pool *sql.DB, n int) {
	t.Helper()
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := range n {
		c, err := pool.Conn(t.Context())
		if err != nil {
			t.Fatalf("connection %d of %d: %v", i+1, n, err)
		}
		conns = append(conns, c)
		var one int
		if err := c.QueryRowContext(t.Context(), "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("statement on connection %d of %d: %v", i+1, n, err)
		}
	}
}

// TerminateBackends ends every backend of the database at direct (a
// direct PostgreSQL URL) but its own, as a PostgreSQL restart does, and
// waits until they are gone; at least min must have been running.
func TerminateBackends(t testing.TB, direct string, min int) {
	t.Helper()
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	const others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
	var killed int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) "+others+") AS t").Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed < min {
		t.Fatalf("terminated %d backends, want at least %d", killed, min)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		var left int
		if err := admin.QueryRow(ctx, "SELECT count(*) "+others).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends still run 30 s after they were terminated", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

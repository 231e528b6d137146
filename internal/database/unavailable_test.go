package database_test

import (
	"context"
	"crypto/rand"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// IsUnavailable tells a database that cannot serve now (refused or broken
// connections, a terminated backend, a role over its connection limit)
// from the request's own faults, each raised for real by PostgreSQL.
func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t, database.Postgres)

	// Nothing listens on the port: the connection cannot be opened.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if _, err := pgx.Connect(ctx, "postgres://postgres@"+closed+"/x?sslmode=disable&connect_timeout=5"); !database.IsUnavailable(err) {
		t.Errorf("a refused connection: %v is not unavailable", err)
	}

	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	// A role over its connection limit: 53300.
	role := "ts_cap_" + strings.ToLower(rand.Text())
	if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN CONNECTION LIMIT 0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	capped, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	capped.User = role
	if _, err := pgx.ConnectConfig(ctx, capped); !database.IsUnavailable(err) {
		t.Errorf("a role over its connection limit: %v is not unavailable", err)
	}

	// A backend terminated by an administrator: 57P01.
	victim, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", victim.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	if _, err := victim.Exec(ctx, "SELECT 1"); !database.IsUnavailable(err) {
		t.Errorf("a terminated backend: %v is not unavailable", err)
	}

	// The request's own faults are not.
	for _, stmt := range []string{"SELEC 1", "SELECT 1/0", "SELECT 'a\x01'::int"} {
		if _, err := admin.Exec(ctx, stmt); err == nil || database.IsUnavailable(err) {
			t.Errorf("%q: %v, want an error that is not unavailable", stmt, err)
		}
	}
	if database.IsUnavailable(nil) || database.IsUnavailable(context.Canceled) {
		t.Error("nil or a cancelled context is unavailable")
	}
}

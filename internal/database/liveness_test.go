package database_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// poolSize is the pool of the liveness tests: every connection is used,
// then all are killed at once.
const poolSize = 4

// openLivePool opens the test database with poolSize connections, each
// lent twice (pgx pings a connection the first time it is lent again),
// that pgx never pings for being idle (an hour): only liveness decides
// whether a dead one is found before a statement is sent on it. It also
// answers the database's direct URL.
func openLivePool(t *testing.T) (*database.DB, string) {
	t.Helper()
	target := dbtest.Target(t, database.Postgres)
	db, err := database.Open(t.Context(), target, database.Options{MaxOpenConns: poolSize, IdlePing: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	dbtest.UseConnections(t, db.SQL(), poolSize)
	dbtest.UseConnections(t, db.SQL(), poolSize)
	return db, target.SessionDSN()
}

// Once told that the database went away (as the change feed's listener
// tells it), the pool pings each connection before lending it again: no
// statement is sent on a dead one, however recently it was used.
func TestCheckConnectionsSparesEveryStatement(t *testing.T) {
	t.Parallel()
	db, direct := openLivePool(t)
	dbtest.TerminateBackends(t, direct, poolSize)
	db.CheckConnections()
	dbtest.UseConnections(t, db.SQL(), poolSize)
}

// Untold, the first statement sent on a dead connection fails with a lost
// connection; the pool then checks the others, so the statements after it
// all succeed.
func TestADeadConnectionMakesThePoolCheckTheOthers(t *testing.T) {
	t.Parallel()
	db, direct := openLivePool(t)
	dbtest.TerminateBackends(t, direct, poolSize)
	var n int
	err := db.SQL().QueryRowContext(t.Context(), "SELECT 1").Scan(&n)
	if !database.IsConnectionLost(err) || !database.IsUnavailable(err) {
		t.Fatalf("the first statement on a dead connection: %v, want a lost connection", err)
	}
	dbtest.UseConnections(t, db.SQL(), poolSize)
}

func TestIsConnectionLost(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"a backend terminated by an administrator", &pgconn.PgError{Code: "57P01"}, true},
		{"a backend ended by a crash of another", fmt.Errorf("read: %w", &pgconn.PgError{Code: "57P02"}), true},
		{"a connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"a socket closed under the statement", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"a server that is starting", &pgconn.PgError{Code: "57P03"}, false},
		{"a syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"a missing row", sql.ErrNoRows, false},
		{"the request's deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), false},
		{"a cancelled request", context.Canceled, false},
		{"no error", nil, false},
		{"another error", errors.New("scan: wrong type"), false},
	}
	for _, c := range cases {
		if got := database.IsConnectionLost(c.err); got != c.want {
			t.Errorf("%s: IsConnectionLost = %v, want %v", c.name, got, c.want)
		}
	}
	// A connection that cannot be opened is not lost: nothing to retry on.
	_, err := pgx.Connect(t.Context(), "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=5")
	if err == nil || database.IsConnectionLost(err) {
		t.Errorf("a refused connection: %v, want an error that is not a lost connection", err)
	}
}

package database_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// The server's per-request deadline also lives in PostgreSQL itself: every
// connection of the pool has statement_timeout set, so a runaway statement
// is cancelled by the database (SQLSTATE 57014) even without a context.
func TestStatementTimeoutIsSetOnEveryConnection(t *testing.T) {
	t.Parallel()
	target := dbtest.Target(t, database.Postgres)
	db, err := database.Open(context.Background(), target, database.Options{MaxOpenConns: 3, StatementTimeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	var setting string
	if err := db.Raw("SHOW statement_timeout").Scan(&setting).Error; err != nil || setting != "150ms" {
		t.Fatalf("statement_timeout = %q (%v), want 150ms", setting, err)
	}
	err = db.Exec("SELECT pg_sleep(5)").Error
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || pg.Code != "57014" {
		t.Fatalf("a 5 s statement under a 150 ms timeout: %v, want SQLSTATE 57014", err)
	}

	// A timeout written in DATABASE_URL wins.
	explicit := target
	explicit.DSN += map[bool]string{true: "&", false: "?"}[strings.Contains(target.DSN, "?")] + "statement_timeout=2500"
	db2, err := database.Open(context.Background(), explicit, database.Options{MaxOpenConns: 1, StatementTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db2.Close() })
	if err := db2.Raw("SHOW statement_timeout").Scan(&setting).Error; err != nil || setting != "2500ms" {
		t.Fatalf("statement_timeout = %q (%v), want the URL's 2500ms", setting, err)
	}
}

// A request's context deadline reaches the database on both dialects: the
// statement is interrupted when the context ends.
func TestContextDeadlineStopsAStatement(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		slow := "SELECT pg_sleep(5)"
		if db.Dialect == database.SQLite {
			// A recursive count that takes many seconds on SQLite.
			slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := db.WithContext(ctx).Exec(slow).Error
		if err == nil {
			t.Fatal("the statement outlived its context")
		}
		if ctx.Err() == nil {
			t.Fatalf("the statement failed before its deadline: %v", err)
		}
	})
}

// Migrations are not requests: a statement_timeout shorter than any
// migration's statements (here 1 ms) leaves them alone, while the pool's
// connections still carry it.
func TestMigrationsOutlastTheStatementTimeout(t *testing.T) {
	t.Parallel()
	target := dbtest.Target(t, database.Postgres)
	db, err := database.Open(context.Background(), target, database.Options{MaxOpenConns: 3, StatementTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if n, err := db.Migrate(t.Context()); err != nil || n == 0 {
		t.Fatalf("migrate under a 1 ms statement_timeout: %d applied (%v)", n, err)
	}
	if n, err := db.Migrate(t.Context()); err != nil || n != 0 {
		t.Fatalf("migrate again: %d applied (%v), want none", n, err)
	}
	// SHOW itself runs under the 1 ms limit and a busy machine can cancel
	// it; a cancelled SHOW is retried, anything else is a failure.
	var setting string
	for attempt := 0; ; attempt++ {
		err = db.Raw("SHOW statement_timeout").Scan(&setting).Error
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.Code == "57014" && attempt < 50 {
			continue
		}
		break
	}
	if err != nil || setting != "1ms" {
		t.Fatalf("the pool's statement_timeout = %q (%v), want 1ms", setting, err)
	}
}

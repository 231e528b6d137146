// Package dbtest gives each test a fresh, migrated, real database: a temp
// SQLite file, and on PostgreSQL (TEST_DATABASE_URL) a new randomly named
// database dropped when the test ends. The same test runs on both through
// Each. With REQUIRE_POSTGRES=1 a missing PostgreSQL fails the test instead
// of skipping it.
//
// With TEST_DATABASE_DIRECT_URL set, TEST_DATABASE_URL is a pooler in
// transaction mode (PgBouncer) in front of that PostgreSQL: databases are
// created and dropped on the direct URL, and each test's store connects
// through the pooler, with the direct URL for its migrations, as a server
// given DATABASE_URL and DATABASE_DIRECT_URL does.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"timeslots/internal/database"
)

// Dialects answers the dialects this run covers: both, or PostgreSQL
// alone in a run through a pooler (TEST_DATABASE_DIRECT_URL), which
// repeats only what the pooler can change.
func Dialects() []database.Dialect {
	if os.Getenv("TEST_DATABASE_DIRECT_URL") != "" {
		return []database.Dialect{database.Postgres}
	}
	return []database.Dialect{database.SQLite, database.Postgres}
}

// Each runs fn as one subtest per dialect, each with a fresh database.
func Each(t *testing.T, fn func(t *testing.T, db *database.DB)) {
	t.Helper()
	for _, d := range Dialects() {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}

// Open answers a fresh migrated database of dialect d for t.
func Open(t testing.TB, d database.Dialect) *database.DB {
	t.Helper()
	target := Target(t, d)
	db, err := database.Open(context.Background(), target, database.Options{MaxOpenConns: 16})
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", d, err)
	}
	return db
}

// URL answers a DATABASE_URL for a fresh, empty (unmigrated) database of
// dialect d, for tests that start the whole server.
func URL(t testing.TB, d database.Dialect) string {
	t.Helper()
	if d == database.SQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
	}
	pooled := PostgresURL(t)
	admin := directAdminURL(pooled)
	name := "ts_test_" + randomHex(8)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to TEST_DATABASE_URL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(pooled)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// directAdminURL answers TEST_DATABASE_DIRECT_URL when set, else pooled.
func directAdminURL(pooled string) string {
	if d := os.Getenv("TEST_DATABASE_DIRECT_URL"); d != "" {
		return d
	}
	return pooled
}

// DirectURL answers the direct URL of the database a URL of URL's names:
// the same database on TEST_DATABASE_DIRECT_URL's server, or raw itself
// when the tests run without a pooler.
func DirectURL(t testing.TB, raw string) string {
	t.Helper()
	direct := os.Getenv("TEST_DATABASE_DIRECT_URL")
	if direct == "" || !strings.HasPrefix(raw, "postgres") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("database URL: %v", err)
	}
	d, err := url.Parse(direct)
	if err != nil {
		t.Fatalf("TEST_DATABASE_DIRECT_URL: %v", err)
	}
	d.Path = u.Path
	return d.String()
}

// Target answers the parsed URL of a fresh database of dialect d.
func Target(t testing.TB, d database.Dialect) database.Target {
	t.Helper()
	raw := URL(t, d)
	target, err := database.ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	if d == database.Postgres {
		if target, err = target.WithDirect(DirectURL(t, raw)); err != nil {
			t.Fatal(err)
		}
	}
	return target
}

// PostgresURL answers TEST_DATABASE_URL, skipping the test when it is unset
// (failing it when REQUIRE_POSTGRES=1).
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TEST_DATABASE_URL")
	if u == "" {
		if os.Getenv("REQUIRE_POSTGRES") == "1" {
			t.Fatal("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
		}
		t.Skip("PostgreSQL suite skipped: set TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run it")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		if os.Getenv("REQUIRE_POSTGRES") == "1" {
			t.Fatalf("REQUIRE_POSTGRES=1 but PostgreSQL is unreachable: %v", err)
		}
		t.Skipf("PostgreSQL suite skipped: TEST_DATABASE_URL unreachable: %v", err)
	}
	conn.Close(ctx)
	return u
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

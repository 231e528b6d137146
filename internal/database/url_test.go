package database_test

import (
	"strings"
	"testing"

	"timeslots/internal/database"
)

// DATABASE_URL: empty is the default SQLite file, sqlite:PATH a given
// file, postgres:// or postgresql:// PostgreSQL as written; anything else
// is refused with one line naming the variable and never quoting it.
func TestParseURL(t *testing.T) {
	t.Parallel()
	const pg = "postgres://app:pa55w0rd@db.internal:5432/timeslots?sslmode=require"
	for _, tc := range []struct {
		name, raw string
		dialect   database.Dialect
		path, dsn string // path for SQLite, the DSN for PostgreSQL
	}{
		{"empty means the default SQLite file", "", database.SQLite, "./data/timeslots.db", ""},
		{"blank means the default SQLite file", "  ", database.SQLite, "./data/timeslots.db", ""},
		{"sqlite:PATH is that file", "sqlite:/var/lib/timeslots.db", database.SQLite, "/var/lib/timeslots.db", ""},
		{"sqlite://PATH is that file too", "sqlite://./x/y.db", database.SQLite, "./x/y.db", ""},
		{"a query after the SQLite path is not part of it", "sqlite:./x.db?mode=rwc", database.SQLite, "./x.db", ""},
		{"postgres:// is PostgreSQL as written", pg, database.Postgres, "", pg},
		{"postgresql:// too", "postgresql://localhost/timeslots", database.Postgres, "", "postgresql://localhost/timeslots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := database.ParseURL(tc.raw)
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tc.raw, err)
			}
			if got.Dialect != tc.dialect || got.Path != tc.path || (tc.dsn != "" && got.DSN != tc.dsn) {
				t.Errorf("ParseURL(%q) = %+v, want %s at %q %q", tc.raw, got, tc.dialect, tc.path, tc.dsn)
			}
			if tc.dialect == database.SQLite && !strings.HasPrefix(got.DSN, "file:"+tc.path+"?") {
				t.Errorf("SQLite DSN %q, want file:%s with the pragmas", got.DSN, tc.path)
			}
		})
	}
	for _, raw := range []string{
		"mysql://app:pa55w0rd@db/timeslots",
		"postgres://app:pa55w0rd@db:port/%zz",
		"sqlite:",
		"sqlite://",
		"./data/timeslots.db",
	} {
		_, err := database.ParseURL(raw)
		if err == nil {
			t.Errorf("ParseURL(%q) accepted, want an error", raw)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "DATABASE_URL ") || strings.Contains(msg, "\n") || strings.Contains(msg, "pa55w0rd") {
			t.Errorf("ParseURL(%q): error %q, want one line naming DATABASE_URL without the password", raw, msg)
		}
	}
}

// DATABASE_DIRECT_URL and DATABASE_REPLICA_URLS: postgres:// URLs beside a
// postgres:// DATABASE_URL; a target is pooled only when its direct URL
// differs from it. Refusals name the variable and never quote the URL.
func TestDirectAndReplicaURLs(t *testing.T) {
	t.Parallel()
	const secret = "pa55w0rd"
	pg, err := database.ParseURL("postgres://app:" + secret + "@pooler:6432/ts")
	if err != nil {
		t.Fatal(err)
	}
	if same, err := pg.WithDirect(""); err != nil || same.Pooled() {
		t.Errorf("no DATABASE_DIRECT_URL: %+v %v, want a direct target", same, err)
	}
	if same, err := pg.WithDirect(pg.DSN); err != nil || same.Pooled() {
		t.Errorf("DATABASE_DIRECT_URL = DATABASE_URL: %+v %v, want a direct target", same, err)
	}
	pooled, err := pg.WithDirect("postgres://app:" + secret + "@db:5432/ts")
	if err != nil || !pooled.Pooled() || pooled.DSN != pg.DSN {
		t.Errorf("a direct URL of its own: %+v %v, want a pooled target", pooled, err)
	}
	lite, _ := database.ParseURL("sqlite:./x.db")
	reps, err := database.ParseReplicaURLs(pg, []string{"postgres://r1/ts", "postgresql://r2/ts"})
	if err != nil || len(reps) != 2 || reps[1].DSN != "postgresql://r2/ts" {
		t.Errorf("ParseReplicaURLs = %+v %v", reps, err)
	}
	for _, tc := range []struct {
		name, want string
		err        func() error
	}{
		{"a direct URL beside SQLite", "DATABASE_DIRECT_URL", func() error { _, err := lite.WithDirect("postgres://db/ts"); return err }},
		{"a direct URL that is not postgres://", "DATABASE_DIRECT_URL", func() error { _, err := pg.WithDirect("mysql://" + secret + "@db"); return err }},
		{"a direct URL that does not parse", "DATABASE_DIRECT_URL", func() error { _, err := pg.WithDirect("postgres://" + secret + "@db:port/ts"); return err }},
		{"replicas beside SQLite", "DATABASE_REPLICA_URLS", func() error { _, err := database.ParseReplicaURLs(lite, []string{"postgres://r1/ts"}); return err }},
		{"a replica URL that is not postgres://", "DATABASE_REPLICA_URLS", func() error {
			_, err := database.ParseReplicaURLs(pg, []string{"postgres://r1/ts", "r2:" + secret})
			return err
		}},
	} {
		err := tc.err()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: %v, want a refusal naming %s without the URL", tc.name, err, tc.want)
		}
	}
}

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

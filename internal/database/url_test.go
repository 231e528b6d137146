package database_test

import (
	"strings"
	"testing"

	"timeslots/internal/database"
)

func TestParseURLWithoutAURLMeansTheDefaultSQLiteFile(t *testing.T) {
	t.Parallel()
	target, err := database.ParseURL("")
	if err != nil || target.Dialect != database.SQLite || target.Path != "./data/timeslots.db" {
		t.Fatalf("ParseURL(\"\") = %+v, %v; want SQLite at ./data/timeslots.db", target, err)
	}
}

func TestParseURLNamesTheDialectAndTheFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		url     string
		dialect database.Dialect
		path    string // the SQLite file; "" for PostgreSQL
	}{
		{"blanks alone mean the default file", "  ", database.SQLite, database.DefaultSQLitePath},
		{"postgres:// is PostgreSQL, passed to the driver as written", "postgres://u@db:5432/ts?sslmode=disable", database.Postgres, ""},
		{"postgresql:// is PostgreSQL too", "postgresql://u@db/ts", database.Postgres, ""},
		{"sqlite: names a relative file", "sqlite:./data/x.db", database.SQLite, "./data/x.db"},
		{"sqlite:// with a third slash names an absolute file", "sqlite:///var/lib/ts.db", database.SQLite, "/var/lib/ts.db"},
		{"a query after the file is not part of its name", "sqlite:x.db?mode=ro", database.SQLite, "x.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, err := database.ParseURL(tc.url)
			if err != nil || target.Dialect != tc.dialect || target.Path != tc.path {
				t.Fatalf("ParseURL(%q) = %+v, %v; want %s at %q", tc.url, target, err, tc.dialect, tc.path)
			}
			if tc.dialect == database.Postgres && target.DSN != strings.TrimSpace(tc.url) {
				t.Errorf("DSN %q, want the URL as written", target.DSN)
			}
			if tc.dialect == database.SQLite && !strings.HasPrefix(target.DSN, "file:"+tc.path+"?") {
				t.Errorf("DSN %q, want file:%s with the pragmas", target.DSN, tc.path)
			}
		})
	}
}

func TestParseURLRefusesWhatItCannotOpen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url string
	}{
		{"another database's scheme", "mysql://u@db/ts"},
		{"sqlite: without a file", "sqlite:"},
		{"sqlite:// without a file", "sqlite://"},
		{"a bare path", "./data/timeslots.db"},
		{"a postgres URL that does not parse", "postgres://u@db:port/ts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, err := database.ParseURL(tc.url)
			if err == nil {
				t.Fatalf("ParseURL(%q) = %+v; want an error", tc.url, target)
			}
			if !strings.HasPrefix(err.Error(), "DATABASE_URL ") {
				t.Errorf("error %q does not name DATABASE_URL", err)
			}
		})
	}
}

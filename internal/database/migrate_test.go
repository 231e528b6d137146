package database_test

import (
	"context"
	"io/fs"
	"sync"
	"testing"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/migrations"
)

// migrationCount answers how many migration files the dialect embeds.
func migrationCount(t *testing.T, d database.Dialect) int {
	t.Helper()
	files, err := fs.Glob(migrations.FS, string(d)+"/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s migrations embedded (%v)", d, err)
	}
	return len(files)
}

// openFresh opens a fresh, unmigrated database of dialect d.
func openFresh(t *testing.T, d database.Dialect, target database.Target) *database.DB {
	t.Helper()
	db, err := database.Open(context.Background(), target, database.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatalf("open %s: %v", d, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestMigrateAppliesEveryMigrationOnceAndASecondRunIsANoOp(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := openFresh(t, d, dbtest.Target(t, d))
			want := migrationCount(t, d)

			pending, err := db.Pending(ctx)
			if err != nil || !pending {
				t.Fatalf("fresh database: Pending = %v, %v; want true, nil", pending, err)
			}
			n, err := db.Migrate(ctx)
			if err != nil || n != want {
				t.Fatalf("first Migrate = %d, %v; want %d, nil", n, err, want)
			}
			n, err = db.Migrate(ctx)
			if err != nil || n != 0 {
				t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
			}
			pending, err = db.Pending(ctx)
			if err != nil || pending {
				t.Fatalf("migrated database: Pending = %v, %v; want false, nil", pending, err)
			}
			if got := appliedVersions(t, db); got != int64(want) {
				t.Fatalf("goose_db_version records %d applied migrations, want %d", got, want)
			}
		})
	}
}

func TestStartersMigratingOneFreshDatabaseTogetherApplyTheSchemaOnce(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			target := dbtest.Target(t, d)
			want := migrationCount(t, d)
			// Each starter has its own pool, as separate processes would:
			// separate PostgreSQL sessions, separate lock-file descriptors.
			const starters = 4
			dbs := make([]*database.DB, starters)
			for i := range dbs {
				dbs[i] = openFresh(t, d, target)
			}
			applied := make([]int, starters)
			errs := make([]error, starters)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range dbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					applied[i], errs[i] = dbs[i].Migrate(context.Background())
				}()
			}
			close(start)
			wg.Wait()
			total := 0
			for i := range dbs {
				if errs[i] != nil {
					t.Errorf("starter %d: Migrate: %v", i, errs[i])
				}
				total += applied[i]
			}
			if total != want {
				t.Fatalf("starters applied %v migrations in all (sum %d), want %d: the schema must be applied exactly once", applied, total, want)
			}
			if got := appliedVersions(t, dbs[0]); got != int64(want) {
				t.Fatalf("goose_db_version records %d applied migrations, want %d", got, want)
			}
		})
	}
}

func appliedVersions(t *testing.T, db *database.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Raw("SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0 AND is_applied").Scan(&n).Error; err != nil {
		t.Fatalf("read goose_db_version: %v", err)
	}
	return n
}

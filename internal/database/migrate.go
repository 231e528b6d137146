package database

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"timeslots/migrations"
)

// newMigrator builds the goose provider of the dialect. On PostgreSQL a
// session advisory lock makes concurrent starters wait for each other; on
// SQLite the same is done with a lock file (see Migrate).
func (d *DB) newMigrator() (*goose.Provider, error) {
	sub, err := fs.Sub(migrations.FS, string(d.Dialect))
	if err != nil {
		return nil, err
	}
	var opts []goose.ProviderOption
	dialect := goose.DialectSQLite3
	if d.Dialect == Postgres {
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300)) // retry each second, up to 5 minutes
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(dialect, d.SQL(), sub, opts...)
}

// Migrate applies every pending migration, ours and then River's (the job
// queue's own schema); applying twice is a no-op, and two processes
// starting together migrate once. It answers how many of ours it applied.
func (d *DB) Migrate(ctx context.Context) (int, error) {
	if d.Dialect == SQLite {
		unlock, err := lockFile(d.Path + ".migrate.lock")
		if err != nil {
			return 0, err
		}
		defer unlock()
	}
	p, err := d.newMigrator()
	if err != nil {
		return 0, fmt.Errorf("prepare migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("apply migrations: %w", err)
	}
	if err := d.migrateRiver(ctx); err != nil {
		return len(res), fmt.Errorf("apply River's migrations: %w", err)
	}
	return len(res), nil
}

// Pending reports whether migrations remain to be applied; /readyz uses it.
func (d *DB) Pending(ctx context.Context) (bool, error) {
	p, err := d.newMigrator()
	if err != nil {
		return false, err
	}
	pending, err := p.HasPending(ctx)
	if err != nil || pending {
		return pending, err
	}
	return d.riverPending(ctx)
}

// lockFile takes an exclusive advisory lock on path, waiting for it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open migration lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"timeslots/migrations"
)

// newMigrator builds the goose provider of the dialect over pool. On
// PostgreSQL a session advisory lock makes concurrent starters wait for
// each other, so Migrate gives it a direct connection (never one through a
// pooler in transaction mode, where the lock and its release could land on
// different server sessions); on SQLite the same is done with a lock file
// (see Migrate).
func (d *DB) newMigrator(pool *sql.DB) (*goose.Provider, error) {
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
	return goose.NewProvider(dialect, pool, sub, opts...)
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
	p, direct, done, err := d.migrator()
	if err != nil {
		return 0, fmt.Errorf("prepare migrations: %w", err)
	}
	defer done()
	res, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("apply migrations: %w", err)
	}
	if err := d.migrateRiver(ctx, direct); err != nil {
		return len(res), fmt.Errorf("apply River's migrations: %w", err)
	}
	return len(res), nil
}

// migrator is newMigrator over a direct connection: SQLite's pool, or on
// PostgreSQL connections of their own (see DB.direct), open until done
// is called; it answers that pool too.
func (d *DB) migrator() (p *goose.Provider, pool *sql.DB, done func(), err error) {
	pool, done = d.SQL(), func() {}
	if d.direct != "" {
		conf, err := pgx.ParseConfig(d.direct)
		if err != nil {
			return nil, nil, nil, errors.New("the direct database URL is not a valid postgres:// URL")
		}
		direct := stdlib.OpenDB(*conf)
		pool, done = direct, func() { _ = direct.Close() }
	}
	if p, err = d.newMigrator(pool); err != nil {
		done()
		return nil, nil, nil, err
	}
	return p, pool, done, nil
}

// Pending reports whether migrations remain to be applied; /readyz uses
// it. It takes no lock, so it reads through the pool.
func (d *DB) Pending(ctx context.Context) (bool, error) {
	p, err := d.newMigrator(d.SQL())
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

package database

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// riverLockID names the advisory lock that serialises River's migrations
// across processes on PostgreSQL; on SQLite Migrate's lock file does.
const riverLockID = 0x74736c7472697672 // "tsltrivr"

// migrateRiver applies the pending migrations of River's own schema (the
// job queue behind webhooks) with River's migrator, at the same point as
// ours. On PostgreSQL it runs on pool, a direct connection's (Migrate's):
// its lock is a session's.
func (d *DB) migrateRiver(ctx context.Context, pool *sql.DB) error {
	if d.Dialect == SQLite {
		m, err := rivermigrate.New(riversqlite.New(d.SQL()), nil)
		if err != nil {
			return err
		}
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		return err
	}
	m, err := rivermigrate.New(riverdatabasesql.New(pool), nil)
	if err != nil {
		return err
	}
	// Most starts find River's schema whole: one check on one connection,
	// no lock, and the pool keeps no more connections than our own
	// migrations left (a role capped at a few connections still starts).
	if res, err := m.Validate(ctx, nil); err == nil && res.OK {
		return nil
	}
	conn, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", int64(riverLockID)); err != nil {
		return fmt.Errorf("take River's migration lock: %w", err)
	}
	defer func() {
		// The lock ends with the session anyway if this fails.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(riverLockID))
	}()
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

// riverPending reports whether River's schema lacks a migration.
func (d *DB) riverPending(ctx context.Context) (bool, error) {
	var res *rivermigrate.ValidateResult
	var err error
	if d.Dialect == SQLite {
		m, merr := rivermigrate.New(riversqlite.New(d.SQL()), nil)
		if merr != nil {
			return false, merr
		}
		res, err = m.Validate(ctx, nil)
	} else {
		m, merr := rivermigrate.New(riverdatabasesql.New(d.SQL()), nil)
		if merr != nil {
			return false, merr
		}
		res, err = m.Validate(ctx, nil)
	}
	if err != nil {
		return false, err
	}
	return !res.OK, nil
}

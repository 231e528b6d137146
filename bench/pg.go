package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"timeslots/internal/database"
)

// benchDB is the dedicated PostgreSQL database of one benchmark run: made
// fresh and migrated at the start, dropped at the end.
type benchDB struct {
	admin string // URL of the maintenance database used to create and drop it
	name  string
	url   string
	pool  *pgxpool.Pool
}

// createBenchDB creates and migrates a new randomly named database through
// the same migrations the server applies.
func createBenchDB(ctx context.Context, admin string) (*benchDB, error) {
	u, err := url.Parse(admin)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	name := "timeslots_bench_" + randomToken()[:10]
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u.Path = "/" + name
	b := &benchDB{admin: admin, name: name, url: u.String()}
	target, err := database.ParseURL(b.url)
	if err != nil {
		b.drop()
		return nil, err
	}
	db, err := database.Open(ctx, target, database.Options{})
	if err != nil {
		b.drop()
		return nil, err
	}
	_, err = db.Migrate(ctx)
	db.Close()
	if err != nil {
		b.drop()
		return nil, err
	}
	b.pool, err = pgxpool.New(ctx, b.url)
	if err != nil {
		b.drop()
		return nil, err
	}
	return b, nil
}

// drop removes the database, whatever is still connected to it.
func (b *benchDB) drop() {
	if b.pool != nil {
		b.pool.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, b.admin)
	if err != nil {
		fmt.Printf("warning: drop database %s: %v\n", b.name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+b.name+" WITH (FORCE)"); err != nil {
		fmt.Printf("warning: drop database %s: %v\n", b.name, err)
	}
}

// exec runs one statement on the bench database.
func (b *benchDB) exec(ctx context.Context, sql string, args ...any) error {
	_, err := b.pool.Exec(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("%.60s: %w", sql, err)
	}
	return nil
}

// count answers a single integer query.
func (b *benchDB) count(ctx context.Context, sql string, args ...any) (int64, error) {
	var n int64
	err := b.pool.QueryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

// emptySlots removes every slot, hold, booking and booking move (and optionally
// provider) and
// flushes dirty pages, so the next measured write starts from the same
// clean state.
func (b *benchDB) emptySlots(ctx context.Context, providersToo bool) error {
	tables := "slot_holds, booking_moves, bookings, time_slots"
	if providersToo {
		tables += ", providers"
	}
	if err := b.exec(ctx, "TRUNCATE "+tables+" RESTART IDENTITY"); err != nil {
		return err
	}
	return b.exec(ctx, "CHECKPOINT")
}

// serverVersion answers PostgreSQL's version string.
func (b *benchDB) serverVersion(ctx context.Context) string {
	var v string
	if err := b.pool.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "unknown"
	}
	return v
}

// setting answers one server setting.
func (b *benchDB) setting(ctx context.Context, name string) string {
	var v string
	if err := b.pool.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
		return "?"
	}
	return v
}

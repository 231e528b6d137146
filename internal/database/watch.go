package database

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// watchers are the functions watching the statements a DB sends. They are
// read on every statement, so the list is an immutable slice swapped whole.
type watchers struct {
	mu   sync.Mutex // serialises changes to list
	list atomic.Pointer[[]*func(string)]
	// gormOnce registers the GORM callbacks that report SQLite's statements.
	gormOnce sync.Once
}

// current answers the watchers now.
func (w *watchers) current() []*func(string) {
	if list := w.list.Load(); list != nil {
		return *list
	}
	return nil
}

func (w *watchers) add(f func(string)) (remove func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	entry := &f
	var list []*func(string)
	if old := w.list.Load(); old != nil {
		list = append(list, *old...)
	}
	list = append(list, entry)
	w.list.Store(&list)
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		var kept []*func(string)
		for _, e := range w.current() {
			if e != entry {
				kept = append(kept, e)
			}
		}
		w.list.Store(&kept)
	}
}

// report calls every watcher with the statement q.
func (w *watchers) report(q string) {
	for _, f := range w.current() {
		(*f)(q)
	}
}

// TraceQueryStart reports a statement pgx sends (pgx.QueryTracer).
func (w *watchers) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	w.report(data.SQL)
	return ctx
}

// TraceQueryEnd is the other half of pgx.QueryTracer.
func (w *watchers) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceCopyFromStart reports a COPY pgx sends (pgx.CopyFromTracer) as
// "COPY table (columns) FROM STDIN".
func (w *watchers) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	if len(w.current()) > 0 {
		w.report("COPY " + data.TableName.Sanitize() + " (" + strings.Join(data.ColumnNames, ", ") + ") FROM STDIN")
	}
	return ctx
}

// TraceCopyFromEnd is the other half of pgx.CopyFromTracer.
func (w *watchers) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

// WatchStatements calls f with the text of every statement the DB sends
// from now on (from every goroutine), until stop is called: for tests that
// prove how many queries an operation takes. On PostgreSQL pgx reports
// each statement (a COPY too), whoever sends it, before it is sent; on
// SQLite GORM does, through which every statement goes, once it has run.
func (d *DB) WatchStatements(f func(query string)) (stop func()) {
	if d.Dialect == SQLite {
		d.watch.gormOnce.Do(func() {
			record := func(tx *gorm.DB) { d.watch.report(tx.Statement.SQL.String()) }
			cb := d.DB.Callback()
			// Registering a new name on a fresh *gorm.DB cannot fail.
			_ = cb.Query().After("gorm:query").Register("database:watch", record)
			_ = cb.Row().After("gorm:row").Register("database:watch", record)
			_ = cb.Raw().After("gorm:raw").Register("database:watch", record)
			_ = cb.Create().After("gorm:create").Register("database:watch", record)
			_ = cb.Update().After("gorm:update").Register("database:watch", record)
			_ = cb.Delete().After("gorm:delete").Register("database:watch", record)
		})
	}
	return d.watch.add(f)
}

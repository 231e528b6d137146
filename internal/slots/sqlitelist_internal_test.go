package slots

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/models"
)

// heldListing answers a manager over a fresh SQLite database with the demo
// data, provider 1's first 40 upcoming slots held every other one, and of
// those holds' summaries a third outdated with their hold still live and a
// third outdated with it expired: every way sqliteHeld counts a slot.
func heldListing(t *testing.T) (*Manager, *database.DB, time.Time) {
	t.Helper()
	ctx := context.Background()
	db := dbtest.Open(t, database.SQLite)
	now := time.Now().UTC().Truncate(time.Second)
	m := New(db, WithClock(func() time.Time { return now }))
	if _, err := m.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	holdEveryOther(t, m, db, 1, now)
	return m, db, now
}

// holdEveryOther holds every other one of the provider's first 40
// upcoming slots at now, and of those holds' summaries outdates a third
// with their hold still live and a third with it expired.
func holdEveryOther(t *testing.T, m *Manager, db *database.DB, provider int64, now time.Time) {
	t.Helper()
	ctx := context.Background()
	page, err := m.ListSlots(ctx, SlotFilter{ProviderID: &provider}, PageRequest{First: ptrTo(40)})
	if err != nil || len(page.Slots) < 40 {
		t.Fatalf("%d slots, %v", len(page.Slots), err)
	}
	for i, s := range page.Slots {
		if i%2 != 0 {
			continue
		}
		if _, _, err := m.Hold(ctx, HoldInput{SlotID: s.ID, TTLMinutes: ptrTo(30)}); err != nil {
			t.Fatal(err)
		}
		switch i % 6 {
		case 2: // outdated summary, hold live
			err = db.Exec("UPDATE time_slots SET held_first = ? WHERE id = ?", now.Add(-time.Minute), s.ID).Error
		case 4: // outdated summary, hold expired
			if err = db.Exec("UPDATE time_slots SET held_first = ? WHERE id = ?", now.Add(-time.Minute), s.ID).Error; err == nil {
				err = db.Exec("UPDATE slot_holds SET expires_at = ? WHERE slot_id = ?", now.Add(-time.Second), s.ID).Error
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// listingCases are listings of every shape sqliteListSQL writes.
func listingCases(now time.Time) map[string]slotQuery {
	provider := int64(1)
	from := models.Date(now.AddDate(0, 0, -1).Format(time.DateOnly))
	to := models.Date(now.AddDate(0, 0, 8).Format(time.DateOnly))
	key := &SlotKey{Start: now.Add(30 * time.Hour), ID: 1}
	at := func(states slotStates, backward bool, key *SlotKey, limit int) slotQuery {
		return slotQuery{slotConds: slotConds{now: now, providerID: &provider, startDate: &from, endDate: &to, states: states},
			key: key, backward: backward, limit: limit}
	}
	return map[string]slotQuery{
		"available":                at(bookableSlots, false, nil, 21),
		"available after a key":    at(bookableSlots, false, key, 21),
		"available, backward":      at(bookableSlots, true, nil, 11),
		"available before a key":   at(bookableSlots, true, key, 11),
		"booked":                   at(fullSlots, false, nil, 101),
		"available and booked":     at(bookableSlots|fullSlots, false, nil, 21),
		"every provider available": {slotConds: slotConds{now: now, states: bookableSlots}, limit: 21},
	}
}

// The listing statement's hand-tuned text (a limit in the text, the
// provider behind a unary plus) answers the rows the plain statement
// answers, with every kind of hold summary on the page.
func TestSQLiteListingMatchesThePlainStatement(t *testing.T) {
	m, db, now := heldListing(t)
	for name, q := range listingCases(now) {
		t.Run(name, func(t *testing.T) {
			tuned, args := sqliteListSQL(q)
			plain := strings.Replace(tuned, "provider_id = +?", "provider_id = ?", 1)
			plain = strings.TrimSuffix(plain, " LIMIT "+strconv.Itoa(q.limit)) + " LIMIT ?"
			if plain == tuned || !strings.HasSuffix(tuned, " LIMIT "+strconv.Itoa(q.limit)) {
				t.Fatalf("the statement changed shape: %s", tuned)
			}
			got, err := sqliteSlots(db.Raw(tuned, args...), q.limit)
			if err != nil {
				t.Fatal(err)
			}
			want, err := sqliteSlots(db.Raw(plain, append(args, q.limit)...), q.limit)
			if err != nil {
				t.Fatal(err)
			}
			wantSameListing(t, q, got, want)
		})
	}
	// The unary plus leaves the plan as it was.
	q := listingCases(now)["available"]
	tuned, args := sqliteListSQL(q)
	plain := strings.Replace(tuned, "provider_id = +?", "provider_id = ?", 1)
	if got, want := queryPlan(t, db, tuned, args), queryPlan(t, db, plain, args); got != want || !strings.Contains(got, "(provider_id=? AND start_time>?)") {
		t.Fatalf("the listing's plan:\n%s\nthe plain statement's:\n%s", got, want)
	} else {
		t.Logf("EXPLAIN QUERY PLAN of the AVAILABLE page:\n%s", got)
	}
	_ = m
}

// wantSameListing checks that a hand-tuned listing statement answered
// got, the rows the plain statement answered (want), some of them, and
// for a listing of full slots some held seat among them.
func wantSameListing(t *testing.T, q slotQuery, got, want []models.TimeSlot) {
	t.Helper()
	if len(got) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tuned statement answers %d rows:\n%v\nthe plain one %d:\n%v", len(got), got, len(want), want)
	}
	held := 0
	for _, s := range got {
		held += s.Held
	}
	if q.states == fullSlots && held == 0 {
		t.Fatalf("the booked listing shows no held seat: %v", got)
	}
}

// queryPlan answers SQLite's EXPLAIN QUERY PLAN of text, a line a step.
func queryPlan(t *testing.T, db *database.DB, text string, args []any) string {
	t.Helper()
	rows, err := db.Raw("EXPLAIN QUERY PLAN "+text, args...).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&plan, "%d %d %s\n", id, parent, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan.String()
}

// sqliteOut receives the handles SQLite's functions answer through a
// pointer: a variable of the package, which the garbage collector does
// not move.
var sqliteOut uintptr

// SQLite compiles a statement again at its first step when its planner
// read a value bound to it (LIMIT ?, or provider_id = ? beside an ORDER
// BY), and the driver compiles every statement it runs, so such a listing
// compiled twice per page. This fails when the listing's statement is
// compiled twice again, or when SQLite stops doing so for the plain
// statement, whose workaround could then go.
func TestSQLiteListingCompilesOnce(t *testing.T) {
	_, db, now := heldListing(t)
	tls := libc.NewTLS()
	defer tls.Close()
	path, err := libc.CString(db.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer libc.Xfree(tls, path)
	if rc := sqlite3.Xsqlite3_open_v2(tls, path, uintptr(unsafe.Pointer(&sqliteOut)), sqlite3.SQLITE_OPEN_READONLY, 0); rc != sqlite3.SQLITE_OK {
		t.Fatalf("open %s: %d", db.Path, rc)
	}
	conn := sqliteOut
	defer sqlite3.Xsqlite3_close_v2(tls, conn)
	// recompiles runs text with args as the driver does (compile, bind,
	// step to the end) and answers how many times SQLite compiled it again.
	recompiles := func(text string, args []any) int32 {
		t.Helper()
		ctext, err := libc.CString(text)
		if err != nil {
			t.Fatal(err)
		}
		defer libc.Xfree(tls, ctext)
		if rc := sqlite3.Xsqlite3_prepare_v2(tls, conn, ctext, -1, uintptr(unsafe.Pointer(&sqliteOut)), 0); rc != sqlite3.SQLITE_OK {
			t.Fatalf("prepare %s: %d", text, rc)
		}
		stmt := sqliteOut
		defer sqlite3.Xsqlite3_finalize(tls, stmt)
		for i, a := range args {
			var rc int32
			switch v := a.(type) {
			case int:
				rc = sqlite3.Xsqlite3_bind_int64(tls, stmt, int32(i+1), int64(v))
			case int64:
				rc = sqlite3.Xsqlite3_bind_int64(tls, stmt, int32(i+1), v)
			case time.Time, string:
				s := fmt.Sprint(v)
				if tv, ok := v.(time.Time); ok {
					s = tv.Format("2006-01-02 15:04:05.999999999-07:00")
				}
				cs, err := libc.CString(s)
				if err != nil {
					t.Fatal(err)
				}
				rc = sqlite3.Xsqlite3_bind_text(tls, stmt, int32(i+1), cs, -1, sqlite3.SQLITE_TRANSIENT)
				libc.Xfree(tls, cs)
			default:
				t.Fatalf("argument %d: %T", i+1, a)
			}
			if rc != sqlite3.SQLITE_OK {
				t.Fatalf("bind %d: %d", i+1, rc)
			}
		}
		for {
			rc := sqlite3.Xsqlite3_step(tls, stmt)
			if rc == sqlite3.SQLITE_DONE {
				break
			}
			if rc != sqlite3.SQLITE_ROW {
				t.Fatalf("step %s: %d", text, rc)
			}
		}
		return sqlite3.Xsqlite3_stmt_status(tls, stmt, sqlite3.SQLITE_STMTSTATUS_REPREPARE, 0)
	}
	for name, q := range listingCases(now) {
		if q.providerIDs != nil {
			continue // GORM expands IN ? itself
		}
		tuned, args := sqliteListSQL(q)
		if n := recompiles(tuned, args); n != 0 {
			t.Errorf("%s: SQLite compiled the listing %d more times:\n%s", name, n, tuned)
		}
		if q.providerID == nil {
			continue
		}
		plain := strings.Replace(tuned, "provider_id = +?", "provider_id = ?", 1)
		if n := recompiles(plain, args); n == 0 {
			t.Errorf("%s: SQLite compiles provider_id = ? beside an ORDER BY once now; the unary plus can go", name)
		}
		plain = strings.TrimSuffix(tuned, " LIMIT "+strconv.Itoa(q.limit)) + " LIMIT ?"
		if n := recompiles(plain, append(args, q.limit)); n == 0 {
			t.Errorf("%s: SQLite compiles LIMIT ? once now; the limit need not be in the text", name)
		}
	}
}

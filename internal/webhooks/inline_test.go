package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// riverJobColumns are river_job's columns as the mirrored schema has them.
const riverJobColumns = "id state attempt max_attempts attempted_at created_at finalized_at scheduled_at priority args " +
	"attempted_by errors kind metadata queue tags unique_key unique_states"

// The booking statement's own enqueue (BookedSQL) mirrors a River version
// and its schema: a change of either must be looked at, and this fails.
func TestTheBookingStatementsEnqueueMirrorsThisRiver(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var version string
	for _, line := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/riverqueue/river" {
			version = f[1]
		}
		if f := strings.Fields(line); len(f) >= 2 && (f[0] == "replace" && f[1] == "github.com/riverqueue/river" || f[0] == "github.com/riverqueue/river" && f[1] == "=>") {
			t.Fatalf("go.mod replaces River (%s): BookedSQL mirrors %s", line, MirroredRiver)
		}
	}
	if version != MirroredRiver {
		t.Fatalf("go.mod requires River %q; BookedSQL mirrors %s: check its insert and the body against this River, then update MirroredRiver",
			version, MirroredRiver)
	}
	db := dbtest.Open(t, database.Postgres)
	var schema int
	if err := db.Raw("SELECT max(version) FROM river_migration WHERE line = 'main'").Scan(&schema).Error; err != nil {
		t.Fatal(err)
	}
	var columns []string
	if err := db.Raw("SELECT column_name FROM information_schema.columns WHERE table_name = 'river_job' AND table_schema = current_schema() ORDER BY ordinal_position").
		Scan(&columns).Error; err != nil {
		t.Fatal(err)
	}
	if schema != MirroredRiverSchema || strings.Join(columns, " ") != riverJobColumns {
		t.Fatalf("River's schema is at %d with river_job (%s); BookedSQL writes version %d's (%s)",
			schema, strings.Join(columns, " "), MirroredRiverSchema, riverJobColumns)
	}
}

// The row a booking's own statement writes is the row River's InsertManyTx
// writes for the same args, its body is eventBody's byte for byte, and
// River's workers deliver it.
func TestTheBookingStatementWritesRiversRowAndTheBody(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t, database.Postgres)
	svc, err := New(db, Options{AllowPrivate: true, Poll: 20 * time.Millisecond, MaxAttempts: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(ctx) })
	// A clock with nanoseconds, which the body keeps and the database does not.
	now := time.Date(2030, 1, 7, 6, 0, 0, 123456789, time.UTC)
	m := slots.New(db, slots.WithClock(func() time.Time { return now }), slots.WithOutbox(svc))
	capacity := 3
	var hours []models.WorkingHours
	for _, d := range models.AllWeekdays {
		hours = append(hours, models.WorkingHours{Weekday: d, Start: "09:00", End: "12:00"})
	}
	p, err := m.CreateProvider(ctx, models.ProviderInput{Name: "Inline", TimeZone: "UTC", SlotMinutes: 60, Capacity: &capacity, WorkingHours: hours})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Generate(ctx, slots.GenerateInput{DaysAhead: 2, ProviderIDs: []int64{p.ID}}); err != nil {
		t.Fatal(err)
	}
	var slotID int64
	if err := db.Raw("SELECT min(id) FROM time_slots WHERE provider_id = ?", p.ID).Scan(&slotID).Error; err != nil {
		t.Fatal(err)
	}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(rcv.Close)
	for _, url := range []string{rcv.URL + "/a", rcv.URL + "/b"} {
		if _, err := svc.Create(ctx, Input{URL: &url, Events: []string{string(slots.BookingCreated)}}); err != nil {
			t.Fatal(err)
		}
	}
	b, s, err := m.Book(ctx, slots.BookInput{SlotID: slotID, Customer: `Zoë "<&>" O'Brien`, CustomerID: "user|42"})
	if err != nil {
		t.Fatal(err)
	}

	const cols = `kind, args::text, queue, priority, max_attempts, state::text, metadata::text, tags::text,
		unique_key IS NULL, unique_states IS NULL, attempt, attempted_at IS NULL, attempted_by IS NULL, errors IS NULL,
		finalized_at IS NULL, scheduled_at = created_at, created_at`
	type row struct {
		Kind, Args, Queue                                        string
		Priority, MaxAttempts                                    int
		State, Metadata, Tags                                    string
		NoKey, NoStates                                          bool
		Attempt                                                  int
		NoAttemptedAt, NoAttemptedBy, NoErrors, NoFinalized, Now bool
		CreatedAt                                                time.Time
	}
	scan := func(rows *sql.Rows) []row {
		defer rows.Close()
		var out []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.Kind, &r.Args, &r.Queue, &r.Priority, &r.MaxAttempts, &r.State, &r.Metadata, &r.Tags,
				&r.NoKey, &r.NoStates, &r.Attempt, &r.NoAttemptedAt, &r.NoAttemptedBy, &r.NoErrors, &r.NoFinalized, &r.Now, &r.CreatedAt); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	rows, err := db.SQL().QueryContext(ctx, "SELECT "+cols+" FROM river_job ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	ours := scan(rows)
	if len(ours) != 2 {
		t.Fatalf("%d jobs for one booking and two endpoints, want 2", len(ours))
	}

	// The body, as eventBody renders the booking and slot Book answered.
	var args deliveryArgs
	if err := json.Unmarshal([]byte(ours[0].Args), &args); err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(payload{ID: args.EventID, Type: string(slots.BookingCreated), CreatedAt: now.UTC(),
		Data: eventData(slots.Event{Kind: slots.BookingCreated, At: now, Booking: *b, Slot: s})})
	if err != nil {
		t.Fatal(err)
	}
	if args.Body != string(want) {
		t.Fatalf("the statement's body\n%s\neventBody's\n%s", args.Body, want)
	}

	// River's own insert of the same args, in a transaction rolled back.
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	var params []river.InsertManyParams
	for _, r := range ours {
		var a deliveryArgs
		if err := json.Unmarshal([]byte(r.Args), &a); err != nil {
			t.Fatal(err)
		}
		params = append(params, river.InsertManyParams{Args: a, InsertOpts: &river.InsertOpts{Queue: queue}})
	}
	res, err := svc.client.InsertManyTx(ctx, tx, params)
	if err != nil {
		t.Fatal(err)
	}
	rows, err = tx.QueryContext(ctx, "SELECT "+cols+" FROM river_job WHERE id = ANY($1) ORDER BY id", []int64{res[0].Job.ID, res[1].Job.ID})
	if err != nil {
		t.Fatal(err)
	}
	theirs := scan(rows)
	for i := range ours {
		o, r := ours[i], theirs[i]
		o.CreatedAt, r.CreatedAt = time.Time{}, time.Time{} // each its transaction's now()
		if o != r {
			t.Fatalf("job %d: the statement wrote\n%+v\nRiver writes\n%+v", i, o, r)
		}
	}
	if ours[0].CreatedAt.Sub(now) > time.Hour || !ours[0].Now {
		t.Fatalf("created at %s", ours[0].CreatedAt)
	}
	_ = tx.Rollback()

	// River's workers take the jobs and complete them.
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var done int
		if err := db.Raw("SELECT count(*) FROM river_job WHERE state = 'completed'").Scan(&done).Error; err != nil {
			t.Fatal(err)
		}
		if done == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 jobs completed", done)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pgTimeJSON renders times as encoding/json does, whatever their fraction
// of a second.
func TestPgTimeJSONRendersTimesAsEncodingJSON(t *testing.T) {
	db := dbtest.Open(t, database.Postgres)
	base := time.Date(2031, 3, 30, 1, 59, 59, 0, time.FixedZone("X", 5*3600))
	for _, frac := range []time.Duration{0, 1000, 100 * time.Millisecond, 120 * time.Millisecond, 123456 * time.Microsecond, 999999 * time.Microsecond, 500 * time.Microsecond} {
		at := base.Add(frac)
		want, _ := json.Marshal(at.UTC())
		var got string
		if err := db.Raw("SELECT "+pgTimeJSON("t.x")+" FROM (SELECT ?::timestamptz AS x) AS t", at).Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Fatalf("%s: %s, want %s", at, got, want)
		}
	}
}

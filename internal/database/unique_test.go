package database_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// A write that breaks a unique index is recognised by the index's name, the
// same on both databases, whichever index it is.
func TestUniqueViolationsNameTheirIndexOnBothDatabases(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		p := insertProvider(t, db)
		// bookAs inserts a confirmed booking of the slot for customer, owned
		// by owner ("" for none), with key ("" for none) and ref ("" for a
		// new one).
		bookAs := func(customer, owner, key, ref string) func() error {
			return func() error {
				var k, o *string
				if key != "" {
					k = &key
				}
				if owner != "" {
					o = &owner
				}
				if ref == "" {
					ref = reference()
				}
				return db.Exec(`INSERT INTO bookings (slot_id, provider_id, start_time, end_time, customer, status, idempotency_key, created_at, reference, customer_id)
					VALUES (?, ?, ?, ?, ?, 'confirmed', ?, ?, ?, ?)`, slotID(t, db, p, t0), p, t0, t0.Add(30*time.Minute), customer, k, t0, ref, o).Error
			}
		}
		book := func(customer, key string) func() error { return bookAs(customer, "", key, "") }
		run := func() error {
			return db.Exec("INSERT INTO job_runs (job, tick, started_at, lease_until, outcome) VALUES ('generate', ?, ?, ?, 'running')", t0, t0, t0).Error
		}
		if n, err := insertSlot(db, p, t0, 30, 5, 0, false); err != nil || n != 1 {
			t.Fatalf("insert the slot: %d, %v", n, err)
		}
		for _, tc := range []struct {
			name          string
			first, second func() error
			index         string
		}{
			{"a second slot of a provider at one start", func() error {
				if db.Dialect == database.SQLite {
					// SQLite's overlap trigger drops such a row before the
					// unique index sees it; without the trigger it does.
					return db.Exec("DROP TRIGGER time_slots_no_overlap").Error
				}
				return nil
			}, func() error {
				_, err := insertSlot(db, p, t0, 30, 1, 0, false)
				return err
			}, database.UniqueSlotStart},
			{"a second booking with one idempotency key", book("ada", "key-1"), book("grace", "key-1"), database.UniqueBookingKey},
			{"a customer's second confirmed seat in a slot", book("lin", ""), book("lin", ""), database.UniqueCustomerSeat},
			{"an owner's second booking with one idempotency key", bookAs("ann", "sub-ann", "key-2", ""), bookAs("bea", "sub-ann", "key-2", ""), database.UniqueOwnerBookingKey},
			{"a second booking with one reference", bookAs("cy", "", "", "bk_same"), bookAs("dee", "", "", "bk_same"), database.UniqueBookingReference},
			{"a second run of one job's tick", run, run, database.UniqueJobAttempt},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.first(); err != nil {
					t.Fatalf("the first write: %v", err)
				}
				err := tc.second()
				if index, ok := database.IsUniqueViolation(err); !ok || index != tc.index {
					t.Fatalf("the second write: %v, recognised as a unique violation %v of %q; want %q", err, ok, index, tc.index)
				}
			})
		}
		t.Run("an idempotency key is unique within its owner's bookings only", func(t *testing.T) {
			for _, b := range []func() error{
				bookAs("eve", "sub-eve", "key-3", ""), bookAs("fay", "sub-fay", "key-3", ""), bookAs("gus", "", "key-3", ""),
			} {
				if err := b(); err != nil {
					t.Fatalf("the same key for another owner or for no owner: %v", err)
				}
			}
		})
		t.Run("no other error is a unique violation", func(t *testing.T) {
			err := db.Exec("INSERT INTO providers (name) VALUES (NULL)").Error
			if index, ok := database.IsUniqueViolation(err); err == nil || ok {
				t.Fatalf("a NULL name: %v, recognised as a unique violation of %q", err, index)
			}
		})
	})
}

// The names IsUniqueViolation answers are exactly the schema's unique
// indexes: on PostgreSQL by name, on SQLite by the columns each covers.
// River's tables (river_*) are its own, and their violations River's.
func TestEveryUniqueIndexOfTheSchemaHasItsName(t *testing.T) {
	t.Parallel()
	var names []string
	for _, name := range database.SQLiteUniqueIndexes {
		names = append(names, name)
	}
	sort.Strings(names)
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		var got []string
		if db.Dialect == database.Postgres {
			if err := db.Raw(`SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()
				AND indexdef LIKE 'CREATE UNIQUE INDEX%' AND indexname NOT LIKE '%\_pkey'
				AND tablename NOT LIKE 'river\_%' ORDER BY indexname`).
				Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, names) {
				t.Fatalf("PostgreSQL's unique indexes are %v, the names answered %v", got, names)
			}
			return
		}
		var tables []string
		if err := db.Raw(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'river\_%' ESCAPE '\'`).Scan(&tables).Error; err != nil {
			t.Fatal(err)
		}
		for _, table := range tables {
			var indexes []struct {
				Name   string
				Unique bool
				Origin string
			}
			if err := db.Raw(fmt.Sprintf("SELECT name, [unique], origin FROM pragma_index_list('%s')", table)).Scan(&indexes).Error; err != nil {
				t.Fatal(err)
			}
			for _, ix := range indexes {
				if !ix.Unique || ix.Origin == "pk" {
					continue
				}
				var cols []string
				if err := db.Raw(fmt.Sprintf("SELECT '%s.' || name FROM pragma_index_info('%s') ORDER BY seqno", table, ix.Name)).
					Scan(&cols).Error; err != nil {
					t.Fatal(err)
				}
				name, ok := database.SQLiteUniqueIndexes[strings.Join(cols, ", ")]
				if !ok {
					t.Errorf("SQLite's unique index %s on %v has no name", ix.Name, cols)
				}
				got = append(got, name)
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, names) {
			t.Fatalf("SQLite's unique indexes are named %v, the names answered %v", got, names)
		}
	})
}

package slots

import (
	"context"
	"testing"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// Should text the database cannot store ever reach PostgreSQL (the checks
// in front of the store missed it), its refusal (SQLSTATE 22021) is the
// client's BAD_USER_INPUT, never an internal error.
func TestUnstorableTextThatReachesPostgreSQLIsBadInput(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, database.Postgres)
	m := New(db)
	for _, v := range []string{"bk_\x00", "bk_\xff"} {
		_, err := m.store.bookingByReference(context.Background(), v)
		if !database.IsUnstorableText(err) {
			t.Fatalf("the store read %q: %v, want PostgreSQL's 22021", v, err)
		}
		if code := apperr.ErrorCode(dbError("load booking", err)); code != apperr.BadUserInput {
			t.Fatalf("%q: %s, want BAD_USER_INPUT", v, code)
		}
	}
}

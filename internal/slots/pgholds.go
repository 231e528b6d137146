package slots

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"timeslots/internal/database"
	"timeslots/models"
)

const pgHoldColumns = "id, reference, slot_id, customer, customer_id, idempotency_key, status, expires_at, created_at, ended_at, booking_reference"

func scanHold(r pgx.Row, h *models.Hold) error {
	return r.Scan(&h.ID, &h.Reference, &h.SlotID, &h.Customer, &h.CustomerID, &h.IdempotencyKey, &h.Status,
		&h.ExpiresAt, &h.CreatedAt, &h.EndedAt, &h.BookingReference)
}

// pgHoldStatement claims a seat of slot $2 at $1 as pgClaimSeat does, adds
// a hold that expires at $3 to the slot's hold summary, and writes the
// hold, in one statement: $4 the reference, $5 the customer, $6 the owner,
// $7 the idempotency key (NULL for none). A summary whose holds all
// expired starts again from this one. It answers the slot as updated and
// the hold's id, or no row.
var pgHoldStatement = strings.Join(strings.Fields(`WITH claimed AS (
	UPDATE time_slots
	   SET held_count = (CASE WHEN held_until > $1 THEN held_count ELSE 0 END) + 1,
	       held_first = CASE WHEN held_until > $1 THEN LEAST(held_first, $3) ELSE $3 END,
	       held_until = CASE WHEN held_until > $1 THEN GREATEST(held_until, $3) ELSE $3 END,
	       version = version + 1, updated_at = $1
	 WHERE id = $2 AND booked_count + `+pgClaimHeld+` < capacity AND start_time > $1
	   AND EXISTS (SELECT 1 FROM providers AS p
	                WHERE p.id = time_slots.provider_id AND p.active
	                  AND time_slots.start_time - make_interval(mins => p.min_notice_minutes) >= $1)
	RETURNING `+pgChangedColumns+`
), held AS (
	INSERT INTO slot_holds (reference, slot_id, customer, customer_id, idempotency_key, status, expires_at, created_at)
	SELECT $4, id, $5, $6, $7, 'held', $3, $1 FROM claimed
	RETURNING id
)
SELECT claimed.*, held.id FROM claimed, held`), " ")

func (s *pgStore) holdSeat(ctx context.Context, in HoldInput, ref string, now, expires time.Time, hook txHook) (*models.Hold, *models.TimeSlot, error) {
	var slot models.TimeSlot
	var id int64
	hold := func(q pgQuerier) error {
		return scanSlotAnd(q.QueryRow(ctx, pgHoldStatement, now, in.SlotID, expires, ref,
			optional(in.Customer), optional(in.CustomerID), optional(in.IdempotencyKey)), &slot, &slot.Version, &id)
	}
	var err error
	if hook == nil {
		// One statement, one implicit transaction.
		err = withConn(ctx, s.primary, func(c *pgx.Conn) error { return hold(c) })
	} else {
		ch := &txChange{slot: &slot}
		err = pgTx(ctx, s.primary, hook.with(ctx, ch), func(q pgTxQuerier) error {
			if err := hold(q); err != nil {
				return err
			}
			ch.changed, ch.hold = true, newHold(id, ref, in, now, expires)
			return nil
		})
	}
	switch {
	case err == nil:
		return newHold(id, ref, in, now, expires), &slot, nil
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil, errNotClaimed
	}
	if index, ok := database.IsUniqueViolation(err); ok && (index == database.UniqueHoldKey || index == database.UniqueOwnerHoldKey) {
		return nil, nil, errKeyTaken
	}
	return nil, nil, err
}

// recountHolds locks the slot's row before it counts, so that the count
// (a statement of its own, which reads what committed before it started)
// sees every hold of every claim that held the row before; a claim
// changes the summary and its holds in one statement, under the same lock.
func (s *pgStore) recountHolds(ctx context.Context, id int64, now time.Time) (*models.TimeSlot, error) {
	const stale = "SELECT 1 FROM time_slots WHERE id = $2 AND held_count > 0 AND held_first <= $1"
	if _, err := pgRow(ctx, s.primary, pgValue[int], stale, now, id); err != nil {
		if errors.Is(err, errNoRows) {
			return nil, nil
		}
		return nil, err
	}
	var recounted *models.TimeSlot
	err := withConn(ctx, s.primary, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			var one int
			err := tx.QueryRow(ctx, stale+" FOR UPDATE", now, id).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			var slot models.TimeSlot
			err = scanSlotAnd(tx.QueryRow(ctx, `UPDATE time_slots
				SET (held_count, held_first, held_until) = (SELECT count(*), min(expires_at), max(expires_at) FROM slot_holds
				                                             WHERE slot_id = $2 AND status = 'held' AND expires_at > $1),
				    version = version + 1, updated_at = $1
				WHERE id = $2
				RETURNING `+pgChangedColumns, now, id), &slot, &slot.Version)
			if err == nil {
				recounted = &slot
			}
			return err
		})
	})
	return recounted, err
}

func (s *pgStore) expiredHoldSlots(ctx context.Context, since, now time.Time, after int64, limit int) ([]int64, error) {
	return pgRows(ctx, s.primary, limit, pgValue[int64], `SELECT DISTINCT slot_id FROM slot_holds
		WHERE status = 'held' AND expires_at > $1 AND expires_at <= $2 AND slot_id > $3 ORDER BY slot_id LIMIT $4`, since, now, after, limit)
}

func (s *pgStore) hold(ctx context.Context, ref string) (*models.Hold, error) {
	return pgRow(ctx, s.primary, scanHold, "SELECT "+pgHoldColumns+" FROM slot_holds WHERE reference = $1", ref)
}

func (s *pgStore) holdByKey(ctx context.Context, key, customerID string) (*models.Hold, error) {
	if customerID == "" {
		return pgRow(ctx, s.primary, scanHold, "SELECT "+pgHoldColumns+
			" FROM slot_holds WHERE idempotency_key = $1 AND customer_id IS NULL", key)
	}
	return pgRow(ctx, s.primary, scanHold, "SELECT "+pgHoldColumns+
		" FROM slot_holds WHERE customer_id = $2 AND idempotency_key = $1", key, customerID)
}

// pgEndedColumns are pgChangedColumns in a statement that ends hold $2:
// its slot_holds still shows that hold as held, so the count of live
// holds leaves it out.
var pgEndedColumns = strings.Replace(pgChangedColumns, "h.expires_at > $1", "h.expires_at > $1 AND h.reference <> $2", 1)

// pgEndHold is the summary's update of a statement that ends one of the
// slot's live holds: one hold fewer, and no bounds once none is left.
const pgEndHold = `held_count = held_count - 1,
	held_first = CASE WHEN held_count > 1 THEN held_first END,
	held_until = CASE WHEN held_count > 1 THEN held_until END,
	version = version + 1, updated_at = $1`

// pgReleaseStatement releases live hold $2 at $1 and frees its seat,
// answering the slot as updated, or no row when the hold is not live.
var pgReleaseStatement = strings.Join(strings.Fields(`WITH ended AS (
	UPDATE slot_holds SET status = 'released', ended_at = $1
	 WHERE reference = $2 AND status = 'held' AND expires_at > $1
	RETURNING slot_id
)
UPDATE time_slots SET `+pgEndHold+` FROM ended WHERE time_slots.id = ended.slot_id
RETURNING `+pgEndedColumns), " ")

func (s *pgStore) releaseHold(ctx context.Context, ref string, now time.Time, hook txHook) (*models.TimeSlot, error) {
	var slot models.TimeSlot
	release := func(q pgQuerier) error {
		return scanFreed(ctx, q, now, q.QueryRow(ctx, pgReleaseStatement, now, ref), &slot)
	}
	var err error
	if hook == nil {
		// One statement, one implicit transaction.
		err = withConn(ctx, s.primary, func(c *pgx.Conn) error { return release(c) })
	} else {
		ch := &txChange{slot: &slot}
		err = pgTx(ctx, s.primary, hook.with(ctx, ch), func(q pgTxQuerier) error {
			if err := release(q); err != nil {
				return err
			}
			ch.changed = true
			return nil
		})
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotClaimed
	}
	if err != nil {
		return nil, err
	}
	return &slot, nil
}

// pgBookHoldStatement turns live hold $2 into a confirmed booking at $1 if
// its slot has not started: the hold ends as booked, the slot's seat passes
// from the summary to booked_count, and the booking is written, in one
// statement. $3 is the booking's reference, $4 the customer, $5 the
// idempotency key, $6 the owner. It answers the slot as updated and the
// booking's id, or no row. The version goes up by two, one for each of the
// change's events (the hold released, the slot booked).
var pgBookHoldStatement = strings.Join(strings.Fields(`WITH ended AS (
	UPDATE slot_holds AS h SET status = 'booked', ended_at = $1, booking_reference = $3
	  FROM time_slots AS s
	 WHERE h.reference = $2 AND h.status = 'held' AND h.expires_at > $1 AND s.id = h.slot_id AND s.start_time > $1
	RETURNING h.slot_id
), claimed AS (
	UPDATE time_slots SET booked_count = booked_count + 1, `+strings.Replace(pgEndHold, "version + 1", "version + 2", 1)+`
	  FROM ended WHERE time_slots.id = ended.slot_id
	RETURNING `+pgEndedColumns+`
), booked AS (
	INSERT INTO bookings (slot_id, provider_id, start_time, end_time, customer, status, idempotency_key, created_at, reference, customer_id)
	SELECT id, provider_id, start_time, end_time, $4, 'confirmed', $5, $1, $3, $6 FROM claimed
	RETURNING id
)
SELECT claimed.*, booked.id FROM claimed, booked`), " ")

func (s *pgStore) bookHold(ctx context.Context, h *models.Hold, in BookInput, bookingRef string, now time.Time, hook txHook) (*models.Booking, *models.TimeSlot, error) {
	var slot models.TimeSlot
	var id int64
	book := func(q pgQuerier) error {
		return scanFreed(ctx, q, now, q.QueryRow(ctx, pgBookHoldStatement, now, h.Reference, bookingRef, in.Customer,
			optional(in.IdempotencyKey), optional(in.CustomerID)), &slot, &id)
	}
	var err error
	if hook == nil {
		err = withConn(ctx, s.primary, func(c *pgx.Conn) error { return book(c) })
	} else {
		ch := &txChange{slot: &slot}
		err = pgTx(ctx, s.primary, hook.with(ctx, ch), func(q pgTxQuerier) error {
			if err := book(q); err != nil {
				return err
			}
			ch.changed, ch.booking = true, newBooking(&slot, in, bookingRef, now, id)
			return nil
		})
	}
	if err == nil {
		return newBooking(&slot, in, bookingRef, now, id), &slot, nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, errNotClaimed
	}
	return nil, nil, uniqueRefusal(err)
}

func (s *pgStore) deleteEndedHolds(ctx context.Context, cutoff time.Time, limit int) (deleted, expired int, err error) {
	// A hold that ended was live until then, so it expires after it ended:
	// expires_at < cutoff finds every hold to delete by its index.
	err = withConn(ctx, s.primary, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `WITH gone AS (
			DELETE FROM slot_holds WHERE id IN (
				SELECT id FROM slot_holds WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)
			RETURNING status
		)
		SELECT count(*), count(*) FILTER (WHERE status = 'held') FROM gone`, cutoff, limit).Scan(&deleted, &expired)
	})
	return deleted, expired, err
}

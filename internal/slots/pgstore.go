package slots

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"timeslots/internal/database"
	"timeslots/models"
)

// pgStore is the store on PostgreSQL, in pgx throughout: each statement is
// written out with PostgreSQL's own $n placeholders and sent on pgx's own
// connection behind one of the pool's (withConn), so that no statement is
// rebuilt per call and no column goes through database/sql's conversions,
// which cost the hot paths more CPU than the queries themselves. The pools
// are database/sql's, which own the connections' limits, their
// statement_timeout and the go_sql_* metrics.
//
// Reads of slots and providers and the statistics go to a healthy read
// replica when there is one (read); everything else, and every read made
// with a context marked OnPrimary, goes to the primary.
type pgStore struct {
	primary  *sql.DB            // every write, and the reads that must see one
	replicas *database.Replicas // nil: no replica, the primary reads everything
}

func newPgStore(primary *sql.DB, replicas *database.Replicas) *pgStore {
	return &pgStore{primary: primary, replicas: replicas}
}

// read runs the read f on a healthy replica in turn, or on the primary
// when there is none or ctx is marked OnPrimary. A read that fails to
// reach its replica (stopped, restarting, or cancelled for a conflict with
// replay) is run again on the primary, so a replica going away costs its
// reads a retry, never a failure.
func (s *pgStore) read(ctx context.Context, f func(pool *sql.DB) error) error {
	if s.replicas != nil && !onPrimary(ctx) {
		if rep := s.replicas.Pick(); rep != nil {
			err := f(rep.Pool())
			if err == nil || !s.replicas.Retry(rep, err) {
				return err
			}
		}
	}
	return readPrimary(ctx, s.primary, f)
}

// readPrimary runs the read f on the primary, and once more when it found
// its connection dead (PostgreSQL restarted since the connection was last
// used): the pool pings its other connections before lending them from
// then on (database.IsConnectionLost), so the second run gets a live one
// or a new one, and a restart costs the read nothing once PostgreSQL
// accepts connections again. f collects its rows before it answers, so
// running it again hands nothing out twice.
func readPrimary(ctx context.Context, primary *sql.DB, f func(pool *sql.DB) error) error {
	err := f(primary)
	if err != nil && ctx.Err() == nil && database.IsConnectionLost(err) {
		err = f(primary)
	}
	return err
}

// readRows is pgRows on the pool read chooses.
func readRows[T any](ctx context.Context, s *pgStore, capacity int, scan func(pgx.Row, *T) error, query string, args ...any) ([]T, error) {
	var out []T
	err := s.read(ctx, func(pool *sql.DB) error {
		var err error
		out, err = pgRows(ctx, pool, capacity, scan, query, args...)
		return err
	})
	return out, err
}

// readRow is pgRow on the pool read chooses.
func readRow[T any](ctx context.Context, s *pgStore, scan func(pgx.Row, *T) error, query string, args ...any) (*T, error) {
	var out *T
	err := s.read(ctx, func(pool *sql.DB) error {
		var err error
		out, err = pgRow(ctx, pool, scan, query, args...)
		return err
	})
	return out, err
}

// withConn calls f with pgx's own connection behind one of pool's
// connections, which goes back to the pool afterwards.
func withConn(ctx context.Context, pool *sql.DB, f func(*pgx.Conn) error) error {
	conn, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("the PostgreSQL driver connection is a %T, not pgx's", driverConn)
		}
		return f(c.Conn())
	})
}

// pgTx runs f in one transaction on one of pool's connections. Without
// hook it is pgx's own transaction. With one, it is database/sql's, on
// that same connection, so that hook writes in it through the *sql.Tx it
// is given; f's statements still go through pgx, and hook runs after f,
// before the commit.
func pgTx(ctx context.Context, pool *sql.DB, hook func(*sql.Tx) error, f func(pgTxQuerier) error) error {
	if hook == nil {
		return withConn(ctx, pool, func(c *pgx.Conn) error {
			return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { return f(tx) })
		})
	}
	conn, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	err = conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("the PostgreSQL driver connection is a %T, not pgx's", driverConn)
		}
		return f(c.Conn())
	})
	if err == nil {
		err = hook(tx)
	}
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// pgTxQuerier is pgx's connection or transaction, inside a transaction.
type pgTxQuerier interface {
	pgQuerier
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// with answers the function pgTx calls to run h with what the write
// changed (h runs only when it changed something), or nil for no hook.
func (h txHook) with(ctx context.Context, ch *txChange) func(*sql.Tx) error {
	if h == nil {
		return nil
	}
	return func(tx *sql.Tx) error {
		if !ch.changed {
			return nil
		}
		return h(ctx, tx, *ch)
	}
}

// pgQuerier is a connection or a transaction.
type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgCollect runs query on q and scans each row into a new T, of which it
// expects about capacity.
func pgCollect[T any](ctx context.Context, q pgQuerier, capacity int, scan func(pgx.Row, *T) error, query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]T, 0, capacity)
	for rows.Next() {
		out = append(out, *new(T))
		if err := scan(rows, &out[len(out)-1]); err != nil {
			return nil, err
		}
	}
	return out, rows.Err()
}

// pgRows is pgCollect on one of pool's connections.
func pgRows[T any](ctx context.Context, pool *sql.DB, capacity int, scan func(pgx.Row, *T) error, query string, args ...any) ([]T, error) {
	var out []T
	err := withConn(ctx, pool, func(c *pgx.Conn) error {
		var err error
		out, err = pgCollect(ctx, c, capacity, scan, query, args...)
		return err
	})
	return out, err
}

// pgRow runs query, which answers at most one row, and scans it into a new
// T, or answers errNoRows.
func pgRow[T any](ctx context.Context, pool *sql.DB, scan func(pgx.Row, *T) error, query string, args ...any) (*T, error) {
	var row T
	err := withConn(ctx, pool, func(c *pgx.Conn) error { return scan(c.QueryRow(ctx, query, args...), &row) })
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoRows
	}
	if err != nil {
		return nil, err
	}
	return &row, nil
}

// pgExec runs a statement on one of pool's connections and answers the
// rows it touched.
func pgExec(ctx context.Context, pool *sql.DB, query string, args ...any) (int64, error) {
	var n int64
	err := withConn(ctx, pool, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, query, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// pgValue scans a row of one column.
func pgValue[T any](r pgx.Row, v *T) error { return r.Scan(v) }

// pgSlotColumns are the columns of time_slots the store reads, in the
// order scanSlot reads them: what the manager answers of a slot, its live
// holds at $1 (pgHeld) and its summary's first expiry last. Every
// statement that reads them passes its now as $1. The version and the
// timestamps stay unread; decoding them costs a listing more than the
// rest.
const pgSlotColumns = "id, provider_id, start_time, end_time, date, capacity, booked_count, " + pgHeld + ", held_first"

// pgHeld counts the slot's live holds at $1 from its hold summary (see
// migrations/postgres/00008_slot_holds.sql), and from slot_holds only for
// a slot some of whose holds expired since the summary was written: a slot
// without holds costs one NULL test.
const pgHeld = `CASE WHEN held_until IS NULL OR held_until <= $1 THEN 0 WHEN held_first > $1 THEN held_count
	ELSE (SELECT count(*) FROM slot_holds AS h WHERE h.slot_id = time_slots.id AND h.status = 'held' AND h.expires_at > $1)::int END`

// pgClaimHeld is pgHeld for a claim, which tests only the slot's own row,
// since PostgreSQL re-reads only that row when a concurrent claim of the
// slot commits first: the summary's live holds when it tells them exactly,
// and capacity (no seat) when it does not, which refuses the claim until
// the summary is recounted (recountHolds).
const pgClaimHeld = `CASE WHEN held_until IS NULL OR held_until <= $1 THEN 0 WHEN held_first > $1 THEN held_count ELSE capacity END`

// scanSlot reads one row of pgSlotColumns into s.
func scanSlot(r pgx.Row, s *models.TimeSlot) error { return scanSlotAnd(r, s) }

// scanSlotAnd reads one row of pgSlotColumns into s, each column straight
// into its field (the local date comes as PostgreSQL's binary date), and
// the row's further columns into extra.
func scanSlotAnd(r pgx.Row, s *models.TimeSlot, extra ...any) error {
	var date time.Time
	var heldFirst *time.Time
	dst := append([]any{&s.ID, &s.ProviderID, &s.StartTime, &s.EndTime, &date, &s.Capacity, &s.BookedCount, &s.Held, &heldFirst}, extra...)
	if err := r.Scan(dst...); err != nil {
		return err
	}
	s.Date = models.DateOf(date)
	if heldFirst != nil {
		s.HeldFirst = *heldFirst
	}
	s.SetStatus()
	return nil
}

const pgProviderColumns = "id, name, time_zone, slot_minutes, buffer_minutes, capacity, min_notice_minutes, working_hours, active, created_at, updated_at"

func scanProvider(r pgx.Row, p *models.Provider) error {
	var hours string
	if err := r.Scan(&p.ID, &p.Name, &p.TimeZone, &p.SlotMinutes, &p.BufferMinutes, &p.Capacity,
		&p.MinNoticeMinutes, &hours, &p.Active, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return err
	}
	return p.WorkingHours.Scan(hours)
}

const pgBookingColumns = "id, reference, slot_id, provider_id, start_time, end_time, customer, customer_id, status, idempotency_key, created_at, cancelled_at"

func scanBooking(r pgx.Row, b *models.Booking) error {
	return r.Scan(&b.ID, &b.Reference, &b.SlotID, &b.ProviderID, &b.StartTime, &b.EndTime, &b.Customer, &b.CustomerID,
		&b.Status, &b.IdempotencyKey, &b.CreatedAt, &b.CancelledAt)
}

const pgMoveColumns = "id, booking_id, from_slot_id, from_start_time, from_end_time, moved_at"

func scanMove(r pgx.Row, m *models.BookingMove) error {
	return r.Scan(&m.ID, &m.BookingID, &m.SlotID, &m.StartTime, &m.EndTime, &m.MovedAt)
}

const pgJobRunColumns = "id, job, tick, attempt, instance, started_at, lease_until, finished_at, outcome, details, error"

func scanJobRun(r pgx.Row, j *models.JobRun) error {
	return r.Scan(&j.ID, &j.Job, &j.Tick, &j.Attempt, &j.Instance, &j.StartedAt, &j.LeaseUntil, &j.FinishedAt, &j.Outcome, &j.Details, &j.Error)
}

func (s *pgStore) ping(ctx context.Context) error {
	_, err := pgExec(ctx, s.primary, "SELECT 1")
	return err
}

// batching: a COPY of 2,000 rows, two at a time, keeps both the server's
// and PostgreSQL's CPU busy with the peak RSS flat (bench/README.md).
func (s *pgStore) batching() (rows, writers int) { return 2000, 2 }

// ---- providers ----

// pgInsertProvider inserts p on q and sets its id.
func pgInsertProvider(ctx context.Context, q pgQuerier, p *models.Provider) error {
	hours, err := p.WorkingHours.Value()
	if err != nil {
		return err
	}
	return q.QueryRow(ctx, `INSERT INTO providers
		(name, time_zone, slot_minutes, buffer_minutes, capacity, min_notice_minutes, working_hours, active, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		p.Name, p.TimeZone, p.SlotMinutes, p.BufferMinutes, p.Capacity, p.MinNoticeMinutes, hours, p.Active,
		p.CreatedAt, p.UpdatedAt).Scan(&p.ID)
}

func (s *pgStore) createProvider(ctx context.Context, p *models.Provider) error {
	return withConn(ctx, s.primary, func(c *pgx.Conn) error { return pgInsertProvider(ctx, c, p) })
}

// pgUpdateProvider replaces a provider's settings ($1 its id) and answers
// its creation time and whether it was active: the row is locked first,
// so the old value is the one this update replaced.
var pgUpdateProvider = strings.Join(strings.Fields(`WITH old AS (
	SELECT id, active FROM providers WHERE id = $1 FOR UPDATE
), updated AS (
	UPDATE providers AS p
	   SET name = $2, time_zone = $3, slot_minutes = $4, buffer_minutes = $5, capacity = $6,
	       min_notice_minutes = $7, working_hours = $8, active = $9, updated_at = $10
	  FROM old WHERE p.id = old.id
	RETURNING p.created_at, old.active
)
SELECT * FROM updated`), " ")

func (s *pgStore) updateProvider(ctx context.Context, p *models.Provider) (wasActive bool, err error) {
	hours, err := p.WorkingHours.Value()
	if err != nil {
		return false, err
	}
	err = withConn(ctx, s.primary, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, pgUpdateProvider,
			p.ID, p.Name, p.TimeZone, p.SlotMinutes, p.BufferMinutes, p.Capacity, p.MinNoticeMinutes, hours, p.Active,
			p.UpdatedAt).Scan(&p.CreatedAt, &wasActive)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, errNoRows
	}
	return wasActive, err
}

func (s *pgStore) provider(ctx context.Context, id int64) (*models.Provider, error) {
	return readRow(ctx, s, scanProvider, "SELECT "+pgProviderColumns+" FROM providers WHERE id = $1", id)
}

func (s *pgStore) providersByID(ctx context.Context, ids []int64) ([]models.Provider, error) {
	return readRows(ctx, s, len(ids), scanProvider, "SELECT "+pgProviderColumns+" FROM providers WHERE id = ANY($1)", ids)
}

func (s *pgStore) listProviders(ctx context.Context, q providerQuery) ([]models.Provider, error) {
	const sel = "SELECT " + pgProviderColumns + " FROM providers "
	switch {
	case q.backward && q.after != nil:
		return readRows(ctx, s, q.limit, scanProvider, sel+"WHERE id < $1 ORDER BY id DESC LIMIT $2", *q.after, q.limit)
	case q.backward:
		return readRows(ctx, s, q.limit, scanProvider, sel+"ORDER BY id DESC LIMIT $1", q.limit)
	case q.after != nil:
		return readRows(ctx, s, q.limit, scanProvider, sel+"WHERE id > $1 ORDER BY id LIMIT $2", *q.after, q.limit)
	default:
		return readRows(ctx, s, q.limit, scanProvider, sel+"ORDER BY id LIMIT $1", q.limit)
	}
}

func (s *pgStore) countProviders(ctx context.Context) (int64, error) {
	n, err := readRow(ctx, s, pgValue[int64], "SELECT COUNT(*) FROM providers")
	if err != nil {
		return 0, err
	}
	return *n, nil
}

// ---- slots ----

func (s *pgStore) slot(ctx context.Context, id int64, now time.Time) (*models.TimeSlot, error) {
	return readRow(ctx, s, scanSlot, "SELECT "+pgSlotColumns+" FROM time_slots WHERE id = $2", now, id)
}

func (s *pgStore) slotsByID(ctx context.Context, ids []int64, now time.Time) ([]models.TimeSlot, error) {
	return readRows(ctx, s, len(ids), scanSlot, "SELECT "+pgSlotColumns+" FROM time_slots WHERE id = ANY($2)", now, ids)
}

// pgWhere is a WHERE clause being written: conditions that must all hold,
// each argument numbered where it is written.
type pgWhere struct {
	sql  strings.Builder
	args []any
}

// and writes one condition, from parts: SQL text and the placeholders arg
// gave.
func (w *pgWhere) and(parts ...string) {
	if w.sql.Len() > 0 {
		w.sql.WriteString(" AND ")
	}
	for _, p := range parts {
		w.sql.WriteString(p)
	}
}

// arg answers the placeholder of one more argument, v.
func (w *pgWhere) arg(v any) string {
	w.args = append(w.args, v)
	if n := len(w.args); n < len(pgParams) {
		return pgParams[n]
	}
	return "$" + strconv.Itoa(len(w.args))
}

// pgParams are the first placeholders, written once.
var pgParams = [...]string{"$0", "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15", "$16"}

// slots writes the conditions of c.
func (w *pgWhere) slots(c *slotConds) {
	w.args = append(w.args[:0], c.now) // $1, as pgSlotColumns wants
	if c.providerID != nil {
		w.and("provider_id = ", w.arg(*c.providerID))
	}
	if c.providerIDs != nil {
		w.and("provider_id = ANY(", w.arg(c.providerIDs), ")") // one int8[] parameter
	}
	// A seat is free when neither a booking nor a live hold takes it.
	switch c.states {
	case bookableSlots | fullSlots:
		w.and("((booked_count + ", pgHeld, " < capacity AND start_time > $1) OR booked_count + ", pgHeld, " >= capacity)")
	case bookableSlots:
		w.and("booked_count + ", pgHeld, " < capacity AND start_time > $1")
	default:
		w.and("booked_count + ", pgHeld, " >= capacity")
	}
	// The dates only filter the rows their start_time bounds (list.go)
	// let through. Of a provider's slots, PostgreSQL would AND a bitmap of
	// time_slots_date_idx (every provider's slots of those days) into its
	// scan of time_slots_provider_start_id_idx and sort what is left, as
	// it cannot know the two agree; as "date + 0" no index serves them, so
	// it walks the provider's slots in page order and stops at the page's
	// end (bench/README.md, "The listing's dates"). Without a provider it
	// walks time_slots_start_id_idx either way.
	date := "date"
	if c.providerID != nil || c.providerIDs != nil {
		date = pgDateFilter
	}
	if c.date != nil {
		w.and(date, " = ", w.arg(string(*c.date)))
	}
	if c.startDate != nil {
		w.and(date, " >= ", w.arg(string(*c.startDate)))
	}
	if c.endDate != nil {
		w.and(date, " <= ", w.arg(string(*c.endDate)))
	}
	if c.startFrom != nil {
		w.and("start_time >= ", w.arg(*c.startFrom))
	}
	if c.startBefore != nil {
		w.and("start_time < ", w.arg(*c.startBefore))
	}
}

// pgDateFilter is the slot's date as no index serves it (see slots).
const pgDateFilter = "date + 0"

func (s *pgStore) listSlots(ctx context.Context, q slotQuery) ([]models.TimeSlot, error) {
	query, args := pgListSQL(q)
	return readRows(ctx, s, q.limit, scanSlot, query, args...)
}

// pgListSQL writes the statement that lists the slots of q, and its
// arguments.
func pgListSQL(q slotQuery) (string, []any) {
	w := pgWhere{args: make([]any, 0, 10)}
	w.slots(&q.slotConds)
	order := " ORDER BY start_time, id LIMIT "
	switch {
	case q.backward && q.key != nil:
		w.and("(start_time, id) < (", w.arg(q.key.Start), ", ", w.arg(q.key.ID), ")")
		order = " ORDER BY start_time DESC, id DESC LIMIT "
	case q.backward:
		order = " ORDER BY start_time DESC, id DESC LIMIT "
	case q.key != nil:
		w.and("(start_time, id) > (", w.arg(q.key.Start), ", ", w.arg(q.key.ID), ")")
	}
	query := "SELECT " + pgSlotColumns + " FROM time_slots WHERE " + w.sql.String() + order + w.arg(q.limit)
	return query, w.args
}

func (s *pgStore) countSlots(ctx context.Context, c slotConds) (int64, error) {
	var w pgWhere
	w.slots(&c)
	n, err := readRow(ctx, s, pgValue[int64], "SELECT COUNT(*) FROM time_slots WHERE "+w.sql.String(), w.args...)
	if err != nil {
		return 0, err
	}
	return *n, nil
}

// ---- bookings ----

// pgClaimSeat is the conditional UPDATE that claims a seat of slot $2 at
// $1 if the slot can be booked then (a seat free of bookings and live
// holds, not started, outside its provider's minimum notice, the provider
// active), answering the slot as updated, or no row. Booking and
// rescheduling both claim with it.
const pgClaimSeat = `UPDATE time_slots
	   SET booked_count = booked_count + 1, version = version + 1, updated_at = $1
	 WHERE id = $2 AND booked_count + ` + pgClaimHeld + ` < capacity AND start_time > $1
	   AND EXISTS (SELECT 1 FROM providers AS p
	                WHERE p.id = time_slots.provider_id AND p.active
	                  AND time_slots.start_time - make_interval(mins => p.min_notice_minutes) >= $1)
	RETURNING ` + pgChangedColumns

// pgChangedColumns are pgSlotColumns and the version: what a statement
// that changes a slot's seats answers, for the change feed.
const pgChangedColumns = pgSlotColumns + ", version"

// bookStatement claims a seat and records the booking in one statement, so
// a booking costs one round trip and one implicit transaction: the claim
// (pgClaimSeat) and the INSERT of the booking commit or fail together. It
// answers the slot as updated and the booking's id, or no row when the
// slot cannot be claimed. It is sent (and logged) as one line; its
// parameters are $1 now, $2 the slot, $3 the customer, $4 the booking's
// status, $5 the idempotency key, $6 the reference and $7 the owner (NULL
// for none).
var bookStatement = strings.Join(strings.Fields(`WITH claimed AS (`+pgClaimSeat+`
), booked AS (
	INSERT INTO bookings (slot_id, provider_id, start_time, end_time, customer, status, idempotency_key, created_at, reference, customer_id)
	SELECT id, provider_id, start_time, end_time, $3, $4, $5, $1, $6, $7 FROM claimed
	RETURNING id
)
SELECT claimed.*, booked.id FROM claimed, booked`), " ")

func (s *pgStore) bookSeat(ctx context.Context, in BookInput, ref string, now time.Time, ev bookEvent) (*models.Booking, *models.TimeSlot, error) {
	var slot models.TimeSlot
	var bookingID int64
	query, args := bookStatement, []any{now, in.SlotID, in.Customer,
		string(models.BookingConfirmed), optional(in.IdempotencyKey), ref, optional(in.CustomerID)}
	hook := ev.hook
	if ev.inline != nil {
		recordSQL, recordArgs, ok, err := ev.inline(len(args) + 1)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			// The event is recorded by the statement itself.
			query, args, hook = bookRecordingStatement(recordSQL), append(args, recordArgs...), nil
		}
	}
	book := func(q pgQuerier) error {
		return scanSlotAnd(q.QueryRow(ctx, query, args...), &slot, &slot.Version, &bookingID)
	}
	var err error
	var booking *models.Booking
	if hook == nil {
		// One statement, one implicit transaction: no BEGIN and COMMIT.
		err = withConn(ctx, s.primary, func(c *pgx.Conn) error { return book(c) })
	} else {
		ch := &txChange{slot: &slot}
		err = pgTx(ctx, s.primary, hook.with(ctx, ch), func(q pgTxQuerier) error {
			if err := book(q); err != nil {
				return err
			}
			booking = newBooking(&slot, in, ref, now, bookingID)
			ch.changed, ch.booking = true, booking
			return nil
		})
	}
	if err == nil {
		if booking == nil {
			booking = newBooking(&slot, in, ref, now, bookingID)
		}
		return booking, &slot, nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, errNotClaimed
	}
	return nil, nil, uniqueRefusal(err)
}

// bookRecordingStatement is bookStatement with record, a StatementOutbox's
// data-modifying statement, in its WITH clause: PostgreSQL runs it
// whether or not the final SELECT reads it, in the same implicit
// transaction, and it writes nothing when no seat was claimed.
func bookRecordingStatement(record string) string {
	return strings.Replace(bookStatement, ") SELECT claimed.*, booked.id FROM",
		"), recorded AS ("+strings.Join(strings.Fields(record), " ")+") SELECT claimed.*, booked.id FROM", 1)
}

// uniqueRefusal answers what a booking write's failure err means to the
// manager when it violates one of a booking's unique indexes
// (errKeyTaken, errSeatHeld); any other err as it is.
func uniqueRefusal(err error) error {
	if index, ok := database.IsUniqueViolation(err); ok {
		switch index {
		case database.UniqueBookingKey, database.UniqueOwnerBookingKey:
			return errKeyTaken
		case database.UniqueCustomerSeat:
			return errSeatHeld
		}
	}
	return err
}

func (s *pgStore) bookability(ctx context.Context, id int64) (bookability, error) {
	b, err := pgRow(ctx, s.primary, func(r pgx.Row, b *bookability) error {
		return r.Scan(&b.start, &b.minNotice, &b.active)
	}, `SELECT s.start_time, p.min_notice_minutes, p.active
		FROM time_slots AS s JOIN providers AS p ON p.id = s.provider_id WHERE s.id = $1`, id)
	if err != nil {
		return bookability{}, err
	}
	return *b, nil
}

func (s *pgStore) booking(ctx context.Context, id int64) (*models.Booking, error) {
	return pgRow(ctx, s.primary, scanBooking, "SELECT "+pgBookingColumns+" FROM bookings WHERE id = $1", id)
}

func (s *pgStore) bookingByReference(ctx context.Context, ref string) (*models.Booking, error) {
	return pgRow(ctx, s.primary, scanBooking, "SELECT "+pgBookingColumns+" FROM bookings WHERE reference = $1", ref)
}

func (s *pgStore) bookingsByID(ctx context.Context, ids []int64) ([]models.Booking, error) {
	return pgRows(ctx, s.primary, len(ids), scanBooking, "SELECT "+pgBookingColumns+" FROM bookings WHERE id = ANY($1)", ids)
}

func (s *pgStore) bookingsByReference(ctx context.Context, refs []string) ([]models.Booking, error) {
	return pgRows(ctx, s.primary, len(refs), scanBooking, "SELECT "+pgBookingColumns+" FROM bookings WHERE reference = ANY($1)", refs)
}

func (s *pgStore) bookingByKey(ctx context.Context, key, customerID string) (*models.Booking, error) {
	if customerID == "" {
		return pgRow(ctx, s.primary, scanBooking, "SELECT "+pgBookingColumns+
			" FROM bookings WHERE idempotency_key = $1 AND customer_id IS NULL", key)
	}
	return pgRow(ctx, s.primary, scanBooking, "SELECT "+pgBookingColumns+
		" FROM bookings WHERE customer_id = $2 AND idempotency_key = $1", key, customerID)
}

func (s *pgStore) cancelBooking(ctx context.Context, id, slotID int64, now time.Time, hook txHook) (cancelled bool, freed *models.TimeSlot, err error) {
	ch := &txChange{}
	err = pgTx(ctx, s.primary, hook.with(ctx, ch), func(tx pgTxQuerier) error {
		tag, err := tx.Exec(ctx, "UPDATE bookings SET status = $2, cancelled_at = $3 WHERE id = $1 AND status = $4 AND slot_id = $5",
			id, string(models.BookingCancelled), now, string(models.BookingConfirmed), slotID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		var slot models.TimeSlot
		err = scanFreed(ctx, tx, now, tx.QueryRow(ctx, `UPDATE time_slots
			SET booked_count = booked_count - 1, version = version + 1, updated_at = $1
			WHERE id = $2 AND booked_count > 0
			RETURNING `+pgChangedColumns, now, slotID), &slot)
		switch {
		case err == nil:
			freed = &slot
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		cancelled, ch.changed, ch.slot = true, true, freed
		return nil
	})
	if err != nil {
		return false, nil, err
	}
	return cancelled, freed, nil
}

// scanFreed scans into s the answer of a statement of q that freed a seat
// of slot s without claiming one (a cancellation, a move's old slot, a
// hold released or booked): pgChangedColumns (or pgEndedColumns), then
// the version, then extra. When the slot's summary left its live holds to
// slot_holds (its first expiry passed), it counts them again in a
// statement of its own: the freeing statement read slot_holds from the
// snapshot it took before it waited for the slot's row, so a hold that
// committed meanwhile was in the summary it answered but not in the count.
// Inside a transaction the new count is exactly the change's, as the
// slot's row stays locked until the end; after a statement of its own it
// may also see a hold committed since, whose own event follows. A claim
// needs none of this: it refuses a slot whose summary leaves the count to
// slot_holds (pgClaimHeld).
func scanFreed(ctx context.Context, q pgQuerier, now time.Time, row pgx.Row, s *models.TimeSlot, extra ...any) error {
	if err := scanSlotAnd(row, s, append([]any{&s.Version}, extra...)...); err != nil {
		return err
	}
	if s.HeldFirst.IsZero() || s.HeldFirst.After(now) {
		return nil
	}
	if err := q.QueryRow(ctx, "SELECT "+pgHeld+" FROM time_slots WHERE id = $2", now, s.ID).Scan(&s.Held); err != nil {
		return err
	}
	s.SetStatus()
	return nil
}

// pgMoveStatement claims a seat of the new slot (pgClaimSeat) and moves
// the booking there in one statement: $1 now, $2 the new slot, $3 the
// booking, $4 its slot as read, $5 the confirmed status. It answers the new
// slot as updated and the booking's id, which is NULL when the booking is
// no longer confirmed in slot $4; no row when no seat was claimed.
var pgMoveStatement = strings.Join(strings.Fields(`WITH claimed AS (`+pgClaimSeat+`
), moved AS (
	UPDATE bookings AS b
	   SET slot_id = c.id, provider_id = c.provider_id, start_time = c.start_time, end_time = c.end_time
	  FROM claimed AS c
	 WHERE b.id = $3 AND b.status = $5 AND b.slot_id = $4
	RETURNING b.id
)
SELECT claimed.*, moved.id FROM claimed LEFT JOIN moved ON true`), " ")

// pgFreeStatement frees the booking's old seat and records the move: $1
// now, $2 the old slot, $3 the booking, $4 and $5 the old slot's times. It
// answers the old slot as updated, or no row when it had no seat to free.
var pgFreeStatement = strings.Join(strings.Fields(`WITH freed AS (
	UPDATE time_slots
	   SET booked_count = booked_count - 1, version = version + 1, updated_at = $1
	 WHERE id = $2 AND booked_count > 0
	RETURNING `+pgChangedColumns+`
), recorded AS (
	INSERT INTO booking_moves (booking_id, from_slot_id, from_start_time, from_end_time, moved_at)
	VALUES ($3, $2, $4, $5, $1)
)
SELECT * FROM freed`), " ")

func (s *pgStore) rescheduleSeat(ctx context.Context, b *models.Booking, slotID int64, now time.Time, hook txHook) (slot, previous *models.TimeSlot, err error) {
	ch := &txChange{}
	err = pgTx(ctx, s.primary, hook.with(ctx, ch), func(tx pgTxQuerier) error {
		var claimed models.TimeSlot
		var moved *int64
		err := scanSlotAnd(tx.QueryRow(ctx, pgMoveStatement, now, slotID, b.ID, *b.SlotID,
			string(models.BookingConfirmed)), &claimed, &claimed.Version, &moved)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return errNotClaimed
		case err != nil:
			if index, ok := database.IsUniqueViolation(err); ok && index == database.UniqueCustomerSeat {
				return errSeatHeld
			}
			return err
		case moved == nil:
			return errBookingChanged // the claim rolls back with the transaction
		}
		slot = &claimed
		var freed models.TimeSlot
		err = scanFreed(ctx, tx, now, tx.QueryRow(ctx, pgFreeStatement, now, *b.SlotID, b.ID, b.StartTime, b.EndTime), &freed)
		switch {
		case err == nil:
			previous = &freed
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		ch.changed, ch.slot, ch.previous = true, slot, previous
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return slot, previous, nil
}

// bookings writes the conditions of c.
func (w *pgWhere) bookings(c *bookingConds) {
	if c.providerID != nil {
		w.and("provider_id = ", w.arg(*c.providerID))
	}
	if c.slotID != nil {
		w.and("slot_id = ", w.arg(*c.slotID))
	}
	if c.status != nil {
		w.and("status = ", w.arg(string(*c.status)))
	}
	if c.startFrom != nil {
		w.and("start_time >= ", w.arg(*c.startFrom))
	}
	if c.startBefore != nil {
		w.and("start_time < ", w.arg(*c.startBefore))
	}
	if c.customer != nil {
		w.and("customer = ", w.arg(*c.customer))
	}
	if c.customerID != nil {
		w.and("customer_id = ", w.arg(*c.customerID))
	}
}

func (s *pgStore) listBookings(ctx context.Context, q bookingQuery) ([]models.Booking, error) {
	w := pgWhere{args: make([]any, 0, 10)}
	w.bookings(&q.bookingConds)
	order := " ORDER BY start_time, id LIMIT "
	switch {
	case q.backward && q.key != nil:
		w.and("(start_time, id) < (", w.arg(q.key.Start), ", ", w.arg(q.key.ID), ")")
		order = " ORDER BY start_time DESC, id DESC LIMIT "
	case q.backward:
		order = " ORDER BY start_time DESC, id DESC LIMIT "
	case q.key != nil:
		w.and("(start_time, id) > (", w.arg(q.key.Start), ", ", w.arg(q.key.ID), ")")
	}
	where := ""
	if w.sql.Len() > 0 {
		where = " WHERE " + w.sql.String()
	}
	query := "SELECT " + pgBookingColumns + " FROM bookings" + where + order + w.arg(q.limit)
	return pgRows(ctx, s.primary, q.limit, scanBooking, query, w.args...)
}

func (s *pgStore) bookingMoves(ctx context.Context, ids []int64) ([]models.BookingMove, error) {
	return pgRows(ctx, s.primary, len(ids), scanMove, "SELECT "+pgMoveColumns+
		" FROM booking_moves WHERE booking_id = ANY($1) ORDER BY booking_id, id", ids)
}

func (s *pgStore) eraseCustomer(ctx context.Context, customerID, customer *string) (int64, error) {
	const erase = "UPDATE bookings SET customer = 'erased-' || id, customer_id = NULL, idempotency_key = NULL WHERE "
	if customerID != nil {
		return pgExec(ctx, s.primary, erase+"customer_id = $1", *customerID)
	}
	return pgExec(ctx, s.primary, erase+"customer = $1", *customer)
}

// ---- generation, seeding, cleanup, statistics ----

func (s *pgStore) providerIDs(ctx context.Context, ids []int64) ([]int64, error) {
	return pgRows(ctx, s.primary, len(ids), pgValue[int64], "SELECT id FROM providers WHERE id = ANY($1)", ids)
}

func (s *pgStore) countActiveProviders(ctx context.Context, ids []int64) (int64, error) {
	var n *int64
	var err error
	if ids == nil {
		n, err = pgRow(ctx, s.primary, pgValue[int64], "SELECT COUNT(*) FROM providers WHERE active")
	} else {
		n, err = pgRow(ctx, s.primary, pgValue[int64], "SELECT COUNT(*) FROM providers WHERE active AND id = ANY($1)", ids)
	}
	if err != nil {
		return 0, err
	}
	return *n, nil
}

func (s *pgStore) activeProviders(ctx context.Context, ids []int64, after int64, limit int) ([]models.Provider, error) {
	const sel = "SELECT " + pgProviderColumns + " FROM providers WHERE active AND id > $1 "
	if ids == nil {
		return pgRows(ctx, s.primary, limit, scanProvider, sel+"ORDER BY id LIMIT $2", after, limit)
	}
	return pgRows(ctx, s.primary, limit, scanProvider, sel+"AND id = ANY($3) ORDER BY id LIMIT $2", after, limit, ids)
}

// demand probes the (provider_id, start_time, id) index twice per
// provider, through LATERAL joins: once backwards for the last slot, then
// over the slots of the days before it (bench/README.md). The window's
// upper bound, the last slot itself, filters nothing: it tells the planner
// that the range is narrow, which keeps the statement's estimated cost
// under jit_above_cost (with a one-sided range PostgreSQL 15 JIT-compiled
// it for 1,000 providers, at 330 ms of the query's 530).
func (s *pgStore) demand(ctx context.Context, ids []int64) ([]slotDemand, error) {
	return readRows(ctx, s, len(ids), func(r pgx.Row, d *slotDemand) error {
		var last time.Time
		err := r.Scan(&d.providerID, &last, &d.seats, &d.booked)
		d.last = models.DateOf(last)
		return err
	}, `SELECT p.id, l.date, w.seats, w.booked
		  FROM unnest($1::bigint[]) AS p (id)
		 CROSS JOIN LATERAL (SELECT start_time, date FROM time_slots
		                      WHERE provider_id = p.id ORDER BY start_time DESC LIMIT 1) AS l
		 CROSS JOIN LATERAL (SELECT COALESCE(SUM(capacity), 0) AS seats, COALESCE(SUM(booked_count), 0) AS booked
		                       FROM time_slots
		                      WHERE provider_id = p.id AND start_time > l.start_time - $2::int * interval '1 hour'
		                        AND start_time <= l.start_time AND date > l.date - $3::int) AS w`,
		ids, int(demandLookback/time.Hour), DemandWindowDays)
}

func (s *pgStore) slotSpans(ctx context.Context, dst spans, provider int64, from, to time.Time) (spans, error) {
	err := withConn(ctx, s.primary, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT start_time, end_time FROM time_slots
			WHERE provider_id = $1 AND start_time > $2 AND start_time < $3 ORDER BY start_time`, provider, from, to)
		if err != nil {
			return err
		}
		defer rows.Close()
		var start, end time.Time
		for rows.Next() {
			if err := rows.Scan(&start, &end); err != nil {
				return err
			}
			dst = append(dst, span{start.UnixMicro(), end.UnixMicro()})
		}
		return rows.Err()
	})
	return dst, err
}

// newSlotColumns are the columns of time_slots a newSlot fills, in the
// order newSlotSource gives them; the others take their defaults.
var newSlotColumns = []string{"provider_id", "start_time", "end_time", "date", "capacity", "created_at", "updated_at"}

// insertSlots writes rows with one COPY, the cheapest way into PostgreSQL
// for the database (no statement to parse and plan for each batch) and for
// the server (values are encoded straight from the rows). COPY has no ON
// CONFLICT, so a batch that meets an existing slot (the unique key) or
// overlaps one (the guard after each statement) is refused whole, with
// nothing written.
func (s *pgStore) insertSlots(ctx context.Context, rows []newSlot) ([]slotRange, error) {
	err := withConn(ctx, s.primary, func(c *pgx.Conn) error {
		n, err := c.CopyFrom(ctx, pgx.Identifier{"time_slots"}, newSlotColumns, &newSlotSource{rows: rows, i: -1})
		if err == nil && int(n) != len(rows) {
			err = fmt.Errorf("COPY wrote %d of %d rows", n, len(rows))
		}
		return err
	})
	if err != nil {
		return nil, pgSlotsTaken(err)
	}
	return newSlotRanges(rows), nil
}

// resendSlots writes rows with one INSERT … ON CONFLICT DO NOTHING, which
// skips a row whose provider and start exist; the guard still refuses the
// statement if a row overlaps another slot. The rows go as one array per
// column, so the statement is the same for every batch.
func (s *pgStore) resendSlots(ctx context.Context, rows []newSlot) ([]slotRange, error) {
	providers := make([]int64, len(rows))
	starts, ends, dates, stamps := make([]time.Time, len(rows)), make([]time.Time, len(rows)), make([]time.Time, len(rows)), make([]time.Time, len(rows))
	updates := make([]time.Time, len(rows))
	capacities := make([]int32, len(rows))
	for i, r := range rows {
		providers[i], starts[i], ends[i], dates[i] = r.ProviderID, r.StartTime, r.EndTime, r.Date.Time()
		capacities[i], stamps[i], updates[i] = int32(r.Capacity), r.CreatedAt, r.UpdatedAt
	}
	written, err := pgRanges(ctx, s.primary, `INSERT INTO time_slots (`+strings.Join(newSlotColumns, ", ")+`)
		SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::date[], $5::integer[], $6::timestamptz[], $7::timestamptz[])
		ON CONFLICT DO NOTHING
		RETURNING provider_id, start_time, end_time`, providers, starts, ends, dates, capacities, stamps, updates)
	return written, pgSlotsTaken(err)
}

// pgRanges runs query, whose rows are (provider_id, start_time, end_time)
// of the slots it wrote or deleted, and sums them up by provider.
func pgRanges(ctx context.Context, pool *sql.DB, query string, args ...any) ([]slotRange, error) {
	var rs rangeSet
	err := withConn(ctx, pool, func(c *pgx.Conn) error {
		var provider int64
		var start, end time.Time
		rows, err := c.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		_, err = pgx.ForEachRow(rows, []any{&provider, &start, &end}, func() error {
			rs.add(provider, start, end)
			return nil
		})
		return err
	})
	return rs.ranges, err
}

// pgSlotsTaken answers errSlotsTaken, with err, when err is the refusal of
// a batch that meets an existing slot: its unique key or the overlap guard.
func pgSlotsTaken(err error) error {
	if index, ok := database.IsUniqueViolation(err); ok && index == database.UniqueSlotStart || database.IsExclusionViolation(err) {
		return fmt.Errorf("%w: %w", errSlotsTaken, err)
	}
	return err
}

// newSlotSource hands rows to pgx's CopyFrom one at a time.
type newSlotSource struct {
	rows []newSlot
	i    int
	vals [7]any
}

func (s *newSlotSource) Next() bool { s.i++; return s.i < len(s.rows) }
func (s *newSlotSource) Err() error { return nil }

func (s *newSlotSource) Values() ([]any, error) {
	r := &s.rows[s.i]
	// The date goes as midnight UTC of the calendar date (models.DateOf
	// made it), which pgx writes as that DATE in the binary protocol.
	s.vals = [7]any{r.ProviderID, r.StartTime, r.EndTime, r.Date.Time(), r.Capacity, r.CreatedAt, r.UpdatedAt}
	return s.vals[:], nil
}

// seedLockID names the advisory lock that serialises seeding: two READ
// COMMITTED transactions would both see no provider.
const seedLockID = 0x74736c6f74736564 // "tslotsed"

func (s *pgStore) seedProviders(ctx context.Context, ps []models.Provider) ([]int64, error) {
	var ids []int64
	err := withConn(ctx, s.primary, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			var exists bool
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(seedLockID)); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM providers)").Scan(&exists); err != nil || exists {
				return err
			}
			for i := range ps {
				if err := pgInsertProvider(ctx, tx, &ps[i]); err != nil {
					return err
				}
				ids = append(ids, ps[i].ID)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func (s *pgStore) deleteEndedSlots(ctx context.Context, cutoff time.Time, limit int) ([]slotRange, error) {
	// end_time < cutoff implies start_time < cutoff: the start bound lets
	// the (start_time, id) index find the batch.
	return pgRanges(ctx, s.primary, `DELETE FROM time_slots WHERE id IN (
		SELECT id FROM time_slots WHERE start_time < $1 AND end_time < $1 ORDER BY start_time, id LIMIT $2)
		RETURNING provider_id, start_time, end_time`, cutoff, limit)
}

func (s *pgStore) statsRows(ctx context.Context, daysFrom models.Date, now time.Time) (*statsRows, error) {
	var out *statsRows
	err := s.read(ctx, func(pool *sql.DB) error {
		out = &statsRows{}
		return withConn(ctx, pool, func(c *pgx.Conn) error { return pgStatsRows(ctx, c, daysFrom, now, out) })
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// pgStatsRows reads what Stats computes its figures from into out, on c.
func pgStatsRows(ctx context.Context, c *pgx.Conn, daysFrom models.Date, now time.Time, out *statsRows) error {
	var err error
	if out.providers, err = pgCollect(ctx, c, 16, scanProvider, "SELECT "+pgProviderColumns+" FROM providers ORDER BY id"); err != nil {
		return err
	}
	out.totals, err = pgCollect(ctx, c, len(out.providers), func(r pgx.Row, t *slotTotals) error {
		var horizon time.Time
		err := r.Scan(&t.providerID, &t.slots, &t.full, &t.seats, &t.taken, &horizon)
		t.horizon = models.DateOf(horizon)
		return err
	}, `SELECT provider_id, COUNT(*), COUNT(*) FILTER (WHERE booked_count + `+pgHeld+` >= capacity),
		SUM(capacity), SUM(booked_count + `+pgHeld+`), MAX(date) FROM time_slots GROUP BY provider_id`, now)
	if err != nil {
		return err
	}
	// The first and last slot by the (start_time, id) index.
	if err := c.QueryRow(ctx, `SELECT (SELECT start_time FROM time_slots ORDER BY start_time, id LIMIT 1),
		(SELECT start_time FROM time_slots ORDER BY start_time DESC, id DESC LIMIT 1)`).Scan(&out.first, &out.last); err != nil {
		return err
	}
	out.days, err = pgCollect(ctx, c, 64, func(r pgx.Row, d *providerDate) error {
		var date time.Time
		err := r.Scan(&d.providerID, &date, &d.slots, &d.seats, &d.taken)
		d.date = models.DateOf(date)
		return err
	}, `SELECT provider_id, date, COUNT(*), SUM(capacity), SUM(booked_count + `+pgHeld+`) FROM time_slots
		WHERE date >= $2 GROUP BY provider_id, date`, now, string(daysFrom))
	return err
}

// ---- job runs ----

func (s *pgStore) claimJobRun(ctx context.Context, run *models.JobRun) (bool, error) {
	id, err := pgRow(ctx, s.primary, pgValue[int64], `INSERT INTO job_runs (job, tick, attempt, instance, started_at, lease_until, finished_at, outcome, details, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (job, tick, attempt) DO NOTHING RETURNING id`,
		run.Job, run.Tick, run.Attempt, run.Instance, run.StartedAt, run.LeaseUntil, run.FinishedAt, string(run.Outcome), run.Details, run.Error)
	if errors.Is(err, errNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	run.ID = *id
	return true, nil
}

func (s *pgStore) renewJobRun(ctx context.Context, id int64, until time.Time) (bool, error) {
	n, err := pgExec(ctx, s.primary, "UPDATE job_runs SET lease_until = $2 WHERE id = $1 AND outcome = 'running'", id, until)
	return n == 1, err
}

func (s *pgStore) finishJobRun(ctx context.Context, id int64, at time.Time, outcome models.JobOutcome, details, errText string) (bool, error) {
	n, err := pgExec(ctx, s.primary, `UPDATE job_runs SET finished_at = $2, outcome = $3, details = $4, error = $5
		WHERE id = $1 AND outcome = 'running'`,
		id, at, string(outcome), details, errText)
	return n == 1, err
}

func (s *pgStore) interruptLapsedJobRuns(ctx context.Context, at time.Time, errText string) (int, error) {
	n, err := pgExec(ctx, s.primary, `UPDATE job_runs SET outcome = 'interrupted', finished_at = $1, error = $2
		WHERE outcome = 'running' AND lease_until < $1`, at, errText)
	return int(n), err
}

func (s *pgStore) lastJobRuns(ctx context.Context) ([]models.JobRun, error) {
	return pgRows(ctx, s.primary, 4, scanJobRun, "SELECT "+pgJobRunColumns+
		" FROM job_runs WHERE id IN (SELECT MAX(id) FROM job_runs GROUP BY job) ORDER BY job")
}

func (s *pgStore) recentJobRuns(ctx context.Context, limit int) ([]models.JobRun, error) {
	return pgRows(ctx, s.primary, limit, scanJobRun, "SELECT "+pgJobRunColumns+
		" FROM job_runs ORDER BY started_at DESC, id DESC LIMIT $1", limit)
}

func (s *pgStore) lastSucceededTick(ctx context.Context, job string) (time.Time, error) {
	// The (job, tick) key read backwards: it stops at the latest success.
	tick, err := pgRow(ctx, s.primary, pgValue[time.Time],
		"SELECT tick FROM job_runs WHERE job = $1 AND outcome = $2 ORDER BY tick DESC LIMIT 1", job, string(models.JobSucceeded))
	if err != nil {
		return time.Time{}, err
	}
	return *tick, nil
}

func (s *pgStore) pruneJobRuns(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := pgExec(ctx, s.primary, "DELETE FROM job_runs WHERE started_at < $1", cutoff)
	return int(n), err
}

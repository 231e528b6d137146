package slots

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"timeslots/internal/database"
	"timeslots/models"
)

// sqliteStore is the store on SQLite, through GORM. SQLite runs one write
// transaction at a time and every transaction takes the write lock at
// BEGIN (database.Open's _txlock=immediate), so a transaction that reads
// and then writes sees nothing change in between.
type sqliteStore struct {
	db *gorm.DB
}

func newSQLiteStore(db *gorm.DB) *sqliteStore { return &sqliteStore{db: db} }

// sqliteSlotColumns are the columns of time_slots the store reads, in the
// order sqliteSlots scans them: what the manager answers of a slot, its
// live holds (sqliteHeld) last, whose placeholders take heldAt's arguments.
// The version and the timestamps stay unread; decoding them costs a
// listing more than the rest.
const sqliteSlotColumns = "id, provider_id, start_time, end_time, date, capacity, booked_count, " + sqliteHeld + ", held_first"

// sqliteHeld counts the slot's live holds at now, its three placeholders
// (heldAt), from its hold summary (see migrations/postgres/00008_slot_holds.sql),
// and from slot_holds only for a slot some of whose holds expired since
// the summary was written.
const sqliteHeld = `CASE WHEN held_until IS NULL OR held_until <= ? THEN 0 WHEN held_first > ? THEN held_count
	ELSE (SELECT count(*) FROM slot_holds AS h WHERE h.slot_id = time_slots.id AND h.status = 'held' AND h.expires_at > ?) END`

// sqliteClaimHeld is sqliteHeld for a claim, two placeholders (heldAt):
// the summary's live holds when it tells them exactly, and capacity (no
// seat) when it does not, which refuses the claim until the summary is
// recounted (recountHolds), as on PostgreSQL.
const sqliteClaimHeld = `CASE WHEN held_until IS NULL OR held_until <= ? THEN 0 WHEN held_first > ? THEN held_count ELSE capacity END`

// heldAt answers now n times: the arguments of sqliteHeld (3) or
// sqliteClaimHeld (2).
func heldAt(now time.Time, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = now
	}
	return out
}

// sqliteSlots runs q, which selects sqliteSlotColumns, and reads its rows;
// capacity sizes the result. It scans by hand what Find would by
// reflection on every row and column, the larger part of a listing's CPU.
func sqliteSlots(q *gorm.DB, capacity int) ([]models.TimeSlot, error) {
	rows, err := q.Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]models.TimeSlot, 0, capacity)
	for rows.Next() {
		var s models.TimeSlot
		var heldFirst *time.Time
		if err := rows.Scan(&s.ID, &s.ProviderID, &s.StartTime, &s.EndTime, &s.Date, &s.Capacity, &s.BookedCount, &s.Held, &heldFirst); err != nil {
			return nil, err
		}
		if heldFirst != nil {
			s.HeldFirst = *heldFirst
		}
		s.SetStatus()
		out = append(out, s)
	}
	return out, rows.Err()
}

// sqliteChangedColumns are sqliteSlotColumns and the version: what a
// statement that changes a slot's seats answers, for the change feed.
const sqliteChangedColumns = sqliteSlotColumns + ", version"

// sqliteChanged runs q, an UPDATE … RETURNING sqliteChangedColumns of at
// most one slot, and answers the slot as changed, or errNoRows.
func sqliteChanged(q *gorm.DB) (*models.TimeSlot, error) {
	rows, err := q.Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, errNoRows
	}
	var s models.TimeSlot
	var heldFirst *time.Time
	if err := rows.Scan(&s.ID, &s.ProviderID, &s.StartTime, &s.EndTime, &s.Date, &s.Capacity, &s.BookedCount, &s.Held, &heldFirst, &s.Version); err != nil {
		return nil, err
	}
	if heldFirst != nil {
		s.HeldFirst = *heldFirst
	}
	s.SetStatus()
	return &s, rows.Close()
}

// sqliteOne is the first of rows, or errNoRows.
func sqliteOne[T any](rows []T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, errNoRows
	}
	return &rows[0], nil
}

// sqliteFirst loads the row of T with id, or errNoRows.
func sqliteFirst[T any](db *gorm.DB, id int64) (*T, error) {
	var row T
	err := db.First(&row, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errNoRows
	}
	if err != nil {
		return nil, err
	}
	return &row, nil
}

func (s *sqliteStore) ping(ctx context.Context) error {
	return s.db.WithContext(ctx).Exec("SELECT 1").Error
}

// batching: the pure-Go driver binds an INSERT's parameters in time
// quadratic in their number, so about 100 rows a statement is fastest, and
// SQLite has one writer at a time anyway.
func (s *sqliteStore) batching() (rows, writers int) { return 100, 1 }

// ---- providers ----

func (s *sqliteStore) createProvider(ctx context.Context, p *models.Provider) error {
	return s.db.WithContext(ctx).Create(p).Error
}

func (s *sqliteStore) updateProvider(ctx context.Context, p *models.Provider) (wasActive bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		old, err := sqliteFirst[models.Provider](tx.Select("created_at", "active"), p.ID)
		if err != nil {
			return err
		}
		p.CreatedAt, wasActive = old.CreatedAt, old.Active
		return tx.Select("*").Omit("created_at").Save(p).Error
	})
	return wasActive, err
}

func (s *sqliteStore) provider(ctx context.Context, id int64) (*models.Provider, error) {
	return sqliteFirst[models.Provider](s.db.WithContext(ctx), id)
}

func (s *sqliteStore) providersByID(ctx context.Context, ids []int64) ([]models.Provider, error) {
	rows := make([]models.Provider, 0, len(ids))
	return rows, s.db.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error
}

func (s *sqliteStore) listProviders(ctx context.Context, q providerQuery) ([]models.Provider, error) {
	db := s.db.WithContext(ctx).Model(&models.Provider{})
	switch {
	case q.backward && q.after != nil:
		db = db.Where("id < ?", *q.after).Order("id DESC")
	case q.backward:
		db = db.Order("id DESC")
	case q.after != nil:
		db = db.Where("id > ?", *q.after).Order("id")
	default:
		db = db.Order("id")
	}
	rows := make([]models.Provider, 0, q.limit)
	return rows, db.Limit(q.limit).Find(&rows).Error
}

func (s *sqliteStore) countProviders(ctx context.Context) (int64, error) {
	var n int64
	return n, s.db.WithContext(ctx).Model(&models.Provider{}).Count(&n).Error
}

// ---- slots ----

func (s *sqliteStore) slot(ctx context.Context, id int64, now time.Time) (*models.TimeSlot, error) {
	return sqliteSlotAt(s.db.WithContext(ctx), id, now)
}

// sqliteSlotAt reads slot id with its live holds at now, on db (a
// transaction, or the pool).
func sqliteSlotAt(db *gorm.DB, id int64, now time.Time) (*models.TimeSlot, error) {
	return sqliteOne(sqliteSlots(db.Raw("SELECT "+sqliteSlotColumns+" FROM time_slots WHERE id = ?", append(heldAt(now, 3), id)...), 1))
}

func (s *sqliteStore) slotsByID(ctx context.Context, ids []int64, now time.Time) ([]models.TimeSlot, error) {
	return sqliteSlots(s.db.WithContext(ctx).Raw("SELECT "+sqliteSlotColumns+" FROM time_slots WHERE id IN ?", append(heldAt(now, 3), ids)...), len(ids))
}

// sqliteWhere is a WHERE clause being written: conditions that must all
// hold, with ? placeholders, and their arguments in order. GORM binds a
// slice argument as one placeholder per element.
type sqliteWhere struct {
	sql  strings.Builder
	args []any
}

func (w *sqliteWhere) and(cond string, args ...any) {
	if w.sql.Len() > 0 {
		w.sql.WriteString(" AND ")
	}
	w.sql.WriteString(cond)
	w.args = append(w.args, args...)
}

// slots writes the conditions of c.
func (w *sqliteWhere) slots(c *slotConds) {
	if c.providerID != nil {
		// The unary plus keeps SQLite from compiling the listing twice
		// (see sqliteListSQL).
		w.and("provider_id = +?", *c.providerID)
	}
	if c.providerIDs != nil {
		w.and("provider_id IN ?", c.providerIDs)
	}
	// A seat is free when neither a booking nor a live hold takes it.
	switch c.states {
	case bookableSlots | fullSlots:
		w.and("((booked_count + "+sqliteHeld+" < capacity AND start_time > ?) OR booked_count + "+sqliteHeld+" >= capacity)",
			append(append(heldAt(c.now, 3), c.now), heldAt(c.now, 3)...)...)
	case bookableSlots:
		w.and("(booked_count + "+sqliteHeld+" < capacity AND start_time > ?)", heldAt(c.now, 4)...)
	default:
		w.and("booked_count + "+sqliteHeld+" >= capacity", heldAt(c.now, 3)...)
	}
	if c.date != nil {
		w.and("date = ?", string(*c.date))
	}
	if c.startDate != nil {
		w.and("date >= ?", string(*c.startDate))
	}
	if c.endDate != nil {
		w.and("date <= ?", string(*c.endDate))
	}
	if c.startFrom != nil {
		w.and("start_time >= ?", *c.startFrom)
	}
	if c.startBefore != nil {
		w.and("start_time < ?", *c.startBefore)
	}
}

func (s *sqliteStore) listSlots(ctx context.Context, q slotQuery) ([]models.TimeSlot, error) {
	query, args := sqliteListSQL(q)
	return sqliteSlots(s.db.WithContext(ctx).Raw(query, args...), q.limit)
}

// sqliteListSQL writes the statement of listing q and its arguments.
//
// The driver compiles every statement it runs, and SQLite compiles it a
// second time at its first step when its planner read a value bound to
// it: the limit (LIMIT ?) and the provider (provider_id = ? beside an
// ORDER BY). Compiling a page's statement twice cost more CPU than
// running it (bench/README.md, "Slot holds"). So the limit, an int the
// manager checked (a page's size plus one), is written into the text, and
// the provider's id is bound behind a unary plus, which the planner does
// not look through and which leaves the plan as it was. The fences:
// TestSQLiteListingCompilesOnce fails when SQLite compiles the statement
// twice again, or compiles the plain one once;
// TestSQLiteListingMatchesThePlainStatement compares their rows and plans.
func sqliteListSQL(q slotQuery) (string, []any) {
	w := sqliteWhere{args: make([]any, 0, 10)}
	w.slots(&q.slotConds)
	order := " ORDER BY start_time, id LIMIT "
	switch {
	case q.backward && q.key != nil:
		w.and("(start_time, id) < (?, ?)", q.key.Start, q.key.ID)
		order = " ORDER BY start_time DESC, id DESC LIMIT "
	case q.backward:
		order = " ORDER BY start_time DESC, id DESC LIMIT "
	case q.key != nil:
		w.and("(start_time, id) > (?, ?)", q.key.Start, q.key.ID)
	}
	query := "SELECT " + sqliteSlotColumns + " FROM time_slots WHERE " + w.sql.String() + order + strconv.Itoa(q.limit)
	return query, append(heldAt(q.now, 3), w.args...)
}

func (s *sqliteStore) countSlots(ctx context.Context, c slotConds) (int64, error) {
	var w sqliteWhere
	w.slots(&c)
	var n int64
	return n, s.db.WithContext(ctx).Raw("SELECT COUNT(*) FROM time_slots WHERE "+w.sql.String(), w.args...).Scan(&n).Error
}

// ---- bookings ----

// bookSeat reads the slot's conditions and claims the seat in one
// transaction, which holds the write lock throughout, so nothing changes
// between the two; the claim is still the conditional UPDATE. Its event
// is always ev's hook: SQLite has no round trips to save.
func (s *sqliteStore) bookSeat(ctx context.Context, in BookInput, ref string, now time.Time, ev bookEvent) (*models.Booking, *models.TimeSlot, error) {
	var booking *models.Booking
	var slot *models.TimeSlot
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if slot, err = sqliteClaimSeat(tx, in.SlotID, now); err != nil {
			return err
		}
		booking = newBooking(slot, in, ref, now, 0)
		if err := tx.Create(booking).Error; err != nil {
			return uniqueRefusal(err)
		}
		return ev.hook.runGORM(ctx, tx, txChange{booking: booking, slot: slot})
	})
	if err != nil {
		return nil, nil, err
	}
	return booking, slot, nil
}

// sqliteClaimSeat claims a seat of slot id at now in transaction tx, which
// holds the write lock throughout: it reads the slot's conditions, then
// claims with the conditional UPDATE, and answers the slot as updated, or
// errNotClaimed.
func sqliteClaimSeat(tx *gorm.DB, id int64, now time.Time) (*models.TimeSlot, error) {
	b, err := sqliteBookability(tx, id)
	if errors.Is(err, errNoRows) || err == nil && refusal(id, b, now) != nil {
		return nil, errNotClaimed
	}
	if err != nil {
		return nil, err
	}
	slot, err := sqliteChanged(tx.Raw(`UPDATE time_slots
		SET booked_count = booked_count + 1, version = version + 1, updated_at = ?
		WHERE id = ? AND booked_count + `+sqliteClaimHeld+` < capacity AND start_time > ?
		RETURNING `+sqliteChangedColumns, now, id, now, now, now, now, now, now))
	if errors.Is(err, errNoRows) {
		return nil, errNotClaimed
	}
	return slot, err
}

func (s *sqliteStore) bookability(ctx context.Context, id int64) (bookability, error) {
	return sqliteBookability(s.db.WithContext(ctx), id)
}

func sqliteBookability(db *gorm.DB, id int64) (bookability, error) {
	var row struct {
		StartTime        time.Time
		MinNoticeMinutes int
		Active           bool
	}
	err := db.Table("time_slots").
		Select("time_slots.start_time, providers.min_notice_minutes, providers.active").
		Joins("JOIN providers ON providers.id = time_slots.provider_id").
		Where("time_slots.id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return bookability{}, errNoRows
	}
	return bookability{start: row.StartTime, minNotice: row.MinNoticeMinutes, active: row.Active}, err
}

func (s *sqliteStore) booking(ctx context.Context, id int64) (*models.Booking, error) {
	return sqliteFirst[models.Booking](s.db.WithContext(ctx), id)
}

func (s *sqliteStore) bookingByReference(ctx context.Context, ref string) (*models.Booking, error) {
	return sqliteTake[models.Booking](s.db.WithContext(ctx).Where("reference = ?", ref))
}

func (s *sqliteStore) bookingsByID(ctx context.Context, ids []int64) ([]models.Booking, error) {
	rows := make([]models.Booking, 0, len(ids))
	return rows, s.db.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error
}

func (s *sqliteStore) bookingsByReference(ctx context.Context, refs []string) ([]models.Booking, error) {
	rows := make([]models.Booking, 0, len(refs))
	return rows, s.db.WithContext(ctx).Where("reference IN ?", refs).Find(&rows).Error
}

func (s *sqliteStore) bookingByKey(ctx context.Context, key, customerID string) (*models.Booking, error) {
	db := s.db.WithContext(ctx).Where("idempotency_key = ?", key)
	if customerID == "" {
		db = db.Where("customer_id IS NULL")
	} else {
		db = db.Where("customer_id = ?", customerID)
	}
	return sqliteTake[models.Booking](db)
}

// sqliteTake loads the one row of T that db's conditions select, or
// errNoRows.
func sqliteTake[T any](db *gorm.DB) (*T, error) {
	var row T
	err := db.Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, errNoRows
	}
	if err != nil {
		return nil, err
	}
	return &row, nil
}

func (s *sqliteStore) cancelBooking(ctx context.Context, id, slotID int64, now time.Time, hook txHook) (cancelled bool, freed *models.TimeSlot, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		upd := tx.Model(&models.Booking{}).
			Where("id = ? AND status = ? AND slot_id = ?", id, models.BookingConfirmed, slotID).
			Updates(map[string]any{"status": models.BookingCancelled, "cancelled_at": now})
		if upd.Error != nil || upd.RowsAffected == 0 {
			return upd.Error
		}
		slot, err := sqliteChanged(tx.Raw(`UPDATE time_slots
			SET booked_count = booked_count - 1, version = version + 1, updated_at = ?
			WHERE id = ? AND booked_count > 0
			RETURNING `+sqliteChangedColumns, now, slotID, now, now, now))
		if err != nil && !errors.Is(err, errNoRows) {
			return err
		}
		cancelled, freed = true, slot
		return hook.runGORM(ctx, tx, txChange{slot: freed})
	})
	if err != nil {
		return false, nil, err
	}
	return cancelled, freed, nil
}

// rescheduleSeat claims the new seat as bookSeat does, then moves the
// booking, frees its old seat and records the move, in one transaction
// that holds the write lock throughout.
func (s *sqliteStore) rescheduleSeat(ctx context.Context, b *models.Booking, slotID int64, now time.Time, hook txHook) (slot, previous *models.TimeSlot, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if slot, err = sqliteClaimSeat(tx, slotID, now); err != nil {
			return err
		}
		moved := tx.Model(&models.Booking{}).
			Where("id = ? AND status = ? AND slot_id = ?", b.ID, models.BookingConfirmed, *b.SlotID).
			Updates(map[string]any{"slot_id": slot.ID, "provider_id": slot.ProviderID, "start_time": slot.StartTime, "end_time": slot.EndTime})
		switch index, _ := database.IsUniqueViolation(moved.Error); {
		case index == database.UniqueCustomerSeat:
			return errSeatHeld
		case moved.Error != nil:
			return moved.Error
		case moved.RowsAffected == 0:
			return errBookingChanged
		}
		freed, err := sqliteChanged(tx.Raw(`UPDATE time_slots
			SET booked_count = booked_count - 1, version = version + 1, updated_at = ?
			WHERE id = ? AND booked_count > 0
			RETURNING `+sqliteChangedColumns, now, *b.SlotID, now, now, now))
		if err != nil && !errors.Is(err, errNoRows) {
			return err
		}
		previous = freed
		if err := tx.Create(&models.BookingMove{BookingID: b.ID, SlotID: b.SlotID, StartTime: b.StartTime, EndTime: b.EndTime, MovedAt: now}).Error; err != nil {
			return err
		}
		return hook.runGORM(ctx, tx, txChange{slot: slot, previous: previous})
	})
	if err != nil {
		return nil, nil, err
	}
	return slot, previous, nil
}

// bookings writes the conditions of c.
func (w *sqliteWhere) bookings(c *bookingConds) {
	if c.providerID != nil {
		// The unary plus keeps SQLite from compiling the listing twice
		// (see sqliteListSQL).
		w.and("provider_id = +?", *c.providerID)
	}
	if c.slotID != nil {
		w.and("slot_id = ?", *c.slotID)
	}
	if c.status != nil {
		w.and("status = ?", string(*c.status))
	}
	if c.startFrom != nil {
		w.and("start_time >= ?", *c.startFrom)
	}
	if c.startBefore != nil {
		w.and("start_time < ?", *c.startBefore)
	}
	if c.customer != nil {
		w.and("customer = ?", *c.customer)
	}
	if c.customerID != nil {
		w.and("customer_id = ?", *c.customerID)
	}
}

func (s *sqliteStore) listBookings(ctx context.Context, q bookingQuery) ([]models.Booking, error) {
	w := sqliteWhere{args: make([]any, 0, 10)}
	w.bookings(&q.bookingConds)
	order := " ORDER BY start_time, id LIMIT ?"
	switch {
	case q.backward && q.key != nil:
		w.and("(start_time, id) < (?, ?)", q.key.Start, q.key.ID)
		order = " ORDER BY start_time DESC, id DESC LIMIT ?"
	case q.backward:
		order = " ORDER BY start_time DESC, id DESC LIMIT ?"
	case q.key != nil:
		w.and("(start_time, id) > (?, ?)", q.key.Start, q.key.ID)
	}
	where := ""
	if w.sql.Len() > 0 {
		where = " WHERE " + w.sql.String()
	}
	rows := make([]models.Booking, 0, q.limit)
	return rows, s.db.WithContext(ctx).Raw("SELECT * FROM bookings"+where+order, append(w.args, q.limit)...).Scan(&rows).Error
}

func (s *sqliteStore) bookingMoves(ctx context.Context, ids []int64) ([]models.BookingMove, error) {
	var rows []models.BookingMove
	return rows, s.db.WithContext(ctx).Where("booking_id IN ?", ids).Order("booking_id, id").Find(&rows).Error
}

func (s *sqliteStore) eraseCustomer(ctx context.Context, customerID, customer *string) (int64, error) {
	db := s.db.WithContext(ctx).Model(&models.Booking{})
	if customerID != nil {
		db = db.Where("customer_id = ?", *customerID)
	} else {
		db = db.Where("customer = ?", *customer)
	}
	res := db.Updates(map[string]any{"customer": gorm.Expr("'erased-' || id"), "customer_id": nil, "idempotency_key": nil})
	return res.RowsAffected, res.Error
}

// ---- generation, seeding, cleanup, statistics ----

func (s *sqliteStore) providerIDs(ctx context.Context, ids []int64) ([]int64, error) {
	var out []int64
	return out, s.db.WithContext(ctx).Model(&models.Provider{}).Where("id IN ?", ids).Pluck("id", &out).Error
}

// activeAmong answers db narrowed to the active providers among ids (nil:
// among all).
func activeAmong(db *gorm.DB, ids []int64) *gorm.DB {
	db = db.Model(&models.Provider{}).Where("active = ?", true)
	if ids != nil {
		db = db.Where("id IN ?", ids)
	}
	return db
}

func (s *sqliteStore) countActiveProviders(ctx context.Context, ids []int64) (int64, error) {
	var n int64
	return n, activeAmong(s.db.WithContext(ctx), ids).Count(&n).Error
}

func (s *sqliteStore) activeProviders(ctx context.Context, ids []int64, after int64, limit int) ([]models.Provider, error) {
	var rows []models.Provider
	return rows, activeAmong(s.db.WithContext(ctx), ids).Where("id > ?", after).Order("id").Limit(limit).Find(&rows).Error
}

// demand reads each provider's last slot and then its demand window, two
// probes of the (provider_id, start_time, id) index per provider.
func (s *sqliteStore) demand(ctx context.Context, ids []int64) ([]slotDemand, error) {
	db := s.db.WithContext(ctx)
	out := make([]slotDemand, 0, len(ids))
	for _, id := range ids {
		var last []models.TimeSlot
		if err := db.Select("start_time, date").Where("provider_id = ?", id).
			Order("start_time DESC").Limit(1).Find(&last).Error; err != nil {
			return nil, err
		}
		if len(last) == 0 {
			continue
		}
		d := slotDemand{providerID: id, last: last[0].Date}
		if err := db.Table("time_slots").
			Select("COALESCE(SUM(capacity), 0), COALESCE(SUM(booked_count), 0)").
			Where("provider_id = ? AND start_time > ? AND date > ?", id,
				last[0].StartTime.UTC().Add(-demandLookback), d.last.AddDays(-DemandWindowDays)).
			Row().Scan(&d.seats, &d.booked); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func (s *sqliteStore) slotSpans(ctx context.Context, dst spans, provider int64, from, to time.Time) (spans, error) {
	rows, err := s.db.WithContext(ctx).Model(&models.TimeSlot{}).
		Select("start_time, end_time").
		Where("provider_id = ? AND start_time > ? AND start_time < ?", provider, from, to).
		Order("start_time").Rows()
	if err != nil {
		return dst, err
	}
	defer rows.Close()
	for rows.Next() {
		var start, end time.Time
		if err := rows.Scan(&start, &end); err != nil {
			return dst, err
		}
		dst = append(dst, span{start.UnixMicro(), end.UnixMicro()})
	}
	return dst, rows.Err()
}

// insertSlots writes rows with one INSERT … ON CONFLICT DO NOTHING: a row
// whose provider and start exist is skipped, and the overlap trigger drops
// a row that overlaps a slot the same way, so SQLite never refuses a batch.
// RETURNING names the rows written, which the ranges sum up.
func (s *sqliteStore) insertSlots(ctx context.Context, rows []newSlot) ([]slotRange, error) {
	var q strings.Builder
	q.WriteString("INSERT INTO time_slots (provider_id, start_time, end_time, date, capacity, created_at, updated_at) VALUES ")
	args := make([]any, 0, len(rows)*7)
	for i, r := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, r.ProviderID, r.StartTime, r.EndTime, r.Date, r.Capacity, r.CreatedAt, r.UpdatedAt)
	}
	q.WriteString(" ON CONFLICT DO NOTHING RETURNING provider_id, start_time, end_time")
	return sqliteRanges(s.db.WithContext(ctx).Raw(q.String(), args...))
}

// sqliteRanges runs q, whose rows are (provider_id, start_time, end_time)
// of the slots it wrote or deleted, and sums them up by provider.
func sqliteRanges(q *gorm.DB) ([]slotRange, error) {
	rows, err := q.Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var rs rangeSet
	for rows.Next() {
		var provider int64
		var start, end time.Time
		if err := rows.Scan(&provider, &start, &end); err != nil {
			return nil, err
		}
		rs.add(provider, start, end)
	}
	return rs.ranges, rows.Err()
}

func (s *sqliteStore) resendSlots(ctx context.Context, rows []newSlot) ([]slotRange, error) {
	return s.insertSlots(ctx, rows)
}

func (s *sqliteStore) seedProviders(ctx context.Context, ps []models.Provider) ([]int64, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&models.Provider{}).Count(&n).Error; err != nil || n > 0 {
			return err
		}
		for i := range ps {
			if err := tx.Create(&ps[i]).Error; err != nil {
				return err
			}
			ids = append(ids, ps[i].ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

func (s *sqliteStore) deleteEndedSlots(ctx context.Context, cutoff time.Time, limit int) ([]slotRange, error) {
	// end_time < cutoff implies start_time < cutoff: the start bound lets
	// the (start_time, id) index find the batch.
	return sqliteRanges(s.db.WithContext(ctx).Raw(`DELETE FROM time_slots WHERE id IN (
		SELECT id FROM time_slots WHERE start_time < ? AND end_time < ? ORDER BY start_time, id LIMIT ?)
		RETURNING provider_id, start_time, end_time`, cutoff, cutoff, limit))
}

func (s *sqliteStore) statsRows(ctx context.Context, daysFrom models.Date, now time.Time) (*statsRows, error) {
	db := s.db.WithContext(ctx)
	out := &statsRows{}
	if err := db.Order("id").Find(&out.providers).Error; err != nil {
		return nil, err
	}
	var totals []struct {
		ProviderID                     int64
		Slots, FullSlots, Seats, Taken int64
		Horizon                        models.Date
	}
	if err := db.Table("time_slots").
		Select("provider_id, COUNT(*) AS slots, "+
			"SUM(CASE WHEN booked_count + "+sqliteHeld+" >= capacity THEN 1 ELSE 0 END) AS full_slots, "+
			"SUM(capacity) AS seats, SUM(booked_count + "+sqliteHeld+") AS taken, MAX(date) AS horizon", heldAt(now, 6)...).
		Group("provider_id").Scan(&totals).Error; err != nil {
		return nil, err
	}
	for _, t := range totals {
		out.totals = append(out.totals, slotTotals{providerID: t.ProviderID, slots: t.Slots, full: t.FullSlots,
			seats: t.Seats, taken: t.Taken, horizon: t.Horizon})
	}
	// First and last slot by the (start_time, id) index; MIN/MAX would lose
	// the column's type.
	for _, end := range []struct {
		order string
		to    **time.Time
	}{{"start_time, id", &out.first}, {"start_time DESC, id DESC", &out.last}} {
		var starts []time.Time
		if err := db.Model(&models.TimeSlot{}).Order(end.order).Limit(1).Pluck("start_time", &starts).Error; err != nil {
			return nil, err
		}
		if len(starts) == 1 {
			*end.to = &starts[0]
		}
	}
	var days []struct {
		ProviderID          int64
		Date                models.Date
		Slots, Seats, Taken int64
	}
	if err := db.Table("time_slots").
		Select("provider_id, date, COUNT(*) AS slots, SUM(capacity) AS seats, SUM(booked_count + "+sqliteHeld+") AS taken", heldAt(now, 3)...).
		Where("date >= ?", daysFrom).
		Group("provider_id, date").Scan(&days).Error; err != nil {
		return nil, err
	}
	for _, d := range days {
		out.days = append(out.days, providerDate{providerID: d.ProviderID, date: d.Date, slots: d.Slots, seats: d.Seats, taken: d.Taken})
	}
	return out, nil
}

// ---- job runs ----

func (s *sqliteStore) claimJobRun(ctx context.Context, run *models.JobRun) (bool, error) {
	res := s.db.WithContext(ctx).
		Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "job"}, {Name: "tick"}, {Name: "attempt"}}, DoNothing: true}).
		Create(run)
	return res.RowsAffected == 1, res.Error
}

func (s *sqliteStore) renewJobRun(ctx context.Context, id int64, until time.Time) (bool, error) {
	res := s.db.WithContext(ctx).Model(&models.JobRun{}).Where("id = ? AND outcome = ?", id, models.JobRunning).
		Update("lease_until", until)
	return res.RowsAffected == 1, res.Error
}

func (s *sqliteStore) finishJobRun(ctx context.Context, id int64, at time.Time, outcome models.JobOutcome, details, errText string) (bool, error) {
	res := s.db.WithContext(ctx).Model(&models.JobRun{}).Where("id = ? AND outcome = ?", id, models.JobRunning).
		Updates(map[string]any{"finished_at": at, "outcome": outcome, "details": details, "error": errText})
	return res.RowsAffected == 1, res.Error
}

func (s *sqliteStore) interruptLapsedJobRuns(ctx context.Context, at time.Time, errText string) (int, error) {
	res := s.db.WithContext(ctx).Model(&models.JobRun{}).Where("outcome = ? AND lease_until < ?", models.JobRunning, at).
		Updates(map[string]any{"outcome": models.JobInterrupted, "finished_at": at, "error": errText})
	return int(res.RowsAffected), res.Error
}

func (s *sqliteStore) lastJobRuns(ctx context.Context) ([]models.JobRun, error) {
	var runs []models.JobRun
	latest := s.db.Model(&models.JobRun{}).Select("MAX(id)").Group("job")
	return runs, s.db.WithContext(ctx).Where("id IN (?)", latest).Order("job").Find(&runs).Error
}

func (s *sqliteStore) recentJobRuns(ctx context.Context, limit int) ([]models.JobRun, error) {
	var runs []models.JobRun
	return runs, s.db.WithContext(ctx).Order("started_at DESC, id DESC").Limit(limit).Find(&runs).Error
}

func (s *sqliteStore) lastSucceededTick(ctx context.Context, job string) (time.Time, error) {
	var run models.JobRun
	err := s.db.WithContext(ctx).Where("job = ? AND outcome = ?", job, models.JobSucceeded).
		Order("tick DESC").Take(&run).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return time.Time{}, errNoRows
	}
	return run.Tick, err
}

func (s *sqliteStore) pruneJobRuns(ctx context.Context, cutoff time.Time) (int, error) {
	res := s.db.WithContext(ctx).Where("started_at < ?", cutoff).Delete(&models.JobRun{})
	return int(res.RowsAffected), res.Error
}

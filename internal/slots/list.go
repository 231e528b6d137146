package slots

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/models"
)

// PageRequest is a Relay-style page request as an edge received it. The
// names say how the edge calls its arguments ("first"/"after" in GraphQL,
// "limit"/"cursor" in REST), so errors name what the client sent.
type PageRequest struct {
	First, Last   *int
	After, Before *string
	Default, Max  int
	FirstName     string // default "first"
	AfterName     string // default "after"
}

// page is a validated PageRequest.
type page struct {
	limit    int
	backward bool
	cursor   *string
	field    string // the cursor's argument name
}

func (r PageRequest) resolve() (page, error) {
	firstName, afterName := r.FirstName, r.AfterName
	if firstName == "" {
		firstName = "first"
	}
	if afterName == "" {
		afterName = "after"
	}
	if r.Default <= 0 {
		r.Default = 20
	}
	if r.Max <= 0 {
		r.Max = 100
	}
	if r.First != nil && r.Last != nil {
		return page{}, apperr.Invalid("last", "first and last cannot be used together")
	}
	if r.After != nil && r.Before != nil {
		return page{}, apperr.Invalid("before", "after and before cannot be used together")
	}
	check := func(name string, v *int) (int, error) {
		if v == nil {
			return r.Default, nil
		}
		if *v < 0 || *v > r.Max {
			return 0, apperr.Invalid(name, "%s must be between 0 and %d", name, r.Max)
		}
		return *v, nil
	}
	if r.Last != nil || (r.Before != nil && r.First == nil) {
		n, err := check("last", r.Last)
		if err != nil {
			return page{}, err
		}
		if r.After != nil {
			return page{}, apperr.Invalid(afterName, "%s cannot be used with last; use before", afterName)
		}
		return page{limit: n, backward: true, cursor: r.Before, field: "before"}, nil
	}
	n, err := check(firstName, r.First)
	if err != nil {
		return page{}, err
	}
	if r.Before != nil {
		return page{}, apperr.Invalid("before", "before cannot be used with first; use after")
	}
	return page{limit: n, cursor: r.After, field: afterName}, nil
}

// SlotFilter narrows a slot listing. All given conditions must hold.
type SlotFilter struct {
	ProviderID  *int64
	ProviderIDs []int64             // nil: any provider; empty is refused
	Statuses    []models.SlotStatus // nil: AVAILABLE (bookable: a seat free, not started); BOOKED: full
	Date        *models.Date
	StartDate   *models.Date
	EndDate     *models.Date
	From, To    *time.Time
}

// SlotPage is one page of slots in (startTime, id) order. Its slots carry
// what a listing shows; their Version and timestamps are left zero.
type SlotPage struct {
	Slots           []models.TimeSlot
	HasNextPage     bool
	HasPreviousPage bool
}

// Cursor answers the cursor of the i-th slot of the page.
func (p *SlotPage) Cursor(i int) string {
	return EncodeSlotCursor(SlotKey{Start: p.Slots[i].StartTime, ID: p.Slots[i].ID})
}

// Local dates are in the provider's zone, which is between UTC-12 and
// UTC+14; these bounds turn a date range into a start_time range that the
// (provider_id, start_time, id) index can scan, before the exact date test.
const (
	maxAheadOfUTC  = 14 * time.Hour
	maxBehindOfUTC = 12 * time.Hour
)

// conditions is a WHERE clause being built: conditions that must all hold
// and the arguments of their placeholders, in order. Conditions are
// written with ? placeholders; numbered clauses (for pgx itself, which
// reads PostgreSQL's own $n) get $1, $2, … instead.
type conditions struct {
	sql      strings.Builder
	args     []any
	numbered bool
}

func (c *conditions) add(cond string, args ...any) {
	if c.sql.Len() > 0 {
		c.sql.WriteString(" AND ")
	}
	c.write(&c.sql, cond)
	c.args = append(c.args, args...)
}

// write writes text to b with its ? placeholders numbered when c is.
func (c *conditions) write(b *strings.Builder, text string) {
	if !c.numbered {
		b.WriteString(text)
		return
	}
	n := len(c.args)
	for {
		i := strings.IndexByte(text, '?')
		if i < 0 {
			break
		}
		n++
		b.WriteString(text[:i])
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
		text = text[i+1:]
	}
	b.WriteString(text)
}

// param answers the placeholder of one more argument v, for text that
// follows the clause.
func (c *conditions) param(v any) string {
	c.args = append(c.args, v)
	if !c.numbered {
		return "?"
	}
	return "$" + strconv.Itoa(len(c.args))
}

// scope answers the filter's conditions; now decides which slots have
// started. Every condition is written so that AND joins it safely.
// numbered clauses are for pgx itself (pgQuery), the others for GORM.
func (f SlotFilter) scope(now time.Time, numbered bool) (*conditions, error) {
	if f.ProviderIDs != nil && len(f.ProviderIDs) == 0 {
		return nil, apperr.Invalid("providerIds", "providerIds must not be empty; leave it out for all providers")
	}
	if len(f.ProviderIDs) > 1000 {
		return nil, apperr.Invalid("providerIds", "providerIds may list at most 1000 providers")
	}
	q := &conditions{args: make([]any, 0, 8), numbered: numbered}
	if f.ProviderID != nil {
		q.add("provider_id = ?", *f.ProviderID)
	}
	switch {
	case f.ProviderIDs == nil:
	case numbered:
		q.add("provider_id = ANY(?)", f.ProviderIDs) // one int8[] parameter
	default:
		q.add("provider_id IN ?", f.ProviderIDs) // GORM writes one placeholder per id
	}
	statuses := f.Statuses
	if statuses == nil {
		statuses = []models.SlotStatus{models.SlotAvailable}
	}
	if len(statuses) == 0 {
		return nil, apperr.Invalid("status", "status must list at least one status; leave it out for AVAILABLE")
	}
	hasAvail, hasBooked := false, false
	for _, s := range statuses {
		switch s {
		case models.SlotAvailable:
			hasAvail = true
		case models.SlotBooked:
			hasBooked = true
		default:
			return nil, apperr.Invalid("status", "status %q is not a slot status", s)
		}
	}
	// AVAILABLE lists what can still be booked: a seat is free and the slot
	// has not started. A slot that started without filling up is history,
	// not availability, so no status filter lists it (it stays readable by
	// id and in the statistics until cleanup).
	const bookable, full = "(booked_count < capacity AND start_time > ?)", "booked_count >= capacity"
	switch {
	case hasAvail && hasBooked:
		q.add("("+bookable+" OR "+full+")", now)
	case hasAvail:
		q.add(bookable, now)
	default:
		q.add(full)
	}
	// Edges parse dates with models.ParseDate; checking again here keeps a
	// date the database cannot read (2025-02-30) a BAD_USER_INPUT for any caller.
	for _, d := range []struct {
		field string
		date  *models.Date
	}{{"date", f.Date}, {"startDate", f.StartDate}, {"endDate", f.EndDate}} {
		if d.date != nil {
			if _, err := models.ParseDate(d.field, string(*d.date)); err != nil {
				return nil, err
			}
		}
	}
	lo, hi := f.StartDate, f.EndDate
	// Dates go to the driver as their text, which both databases compare
	// as dates.
	if f.Date != nil {
		q.add("date = ?", string(*f.Date))
		lo, hi = maxDate(lo, f.Date), minDate(hi, f.Date)
	}
	if f.StartDate != nil && f.EndDate != nil && *f.EndDate < *f.StartDate {
		return nil, apperr.Invalid("endDate", "endDate %s is before startDate %s", *f.EndDate, *f.StartDate)
	}
	if f.StartDate != nil {
		q.add("date >= ?", string(*f.StartDate))
	}
	if f.EndDate != nil {
		q.add("date <= ?", string(*f.EndDate))
	}
	// The bounds only narrow the index scan; the date conditions above decide.
	// Past the years 1–9999 they are left out: SQLite compares times as text,
	// where a year 0 or 10000 does not sort, and no slot lives there anyway.
	if lo != nil {
		if b := lo.Time().Add(-maxAheadOfUTC); b.Year() >= 1 {
			q.add("start_time >= ?", b)
		}
	}
	if hi != nil {
		if b := hi.Time().AddDate(0, 0, 1).Add(maxBehindOfUTC); b.Year() <= 9999 {
			q.add("start_time < ?", b)
		}
	}
	if f.From != nil && f.To != nil && !f.To.After(*f.From) {
		return nil, apperr.Invalid("to", "to must be after from")
	}
	if f.From != nil {
		q.add("start_time >= ?", f.From.UTC())
	}
	if f.To != nil {
		q.add("start_time < ?", f.To.UTC())
	}
	return q, nil
}

func maxDate(a, b *models.Date) *models.Date {
	if a == nil || (b != nil && *b > *a) {
		return b
	}
	return a
}

func minDate(a, b *models.Date) *models.Date {
	if a == nil || (b != nil && *b < *a) {
		return b
	}
	return a
}

// ListSlots answers one page of the slots matching f, in (startTime, id)
// order, by keyset: the cursor's position is a WHERE condition, never an
// offset, so every page costs the same however deep it is.
func (m *Manager) ListSlots(ctx context.Context, f SlotFilter, req PageRequest) (*SlotPage, error) {
	pg, err := req.resolve()
	if err != nil {
		return nil, err
	}
	var key *SlotKey
	if pg.cursor != nil {
		k, err := DecodeSlotCursor(pg.field, *pg.cursor)
		if err != nil {
			return nil, err
		}
		key = &k
	}
	native := m.dialect == database.Postgres
	q, err := f.scope(m.Now(), native)
	if err != nil {
		return nil, err
	}
	if pg.limit == 0 {
		return &SlotPage{Slots: []models.TimeSlot{}, HasPreviousPage: !pg.backward && key != nil, HasNextPage: pg.backward && key != nil}, nil
	}
	order := "start_time, id"
	if pg.backward {
		if key != nil {
			q.add("(start_time, id) < (?, ?)", key.Start, key.ID)
		}
		order = "start_time DESC, id DESC"
	} else if key != nil {
		q.add("(start_time, id) > (?, ?)", key.Start, key.ID)
	}
	limit := q.param(pg.limit + 1)
	query := "SELECT " + slotColumns + " FROM time_slots WHERE " + q.sql.String() + " ORDER BY " + order + " LIMIT " + limit
	done, err := m.admitRead(ctx)
	if err != nil {
		return nil, dbError("list slots", err)
	}
	defer done()
	var rows []models.TimeSlot
	if native {
		rows, err = m.pgScanSlots(ctx, query, q.args, pg.limit+1)
	} else {
		rows, err = scanSlots(m.db.WithContext(ctx).Raw(query, q.args...), pg.limit+1)
	}
	if err != nil {
		return nil, dbError("list slots", err)
	}
	out := &SlotPage{}
	out.Slots, out.HasNextPage, out.HasPreviousPage = finishPage(rows, pg, key != nil)
	return out, nil
}

// slotColumns are the columns of time_slots that a listing reads, in the
// order scanSlots reads them: what the edges show of a slot. The version
// and the timestamps stay unread; decoding them cost more than the rest.
const slotColumns = "id, provider_id, start_time, end_time, date, capacity, booked_count, status"

// scanSlots runs q, which selects slotColumns, and reads its rows into
// slots. It does by hand what Find does by reflection on every row and
// column, which was the larger part of the server's CPU per page of a
// listing; capacity sizes the result.
func scanSlots(q *gorm.DB, capacity int) ([]models.TimeSlot, error) {
	rows, err := q.Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]models.TimeSlot, 0, capacity)
	for rows.Next() {
		var s models.TimeSlot
		var status string
		if err := rows.Scan(slotFields(&s, &status)...); err != nil {
			return nil, err
		}
		s.Status = models.SlotStatus(status)
		out = append(out, s)
	}
	return out, rows.Err()
}

// pgScanSlots is scanSlots through pgQuery: query (with $n placeholders)
// selects slotColumns. pgx decodes each column straight into its field,
// and the provider-local date is formatted from PostgreSQL's binary date.
func (m *Manager) pgScanSlots(ctx context.Context, query string, args []any, capacity int) ([]models.TimeSlot, error) {
	out := make([]models.TimeSlot, 0, capacity)
	err := pgQuery(ctx, m.sqlDB, query, args, func(r pgx.Rows) error {
		var s models.TimeSlot
		if err := scanSlot(r, &s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// slotFields answers where the columns of slotColumns scan to: s's fields,
// and status (a string, which database/sql fills without reflection) for
// s.Status.
func slotFields(s *models.TimeSlot, status *string) []any {
	return []any{&s.ID, &s.ProviderID, &s.StartTime, &s.EndTime, &s.Date, &s.Capacity, &s.BookedCount, status}
}

// finishPage turns the limit+1 rows of a keyset query into a page: it drops
// the probe row that only tells whether more follow, puts a backward page
// back into ascending order, and answers hasNext and hasPrevious (a cursor
// means rows exist on the side it came from).
func finishPage[T any](rows []T, pg page, hasCursor bool) (_ []T, hasNext, hasPrevious bool) {
	more := len(rows) > pg.limit
	if more {
		rows = rows[:pg.limit]
	}
	if !pg.backward {
		return rows, more, hasCursor
	}
	slices.Reverse(rows)
	return rows, hasCursor, more
}

// CountSlots answers how many slots match f. Edges call it only when the
// client asked for a total, since it scans every match.
func (m *Manager) CountSlots(ctx context.Context, f SlotFilter) (int64, error) {
	q, err := f.scope(m.Now(), false)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := m.db.WithContext(ctx).Model(&models.TimeSlot{}).Where(q.sql.String(), q.args...).Count(&n).Error; err != nil {
		return 0, dbError("count slots", err)
	}
	return n, nil
}

// ProviderPage is one page of providers in id order.
type ProviderPage struct {
	Providers       []models.Provider
	HasNextPage     bool
	HasPreviousPage bool
}

// Cursor answers the cursor of the i-th provider of the page.
func (p *ProviderPage) Cursor(i int) string { return EncodeProviderCursor(p.Providers[i].ID) }

// ListProviders answers one page of providers in id order, by keyset.
func (m *Manager) ListProviders(ctx context.Context, req PageRequest) (*ProviderPage, error) {
	pg, err := req.resolve()
	if err != nil {
		return nil, err
	}
	var after *int64
	if pg.cursor != nil {
		id, err := DecodeProviderCursor(pg.field, *pg.cursor)
		if err != nil {
			return nil, err
		}
		after = &id
	}
	q := m.db.WithContext(ctx).Model(&models.Provider{})
	if pg.backward {
		if after != nil {
			q = q.Where("id < ?", *after)
		}
		q = q.Order("id DESC")
	} else {
		if after != nil {
			q = q.Where("id > ?", *after)
		}
		q = q.Order("id")
	}
	rows := make([]models.Provider, 0, pg.limit+1)
	if pg.limit > 0 {
		if err := q.Limit(pg.limit + 1).Find(&rows).Error; err != nil {
			return nil, dbError("list providers", err)
		}
	}
	out := &ProviderPage{}
	out.Providers, out.HasNextPage, out.HasPreviousPage = finishPage(rows, pg, after != nil)
	return out, nil
}

// CountProviders answers the number of providers.
func (m *Manager) CountProviders(ctx context.Context) (int64, error) {
	var n int64
	if err := m.db.WithContext(ctx).Model(&models.Provider{}).Count(&n).Error; err != nil {
		return 0, dbError("count providers", err)
	}
	return n, nil
}

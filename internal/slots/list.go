package slots

import (
	"context"
	"slices"
	"time"

	"timeslots/internal/apperr"
	"timeslots/models"
)

// PageRequest is a Relay-style page request as an edge received it. The
// names say how the edge calls its arguments ("first"/"after" in GraphQL,
// "limit"/"cursor" in REST), so errors name what the client sent.
type PageRequest struct {
	First, Last   *int
	After, Before *string
	Default, Max  int
	// Min is the smallest page size: 0 by default (Relay's first: 0 asks
	// only for the page's info); REST's limit starts at 1, since a page of
	// nothing cannot tell whether more follow.
	Min       int
	FirstName string // default "first"
	AfterName string // default "after"
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
		if *v < max(r.Min, 0) || *v > r.Max {
			return 0, apperr.Invalid(name, "%s must be between %d and %d", name, max(r.Min, 0), r.Max)
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
	// Changes is the first instant at which the page may read differently
	// by time alone: the start of its earliest slot that is listed only
	// because it has not started (a free seat, AVAILABLE listed), the row
	// read past the page to tell whether more follow included; zero when
	// no listed slot leaves the listing by time. A copy of the page (a
	// cache entry) is the answer of any later read until then, unless a
	// slot changes.
	Changes time.Time

	// reach is the start of the row read past the page (the probe that
	// tells another page follows in the direction it was read), when one
	// was read; backward tells that direction. See Within.
	reach    *time.Time
	backward bool
}

// Within narrows [from, before), the start times a page's filter lists
// (SlotFilter.StartRange), to those a change must touch to change this
// page. When a row past the page was read, a slot ordered beyond that row
// changes nothing in it: the rows up to it stay the same rows, and it
// still tells that another page follows. So a forward page depends only
// on the slots starting no later than that row, a backward one only on
// those starting no earlier; slots starting at the same instant are
// counted in, whatever their ids. A page read to the end of its range
// depends on all of it.
func (p *SlotPage) Within(from, before *time.Time) (*time.Time, *time.Time) {
	switch {
	case p.reach == nil:
	case p.backward:
		if from == nil || p.reach.After(*from) {
			from = p.reach
		}
	default:
		if end := p.reach.Add(time.Nanosecond); before == nil || end.Before(*before) {
			before = &end
		}
	}
	return from, before
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

// conds answers the filter's conditions as values for the stores; now
// decides which slots have started.
func (f SlotFilter) conds(now time.Time) (slotConds, error) {
	c := slotConds{providerID: f.ProviderID, providerIDs: f.ProviderIDs, now: now}
	if f.ProviderIDs != nil && len(f.ProviderIDs) == 0 {
		return c, apperr.Invalid("providerIds", "providerIds must not be empty; leave it out for all providers")
	}
	if len(f.ProviderIDs) > 1000 {
		return c, apperr.Invalid("providerIds", "providerIds may list at most 1000 providers")
	}
	statuses := f.Statuses
	if statuses == nil {
		statuses = []models.SlotStatus{models.SlotAvailable}
	}
	if len(statuses) == 0 {
		return c, apperr.Invalid("status", "status must list at least one status; leave it out for AVAILABLE")
	}
	// AVAILABLE lists what can still be booked: a seat is free and the slot
	// has not started. A slot that started without filling up is history,
	// not availability, so no status filter lists it (it stays readable by
	// id and in the statistics until cleanup).
	for _, s := range statuses {
		switch s {
		case models.SlotAvailable:
			c.states |= bookableSlots
		case models.SlotBooked:
			c.states |= fullSlots
		default:
			return c, apperr.Invalid("status", "status %q is not a slot status", s)
		}
	}
	// Edges parse dates with models.ParseDate; checking again here keeps a
	// date the database cannot read (2025-02-30) a BAD_USER_INPUT for any caller.
	for _, d := range []struct {
		field string
		date  *models.Date
	}{{"date", f.Date}, {"startDate", f.StartDate}, {"endDate", f.EndDate}} {
		if d.date != nil {
			if _, err := models.ParseDate(d.field, string(*d.date)); err != nil {
				return c, err
			}
		}
	}
	c.date, c.startDate, c.endDate = f.Date, f.StartDate, f.EndDate
	if f.StartDate != nil && f.EndDate != nil && *f.EndDate < *f.StartDate {
		return c, apperr.Invalid("endDate", "endDate %s is before startDate %s", *f.EndDate, *f.StartDate)
	}
	if f.From != nil && f.To != nil && !f.To.After(*f.From) {
		return c, apperr.Invalid("to", "to must be after from")
	}
	// The date range also bounds start_time, which only narrows the index
	// scan; the date conditions decide. Past the years 1–9999 a bound is
	// left out: SQLite compares times as text, where a year 0 or 10000 does
	// not sort, and no slot lives there anyway.
	lo, hi := f.StartDate, f.EndDate
	if f.Date != nil {
		lo, hi = maxDate(lo, f.Date), minDate(hi, f.Date)
	}
	if lo != nil {
		if b := lo.Time().Add(-maxAheadOfUTC); b.Year() >= 1 {
			c.startFrom = &b
		}
	}
	if hi != nil {
		if b := hi.Time().AddDate(0, 0, 1).Add(maxBehindOfUTC); b.Year() <= 9999 {
			c.startBefore = &b
		}
	}
	if f.From != nil {
		if from := f.From.UTC(); c.startFrom == nil || from.After(*c.startFrom) {
			c.startFrom = &from
		}
	}
	if f.To != nil {
		if to := f.To.UTC(); c.startBefore == nil || to.Before(*c.startBefore) {
			c.startBefore = &to
		}
	}
	return c, nil
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
	c, err := f.conds(m.Now())
	if err != nil {
		return nil, err
	}
	if pg.limit == 0 {
		return &SlotPage{Slots: []models.TimeSlot{}, HasPreviousPage: !pg.backward && key != nil, HasNextPage: pg.backward && key != nil}, nil
	}
	done, err := m.admitRead(ctx)
	if err != nil {
		return nil, dbError("list slots", err)
	}
	defer done()
	rows, err := m.store.listSlots(ctx, slotQuery{slotConds: c, key: key, backward: pg.backward, limit: pg.limit + 1})
	if err != nil {
		return nil, dbError("list slots", err)
	}
	out := &SlotPage{Changes: changesByTime(rows, c), backward: pg.backward}
	if len(rows) > pg.limit {
		reach := rows[pg.limit].StartTime
		out.reach = &reach
	}
	out.Slots, out.HasNextPage, out.HasPreviousPage = finishPage(rows, pg, key != nil)
	return out, nil
}

// changesByTime answers SlotPage.Changes for the rows a page was made of,
// the probe row included: a slot with a free seat is listed only until it
// starts, and the rows before the page's first (or after its probe) leave
// the listing no later than those in it, so they change nothing. A full
// slot stays listed (BOOKED) whatever the time. A slot with live holds
// changes when the first of them expires (its remaining seats, and maybe
// the listing it is in); a slot that holds keep out of an AVAILABLE page
// comes back by time too, which the page cannot see: its holds' EXPIRED
// event tells (Manager.Hold).
func changesByTime(rows []models.TimeSlot, c slotConds) time.Time {
	var first time.Time
	earlier := func(t time.Time) {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	for i := range rows {
		s := &rows[i]
		if c.states&bookableSlots != 0 && s.Remaining() > 0 {
			earlier(s.StartTime)
		}
		if s.Held > 0 {
			// A summary bound that passed means a hold expired since it
			// was written, and the next expiry is not known: now.
			earlier(later(s.HeldFirst, c.now))
		}
	}
	return first
}

// later answers the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// StartRange answers the range of start times a slot must have to be
// listed by f, whatever the time: from inclusive, before exclusive, each
// nil when unbounded. A change to a slot outside it cannot change a
// listing of f. The dates of f are the providers' local dates, so the
// range is wider than the dates by the zones' largest offsets.
func (f SlotFilter) StartRange() (from, before *time.Time, err error) {
	c, err := f.conds(time.Time{})
	if err != nil {
		return nil, nil, err
	}
	return c.startFrom, c.startBefore, nil
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
	c, err := f.conds(m.Now())
	if err != nil {
		return 0, err
	}
	n, err := m.store.countSlots(ctx, c)
	if err != nil {
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
	rows := []models.Provider{}
	if pg.limit > 0 {
		if rows, err = m.store.listProviders(ctx, providerQuery{after: after, backward: pg.backward, limit: pg.limit + 1}); err != nil {
			return nil, dbError("list providers", err)
		}
	}
	out := &ProviderPage{}
	out.Providers, out.HasNextPage, out.HasPreviousPage = finishPage(rows, pg, after != nil)
	return out, nil
}

// CountProviders answers the number of providers.
func (m *Manager) CountProviders(ctx context.Context) (int64, error) {
	n, err := m.store.countProviders(ctx)
	if err != nil {
		return 0, dbError("count providers", err)
	}
	return n, nil
}

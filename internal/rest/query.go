package rest

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/slots"
	"timeslots/models"
)

// Limits of the listings' limit parameter: a page holds at least one
// item, so hasMore always tells whether another page follows.
const (
	DefaultLimit = 20
	MinLimit     = 1
	MaxLimit     = 200
)

// query reads URL query parameters strictly: each known parameter at most
// once, and no unknown one, so a misspelt filter (providerID) is refused
// instead of silently widening the answer.
type query struct {
	values url.Values
}

// parseQuery checks that raw names only the allowed parameters, each once.
func parseQuery(raw string, allowed ...string) (query, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return query{}, apperr.Invalid("query", "the query string is malformed")
	}
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if name == "" {
			return query{}, apperr.Invalid("query", "the query string has a parameter with no name")
		}
		if !slices.Contains(allowed, name) {
			return query{}, apperr.Invalid(name, "unknown query parameter %q; allowed: %s", name, strings.Join(allowed, ", "))
		}
		if len(v[name]) > 1 {
			return query{}, apperr.Invalid(name, "%s must be given at most once", name)
		}
	}
	return query{values: v}, nil
}

// str answers the parameter's value, or nil when it is absent.
func (q query) str(name string) *string {
	if !q.values.Has(name) {
		return nil
	}
	s := q.values.Get(name)
	return &s
}

// integer answers the parameter as an integer, or nil. Its range is the
// manager's rule, checked there.
func (q query) integer(name string) (*int, error) {
	s := q.str(name)
	if s == nil {
		return nil, nil
	}
	n, err := strconv.Atoi(*s)
	if err != nil {
		return nil, apperr.Invalid(name, "%s must be an integer", name)
	}
	return &n, nil
}

// date answers the parameter as a calendar date, or nil.
func (q query) date(name string) (*models.Date, error) {
	s := q.str(name)
	if s == nil {
		return nil, nil
	}
	d, err := models.ParseDate(name, *s)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// id answers the parameter as a positive id, or nil.
func (q query) id(name string) (*int64, error) {
	s := q.str(name)
	if s == nil {
		return nil, nil
	}
	id, err := strconv.ParseInt(*s, 10, 64)
	if err != nil || id < 1 {
		return nil, apperr.Invalid(name, "%s must be a positive integer", name)
	}
	return &id, nil
}

// instant answers the parameter as an RFC 3339 instant, or nil.
func (q query) instant(name string) (*time.Time, error) {
	s := q.str(name)
	if s == nil {
		return nil, nil
	}
	t, err := models.ParseInstant(name, *s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// page reads the limit and cursor parameters of a listing: the page size it
// answers (for the pagination object) and the page request for the
// manager, which checks the limit's range and the cursor.
func (q query) page() (int, slots.PageRequest, error) {
	limit, err := q.integer("limit")
	if err != nil {
		return 0, slots.PageRequest{}, err
	}
	n := DefaultLimit
	if limit != nil {
		n = *limit
	}
	return n, slots.PageRequest{
		First: &n, After: q.str("cursor"),
		Default: DefaultLimit, Min: MinLimit, Max: MaxLimit, FirstName: "limit", AfterName: "cursor",
	}, nil
}

// listQuery is GET /api/time-slots's query as the manager takes it.
type listQuery struct {
	filter slots.SlotFilter
	page   slots.PageRequest
	limit  int
}

var listParams = []string{"limit", "cursor", "providerId", "date", "startDate", "endDate", "status"}

// parseListQuery turns the query string of GET /api/time-slots into a slot
// filter and page request. It checks only the spelling of each parameter;
// the rules between them (endDate before startDate, a foreign cursor) are
// the manager's, which names the parameter the same way.
func parseListQuery(raw string) (listQuery, error) {
	q, err := parseQuery(raw, listParams...)
	if err != nil {
		return listQuery{}, err
	}
	var out listQuery
	if out.limit, out.page, err = q.page(); err != nil {
		return listQuery{}, err
	}
	if out.filter.ProviderID, err = q.id("providerId"); err != nil {
		return listQuery{}, err
	}
	if out.filter.Date, err = q.date("date"); err != nil {
		return listQuery{}, err
	}
	if out.filter.StartDate, err = q.date("startDate"); err != nil {
		return listQuery{}, err
	}
	if out.filter.EndDate, err = q.date("endDate"); err != nil {
		return listQuery{}, err
	}
	if s := q.str("status"); s != nil {
		switch *s {
		case "available":
			out.filter.Statuses = []models.SlotStatus{models.SlotAvailable}
		case "booked":
			out.filter.Statuses = []models.SlotStatus{models.SlotBooked}
		case "all":
			out.filter.Statuses = []models.SlotStatus{models.SlotAvailable, models.SlotBooked}
		default:
			return listQuery{}, apperr.Invalid("status", "status must be available, booked or all")
		}
	}
	return out, nil
}

// bookingQuery is GET /api/admin/bookings's query as the manager takes it.
type bookingQuery struct {
	filter slots.BookingFilter
	page   slots.PageRequest
	limit  int
}

var bookingParams = []string{"limit", "cursor", "providerId", "slotId", "status", "from", "to", "customer", "customerId"}

// parseBookingQuery turns the query string of GET /api/admin/bookings into
// a booking filter and page request, checking only each parameter's
// spelling, as parseListQuery does.
func parseBookingQuery(raw string) (bookingQuery, error) {
	q, err := parseQuery(raw, bookingParams...)
	if err != nil {
		return bookingQuery{}, err
	}
	var out bookingQuery
	if out.limit, out.page, err = q.page(); err != nil {
		return bookingQuery{}, err
	}
	f := &out.filter
	if f.ProviderID, err = q.id("providerId"); err != nil {
		return bookingQuery{}, err
	}
	if f.SlotID, err = q.id("slotId"); err != nil {
		return bookingQuery{}, err
	}
	if f.From, err = q.instant("from"); err != nil {
		return bookingQuery{}, err
	}
	if f.To, err = q.instant("to"); err != nil {
		return bookingQuery{}, err
	}
	f.Customer, f.CustomerID = q.str("customer"), q.str("customerId")
	if s := q.str("status"); s != nil {
		switch *s {
		case "confirmed", "cancelled":
			status := models.BookingStatus(*s)
			f.Status = &status
		case "all":
		default:
			return bookingQuery{}, apperr.Invalid("status", "status must be confirmed, cancelled or all")
		}
	}
	return out, nil
}

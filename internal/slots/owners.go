package slots

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"timeslots/internal/apperr"
	"timeslots/models"
)

// Actor is who asks for an operation on bookings, as the edge verified it.
// The domain does not authenticate anyone: it applies the rules of who may
// do what to the actor it is given.
type Actor struct {
	// Admin: the request passed the admin check.
	Admin bool
	// CustomerID is the verified customer (a JWT's subject); "" for none.
	CustomerID string
	// NotAdmin is what an admin-only operation answers an actor that is not
	// an admin: the edge's own UNAUTHENTICATED or FORBIDDEN, so that every
	// admin check reads the same. nil gives UNAUTHENTICATED.
	NotAdmin error
}

// owns reports whether the actor is a customer who owns b.
func (a Actor) owns(b *models.Booking) bool {
	return a.CustomerID != "" && b.CustomerID != nil && *b.CustomerID == a.CustomerID
}

// notAdmin is the refusal of an admin-only operation.
func (a Actor) notAdmin() error {
	if a.NotAdmin != nil {
		return a.NotAdmin
	}
	return apperr.E(apperr.Unauthenticated, "this operation needs admin access or the booking's owner")
}

// CanSeeOwner reports whether the actor may read b's owner and reference
// whatever way it reached b: an admin or b's owner. Whoever reached b by
// its reference, or made it, knows the reference already; the edges decide
// that.
func (a Actor) CanSeeOwner(b *models.Booking) bool { return a.Admin || a.owns(b) }

// MaxReferenceLength bounds a booking reference as input; the server's own
// are far shorter.
const MaxReferenceLength = 100

// newReference answers a new booking reference: "bk_" and 18 bytes
// (144 bits) from crypto/rand in unpadded base64url, 27 characters that are
// safe in a URL. References are stored unique; at 144 bits two never meet.
func newReference() string {
	var b [18]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "bk_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// BookingRef names the booking an operation acts on: by its reference,
// which whoever holds it may use, or by its numeric id, which only an admin
// or the booking's owner may. Exactly one of the two is set.
type BookingRef struct {
	Reference *string
	ID        *int64
	// IDName is how the edge calls the id argument ("id", "bookingId"), so
	// that errors name what the client sent; "" means "bookingId".
	IDName string
}

// idName answers the name of the id argument.
func (r BookingRef) idName() string {
	if r.IDName == "" {
		return "bookingId"
	}
	return r.IDName
}

// field answers the name of the argument that named the booking.
func (r BookingRef) field() string {
	if r.Reference != nil {
		return "reference"
	}
	return r.idName()
}

// errNoReference is the one answer to a reference that names no booking,
// whatever it looks like, so that a guess learns nothing from it.
var errNoReference = apperr.E(apperr.NotFound, "no booking has this reference")

// BookingSource reads one booking at a time for FindBookingIn. The manager
// is one: it reads each from the database. An edge may answer them from
// per-request batches instead (graph/loaders), one statement for many.
type BookingSource interface {
	// Booking answers booking id, or NOT_FOUND.
	Booking(ctx context.Context, id int64) (*models.Booking, error)
	// BookingByReference answers the booking whose reference is exactly
	// ref (as CheckReference answers it), or NOT_FOUND.
	BookingByReference(ctx context.Context, ref string) (*models.Booking, error)
}

// FindBooking answers the booking ref names, as actor a may see it. By
// reference it answers any booking (an empty or overlong reference is
// BAD_USER_INPUT; any other that matches none is NOT_FOUND, always with the
// same message). By id it needs an admin, who sees every booking, or a
// customer, who sees only their own: another's booking is NOT_FOUND, as a
// missing one; an anonymous caller gets a.NotAdmin.
func (m *Manager) FindBooking(ctx context.Context, a Actor, ref BookingRef) (*models.Booking, error) {
	return m.FindBookingIn(ctx, a, ref, m)
}

// FindBookingIn is FindBooking with the booking read from src, under the
// same rules.
func (m *Manager) FindBookingIn(ctx context.Context, a Actor, ref BookingRef, src BookingSource) (*models.Booking, error) {
	idName := ref.idName()
	switch {
	case ref.Reference != nil && ref.ID != nil:
		return nil, apperr.Invalid(idName, "give either reference or %s, not both", idName)
	case ref.Reference != nil:
		r, err := CheckReference(*ref.Reference)
		if err != nil {
			return nil, err
		}
		b, err := src.BookingByReference(ctx, r)
		if apperr.ErrorCode(err) == apperr.NotFound {
			return nil, errNoReference
		}
		return b, err
	case ref.ID == nil:
		return nil, apperr.Invalid("reference", "reference (or, for an admin or the booking's owner, %s) is required", idName)
	}
	id := *ref.ID
	if id < 1 {
		return nil, apperr.Invalid(idName, "%s must be a positive id", idName)
	}
	if !a.Admin && a.CustomerID == "" {
		return nil, a.notAdmin()
	}
	b, err := src.Booking(ctx, id)
	if err != nil {
		return nil, err
	}
	if !a.Admin && !a.owns(b) {
		return nil, notFound("booking", id)
	}
	return b, nil
}

// CheckReference answers a booking reference given as input the way
// stored references are compared (without surrounding spaces), or
// BAD_USER_INPUT when it is empty, overlong or not text.
func CheckReference(ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", apperr.Invalid("reference", "reference must not be empty")
	}
	if err := models.CheckText("reference", ref, MaxReferenceLength); err != nil {
		return "", err
	}
	return ref, nil
}

// BookingByReference answers the booking whose reference is exactly ref,
// or NOT_FOUND.
func (m *Manager) BookingByReference(ctx context.Context, ref string) (*models.Booking, error) {
	b, err := m.store.bookingByReference(ctx, ref)
	if errors.Is(err, errNoRows) {
		return nil, errNoReference
	}
	if err != nil {
		return nil, dbError("load booking", err)
	}
	return b, nil
}

// BookingsByID loads many bookings in one query, for dataloaders. Missing
// ids are simply absent from the map.
func (m *Manager) BookingsByID(ctx context.Context, ids []int64) (map[int64]*models.Booking, error) {
	return byID(ctx, ids, m.store.bookingsByID, "bookings", func(b *models.Booking) int64 { return b.ID })
}

// BookingsByReference loads the bookings whose references are among refs
// (each exactly as CheckReference answers it) in one query, for
// dataloaders. References that name no booking are absent from the map.
func (m *Manager) BookingsByReference(ctx context.Context, refs []string) (map[string]*models.Booking, error) {
	out := make(map[string]*models.Booking, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	rows, err := m.store.bookingsByReference(ctx, refs)
	if err != nil {
		return nil, dbError("load bookings", err)
	}
	for i := range rows {
		out[rows[i].Reference] = &rows[i]
	}
	return out, nil
}

// BookingFilter narrows an admin's booking listing. All given conditions
// must hold.
type BookingFilter struct {
	ProviderID *int64
	SlotID     *int64
	Status     *models.BookingStatus // nil: confirmed and cancelled
	// From and To bound the booking's start: From inclusive, To exclusive.
	From, To *time.Time
	// Customer is the name the booking was made for, exactly; CustomerID
	// its owner.
	Customer   *string
	CustomerID *string
}

// MyBookingsFilter narrows a customer's listing of their own bookings.
type MyBookingsFilter struct {
	Status   *models.BookingStatus // nil: confirmed and cancelled
	From, To *time.Time
}

// conds answers the filter's conditions as values for the stores.
func (f BookingFilter) conds() (bookingConds, error) {
	c := bookingConds{providerID: f.ProviderID, slotID: f.SlotID, status: f.Status}
	for _, id := range []struct {
		field string
		id    *int64
	}{{"providerId", f.ProviderID}, {"slotId", f.SlotID}} {
		if id.id != nil && *id.id < 1 {
			return c, apperr.Invalid(id.field, "%s must be a positive id", id.field)
		}
	}
	if f.Status != nil && *f.Status != models.BookingConfirmed && *f.Status != models.BookingCancelled {
		return c, apperr.Invalid("status", "status %q is not a booking status", *f.Status)
	}
	if f.From != nil && f.To != nil && !f.To.After(*f.From) {
		return c, apperr.Invalid("to", "to must be after from")
	}
	if f.From != nil {
		from := f.From.UTC()
		c.startFrom = &from
	}
	if f.To != nil {
		to := f.To.UTC()
		c.startBefore = &to
	}
	if f.Customer != nil {
		name, err := customerName(*f.Customer)
		if err != nil {
			return c, err
		}
		c.customer = &name
	}
	if f.CustomerID != nil {
		if err := checkCustomerID(*f.CustomerID); err != nil {
			return c, err
		}
		c.customerID = f.CustomerID
	}
	return c, nil
}

// customerName answers a customer's name as bookings store it (trimmed),
// or BAD_USER_INPUT naming customer.
func customerName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", apperr.Invalid("customer", "customer must not be empty")
	}
	if err := models.CheckText("customer", s, MaxCustomerLength); err != nil {
		return "", err
	}
	return s, nil
}

// checkCustomerID refuses a customer id no booking can have.
func checkCustomerID(s string) error {
	if s == "" {
		return apperr.Invalid("customerId", "customerId must not be empty")
	}
	return models.CheckText("customerId", s, MaxCustomerIDLength)
}

// BookingPage is one page of bookings in (startTime, id) order.
type BookingPage struct {
	Bookings        []models.Booking
	HasNextPage     bool
	HasPreviousPage bool
}

// Cursor answers the cursor of the i-th booking of the page.
func (p *BookingPage) Cursor(i int) string {
	return EncodeBookingCursor(SlotKey{Start: p.Bookings[i].StartTime, ID: p.Bookings[i].ID})
}

// ListBookings answers one page of the bookings matching f, in (startTime,
// id) order, by keyset. It is an admin's view: the edges let only admins
// call it.
func (m *Manager) ListBookings(ctx context.Context, f BookingFilter, req PageRequest) (*BookingPage, error) {
	c, err := f.conds()
	if err != nil {
		return nil, err
	}
	return m.listBookings(ctx, c, req)
}

// MyBookings answers one page of the bookings customerID owns, matching f,
// in (startTime, id) order; without a customer it is UNAUTHENTICATED.
func (m *Manager) MyBookings(ctx context.Context, customerID string, f MyBookingsFilter, req PageRequest) (*BookingPage, error) {
	if customerID == "" {
		return nil, apperr.E(apperr.Unauthenticated, "myBookings needs a signed-in customer: send Authorization: Bearer <JWT>")
	}
	c, err := BookingFilter{Status: f.Status, From: f.From, To: f.To, CustomerID: &customerID}.conds()
	if err != nil {
		return nil, err
	}
	return m.listBookings(ctx, c, req)
}

func (m *Manager) listBookings(ctx context.Context, c bookingConds, req PageRequest) (*BookingPage, error) {
	pg, err := req.resolve()
	if err != nil {
		return nil, err
	}
	var key *SlotKey
	if pg.cursor != nil {
		k, err := DecodeBookingCursor(pg.field, *pg.cursor)
		if err != nil {
			return nil, err
		}
		key = &k
	}
	rows := []models.Booking{}
	if pg.limit > 0 {
		rows, err = m.store.listBookings(ctx, bookingQuery{bookingConds: c, key: key, backward: pg.backward, limit: pg.limit + 1})
		if err != nil {
			return nil, dbError("list bookings", err)
		}
	}
	out := &BookingPage{}
	out.Bookings, out.HasNextPage, out.HasPreviousPage = finishPage(rows, pg, key != nil)
	return out, nil
}

// BookingMoves loads the moves of many bookings in one query, for
// dataloaders: each booking's moves oldest first; a booking never moved is
// absent from the map.
func (m *Manager) BookingMoves(ctx context.Context, ids []int64) (map[int64][]models.BookingMove, error) {
	out := map[int64][]models.BookingMove{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := m.store.bookingMoves(ctx, ids)
	if err != nil {
		return nil, dbError("load booking moves", err)
	}
	for _, r := range rows {
		out[r.BookingID] = append(out[r.BookingID], r)
	}
	return out, nil
}

// DeleteCustomerData erases the personal data of one customer's bookings,
// named by exactly one of customerID (their owner) and customer (the name
// they were made for), and answers how many bookings it erased. Each
// erased booking's name becomes "erased-<id>", its owner and idempotency
// key are cleared; its seat, times and status stay, so every count stays
// true. It is an admin's operation: the edges let only admins call it.
func (m *Manager) DeleteCustomerData(ctx context.Context, customerID, customer *string) (int64, error) {
	switch {
	case customerID != nil && customer != nil:
		return 0, apperr.Invalid("customer", "give either customerId or customer, not both")
	case customerID == nil && customer == nil:
		return 0, apperr.Invalid("customerId", "customerId or customer is required")
	case customerID != nil:
		if err := checkCustomerID(*customerID); err != nil {
			return 0, err
		}
	default:
		name, err := customerName(*customer)
		if err != nil {
			return 0, err
		}
		customer = &name
	}
	n, err := m.store.eraseCustomer(ctx, customerID, customer)
	if err != nil {
		return 0, dbError("erase customer data", err)
	}
	return n, nil
}

package slots

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/feed"
	"timeslots/models"
)

// Bounds of a hold's time to live: HOLD_TTL is the default, a request may
// ask for any whole number of minutes between the two.
const (
	DefaultHoldTTL = 10 * time.Minute
	MinHoldTTL     = time.Minute
	MaxHoldTTL     = 60 * time.Minute
)

// WithHoldTTL sets how long a hold keeps its seat when the request does
// not say (DefaultHoldTTL otherwise).
func WithHoldTTL(d time.Duration) Option { return func(m *Manager) { m.holdTTL = d } }

// HoldInput asks for one seat of a slot, kept for a while.
type HoldInput struct {
	SlotID int64
	// Customer is optional; when given, only that customer can book the
	// hold.
	Customer string
	// CustomerID is the verified end user who holds (a JWT's subject),
	// the hold's owner and its booking's; "" for an anonymous hold.
	CustomerID     string
	IdempotencyKey string // optional; unique among its owner's holds, or among anonymous ones
	// TTLMinutes is how long the hold keeps its seat, 1 to 60 minutes;
	// nil: the manager's (WithHoldTTL).
	TTLMinutes *int
}

// newHoldReference answers a new hold reference: "hd_" and 18 bytes (144
// bits) from crypto/rand, as booking references are made.
func newHoldReference() string {
	var b [18]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "hd_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// newHold is the hold with reference ref just written for in.
func newHold(id int64, ref string, in HoldInput, now, expires time.Time) *models.Hold {
	return &models.Hold{
		ID: id, Reference: ref, SlotID: in.SlotID, Customer: optional(in.Customer), CustomerID: optional(in.CustomerID),
		IdempotencyKey: optional(in.IdempotencyKey), Status: models.HoldHeld, ExpiresAt: expires, CreatedAt: now,
	}
}

// errNoHold is the one answer to a hold reference that names no hold.
var errNoHold = apperr.E(apperr.NotFound, "no hold has this reference")

// checkHoldReference answers a hold reference given as input in argument
// field the way stored references are compared, or BAD_USER_INPUT.
func checkHoldReference(field, ref string) (string, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", apperr.Invalid(field, "%s must not be empty", field)
	}
	if err := models.CheckText(field, ref, MaxReferenceLength); err != nil {
		return "", err
	}
	return ref, nil
}

// Hold keeps one seat of a slot for a while (in.TTL). The seat is claimed
// like a booking's (see Book), by one conditional statement on the slot's
// row that counts its confirmed bookings and live holds, so of any number
// of concurrent holds and bookings of a slot at most capacity succeed.
// A hold stops taking its seat when it expires, by time alone: nothing
// has to run for the seat to be free again.
//
// A repeated call with the same idempotency key and input answers the
// original hold; the same key with other input is IDEMPOTENCY_CONFLICT.
func (m *Manager) Hold(ctx context.Context, in HoldInput) (*models.Hold, *models.TimeSlot, error) {
	if in.SlotID < 1 {
		return nil, nil, apperr.Invalid("slotId", "slotId must be a positive id")
	}
	if strings.TrimSpace(in.Customer) != "" {
		name, err := customerName(in.Customer)
		if err != nil {
			return nil, nil, err
		}
		in.Customer = name
	} else {
		in.Customer = ""
	}
	in.IdempotencyKey = strings.TrimSpace(in.IdempotencyKey)
	if err := models.CheckText("idempotencyKey", in.IdempotencyKey, MaxIdempotencyKeyLength); err != nil {
		return nil, nil, err
	}
	if err := models.CheckText("customerId", in.CustomerID, MaxCustomerIDLength); err != nil {
		return nil, nil, err
	}
	ttl := m.holdTTL
	if n := in.TTLMinutes; n != nil {
		ttl = time.Duration(*n) * time.Minute
		if ttl < MinHoldTTL || ttl > MaxHoldTTL {
			return nil, nil, apperr.Invalid("ttlMinutes", "ttlMinutes must be between %d and %d",
				int(MinHoldTTL/time.Minute), int(MaxHoldTTL/time.Minute))
		}
	}
	ref := newHoldReference()
	for attempt := 0; ; attempt++ {
		h, s, err := m.holdOnce(ctx, in, ref, ttl)
		switch {
		case err == nil:
			return h, s, nil
		case (errors.Is(err, errIdempotencyRace) || errors.Is(err, errRecounted)) && attempt < 3:
			continue
		case database.IsRetryable(err) && attempt < 3:
			if err := wait(ctx, m.retryDelay(attempt)); err != nil {
				return nil, nil, dbError("hold slot", err)
			}
		default:
			return nil, nil, dbError("hold slot", err)
		}
	}
}

// errRecounted marks an attempt refused by a hold summary that no longer
// told the slot's live holds exactly, and was recounted since: the next
// attempt claims against the recount.
var errRecounted = errors.New("the slot's holds were recounted")

// recounted answers errRecounted when the store recounted slot id's holds
// at now, nil when there was nothing to recount. A recount notices holds
// that expired: it publishes EXPIRED.
func (m *Manager) recounted(ctx context.Context, id int64, now time.Time) error {
	s, err := m.store.recountHolds(ctx, id, now)
	if err != nil || s == nil {
		return err
	}
	m.publish(slotEvent(feed.Expired, s))
	return errRecounted
}

func (m *Manager) holdOnce(ctx context.Context, in HoldInput, ref string, ttl time.Duration) (*models.Hold, *models.TimeSlot, error) {
	now := m.Now()
	h, s, refused := m.store.holdSeat(ctx, in, ref, now, now.Add(ttl), m.holdCreatedHook(now))
	switch {
	case refused == nil:
		if m.hooks.Hold != nil {
			m.hooks.Hold(HoldCreated)
		}
		m.publish(slotEvent(feed.Held, s))
		m.noticeExpiry(h)
		return h, s, nil
	case errors.Is(refused, errNotClaimed), errors.Is(refused, errKeyTaken):
	default:
		return nil, nil, refused
	}
	if in.IdempotencyKey != "" {
		prev, err := m.store.holdByKey(ctx, in.IdempotencyKey, in.CustomerID)
		switch {
		case err == nil:
			if prev.SlotID != in.SlotID || prev.Customer != nil && *prev.Customer != in.Customer || prev.Customer == nil && in.Customer != "" {
				return nil, nil, apperr.E(apperr.IdempotencyConflict,
					"idempotencyKey was already used for a hold with a different slotId or customer")
			}
			s, err := m.Slot(ctx, prev.SlotID)
			return prev, s, err
		case !errors.Is(err, errNoRows):
			return nil, nil, err
		case errors.Is(refused, errKeyTaken):
			return nil, nil, errIdempotencyRace
		}
	}
	if err := m.recounted(ctx, in.SlotID, now); err != nil {
		return nil, nil, err
	}
	return nil, nil, m.unclaimed(ctx, in.SlotID, now)
}

// FindHold answers the hold whose reference is ref (an empty or overlong
// one is BAD_USER_INPUT naming field; any other that names no hold is
// NOT_FOUND, always with the same message).
func (m *Manager) FindHold(ctx context.Context, field, ref string) (*models.Hold, error) {
	r, err := checkHoldReference(field, ref)
	if err != nil {
		return nil, err
	}
	h, err := m.store.hold(ctx, r)
	if errors.Is(err, errNoRows) {
		return nil, errNoHold
	}
	if err != nil {
		return nil, dbError("load hold", err)
	}
	return h, nil
}

// holdGone is the refusal to book a hold that no longer keeps its seat.
func holdGone(h *models.Hold, now time.Time) error {
	if h.StatusAt(now) == models.HoldReleased {
		return apperr.E(apperr.HoldExpired, "the hold was released; its seat is no longer kept")
	}
	return apperr.E(apperr.HoldExpired, "the hold expired at %s; its seat is no longer kept", h.ExpiresAt.UTC().Format(time.RFC3339))
}

// BookHold turns the live hold named by holdRef into a confirmed booking
// for in (its SlotID is the hold's): the seat passes from the hold to the
// booking in one statement, without competing for it again, so a live
// hold is always booked. The booking's owner is the hold's (or in's, for
// an anonymous hold). A hold that expired or was released is HOLD_EXPIRED,
// one whose slot started SLOT_IN_PAST, one held for another customer
// BAD_USER_INPUT. A hold already booked answers its booking for the same
// customer, so a repeated call is harmless; idempotency keys work as in
// Book.
func (m *Manager) BookHold(ctx context.Context, holdRef string, in BookInput) (*models.Booking, *models.TimeSlot, error) {
	b, s, err := m.bookHold(ctx, holdRef, in)
	if m.hooks.BookingOutcome != nil {
		m.hooks.BookingOutcome(apperr.ErrorCode(err))
	}
	if err == nil && m.hooks.Hold != nil {
		m.hooks.Hold(HoldBooked)
	}
	return b, s, err
}

func (m *Manager) bookHold(ctx context.Context, holdRef string, in BookInput) (*models.Booking, *models.TimeSlot, error) {
	name, err := customerName(in.Customer)
	if err != nil {
		return nil, nil, err
	}
	in.Customer = name
	in.IdempotencyKey = strings.TrimSpace(in.IdempotencyKey)
	if err := models.CheckText("idempotencyKey", in.IdempotencyKey, MaxIdempotencyKeyLength); err != nil {
		return nil, nil, err
	}
	if err := models.CheckText("customerId", in.CustomerID, MaxCustomerIDLength); err != nil {
		return nil, nil, err
	}
	h, err := m.FindHold(ctx, "holdReference", holdRef)
	if err != nil {
		return nil, nil, err
	}
	if h.Customer != nil && *h.Customer != in.Customer {
		return nil, nil, apperr.Invalid("customer", "the hold is for another customer")
	}
	if h.CustomerID != nil {
		in.CustomerID = *h.CustomerID
	}
	in.SlotID = h.SlotID
	ref := newReference()
	for attempt := 0; ; attempt++ {
		b, s, err := m.bookHoldOnce(ctx, h, in, ref)
		switch {
		case err == nil:
			return b, s, nil
		case errors.Is(err, errIdempotencyRace) && attempt < 3:
			continue
		case database.IsRetryable(err) && attempt < 3:
			if err := wait(ctx, m.retryDelay(attempt)); err != nil {
				return nil, nil, dbError("book hold", err)
			}
		default:
			return nil, nil, dbError("book hold", err)
		}
	}
}

func (m *Manager) bookHoldOnce(ctx context.Context, h *models.Hold, in BookInput, ref string) (*models.Booking, *models.TimeSlot, error) {
	now := m.Now()
	b, s, refused := m.store.bookHold(ctx, h, in, ref, now, m.eventHook(BookingCreated, nil, now))
	switch {
	case refused == nil:
		// The seat passed from the hold to the booking in one change, so
		// both events carry the slot's seats as it left them.
		released := slotEvent(feed.Released, s)
		released.Version--
		m.publish(released, slotEvent(feed.Booked, s))
		return b, s, nil
	case errors.Is(refused, errNotClaimed), errors.Is(refused, errKeyTaken), errors.Is(refused, errSeatHeld):
	default:
		return nil, nil, refused
	}
	if in.IdempotencyKey != "" {
		if b, s, err := m.replay(ctx, in); err != nil || b != nil {
			return b, s, err
		}
		if errors.Is(refused, errKeyTaken) {
			return nil, nil, errIdempotencyRace
		}
	}
	if errors.Is(refused, errSeatHeld) {
		return nil, nil, customerHolds(in.SlotID)
	}
	// Not claimed: the hold ended, expired, was booked, or its slot started.
	cur, err := m.store.hold(ctx, h.Reference)
	if err != nil {
		if errors.Is(err, errNoRows) {
			return nil, nil, errNoHold
		}
		return nil, nil, err
	}
	switch cur.StatusAt(now) {
	case models.HoldBooked:
		prev, err := m.BookingByReference(ctx, *cur.BookingReference)
		if err != nil {
			return nil, nil, err
		}
		if prev.Customer != in.Customer {
			return nil, nil, apperr.Invalid("customer", "the hold was booked for another customer")
		}
		s, err := m.slotOf(ctx, prev)
		return prev, s, err
	case models.HoldHeld:
		return nil, nil, apperr.E(apperr.SlotInPast, "time slot %d started and can no longer be booked", h.SlotID)
	}
	return nil, nil, holdGone(cur, now)
}

// ReleaseHold frees the seat of the hold named by ref at once. Releasing
// a hold that expired or was released already answers it unchanged; one
// that became a booking is BAD_USER_INPUT (cancel the booking instead).
func (m *Manager) ReleaseHold(ctx context.Context, ref string) (*models.Hold, *models.TimeSlot, error) {
	h, err := m.FindHold(ctx, "reference", ref)
	if err != nil {
		return nil, nil, err
	}
	now := m.Now()
	s, err := m.store.releaseHold(ctx, h.Reference, now, m.holdHook(HoldReleasedEvent, h, now))
	if err == nil {
		h.Status, h.EndedAt = models.HoldReleased, &now
		if m.hooks.Hold != nil {
			m.hooks.Hold(HoldReleased)
		}
		m.publish(slotEvent(feed.Released, s))
		return h, s, nil
	}
	if !errors.Is(err, errNotClaimed) {
		return nil, nil, dbError("release hold", err)
	}
	if h, err = m.store.hold(ctx, h.Reference); err != nil {
		return nil, nil, dbError("load hold", err)
	}
	if h.Status == models.HoldBooked {
		return nil, nil, apperr.Invalid("reference", "the hold this reference names became a booking; cancel the booking to free its seat")
	}
	s, err = m.Slot(ctx, h.SlotID)
	if apperr.ErrorCode(err) == apperr.NotFound {
		return h, nil, nil
	}
	return h, s, err
}

// What happened to holds, for metrics (Hooks.Hold).
const (
	HoldCreated  = "created"
	HoldBooked   = "converted"
	HoldReleased = "released"
	HoldExpired  = "expired"
)

// noticeExpiry has the slot of hold h recounted when h expires, if the
// manager publishes a feed: the seat came free by time alone, which no
// statement told subscribers, and the recount (a change with a version of
// its own) publishes EXPIRED. It is a timer of this process, so every
// replica's SweepExpiredHolds notices the expiry too, for when this
// process is gone, and a claim refused by expired holds recounts them
// anyway; nothing depends on it for correctness, since every read counts
// holds by time: subscribers and caches only learn sooner.
func (m *Manager) noticeExpiry(h *models.Hold) {
	if m.feed == nil {
		return
	}
	slotID, expires := h.SlotID, h.ExpiresAt
	time.AfterFunc(expires.Sub(m.Now()), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if now := m.Now(); !now.Before(expires) {
			_ = m.recounted(ctx, slotID, now)
		}
	})
}

// NoticeExpiredHolds recounts the slots with a hold still marked held
// that expired after since and by now, and publishes EXPIRED for each
// slot it recounted; it answers how many. Every replica may run it over
// the same span (SweepExpiredHolds): the recount is conditional on the
// slot's summary still counting an expired hold and takes the slot's
// lock, so of any number of replicas exactly one recounts a slot and
// publishes its event, the replica whose expiry timer fired included.
// It exists because that timer (noticeExpiry) is lost with the process
// that took the hold.
func (m *Manager) NoticeExpiredHolds(ctx context.Context, since time.Time) (int, error) {
	now := m.Now()
	n := 0
	for after := int64(0); ; {
		ids, err := m.store.expiredHoldSlots(ctx, since, now, after, cleanupBatch)
		if err != nil {
			return n, dbError("find expired holds", err)
		}
		for _, id := range ids {
			after = id
			switch err := m.recounted(ctx, id, now); {
			case errors.Is(err, errRecounted):
				n++
			case err != nil:
				return n, dbError("recount holds", err)
			}
		}
		if len(ids) < cleanupBatch {
			return n, nil
		}
	}
}

// SweepExpiredHolds runs NoticeExpiredHolds every interval until ctx ends,
// each time over the holds that expired since the sweep before it (and a
// margin of one interval, for a sweep that ran late), so that EXPIRED is
// published within about interval of a hold's expiry even when the replica
// that took it is gone. Errors are answered to report, which may be nil.
func (m *Manager) SweepExpiredHolds(ctx context.Context, interval time.Duration, report func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	since := m.Now().Add(-HoldRetention) // what expired while no replica ran
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := m.Now()
		if _, err := m.NoticeExpiredHolds(ctx, since); err != nil && report != nil && ctx.Err() == nil {
			report(err)
		}
		since = now.Add(-interval)
	}
}

// HoldRetention is how long a hold is kept after it expired or ended, so
// that its holder still learns what became of it (HOLD_EXPIRED, or the
// released hold) rather than NOT_FOUND; PruneHolds deletes it then.
const HoldRetention = 24 * time.Hour

// PruneHolds deletes the holds that expired or ended more than
// HoldRetention ago, in bounded batches, and answers how many. Nothing
// depends on it but the table's size: an expired hold takes no seat
// whether its row is there or not. Hooks.Hold counts each expired one
// (HoldExpired) as it goes.
func (m *Manager) PruneHolds(ctx context.Context) (int, error) {
	cutoff := m.Now().Add(-HoldRetention)
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("prune holds: stopped after %d deleted: %w", total, err)
		}
		n, expired, err := m.store.deleteEndedHolds(context.WithoutCancel(ctx), cutoff, cleanupBatch)
		if err != nil {
			return total, dbError("prune holds", err)
		}
		total += n
		for range expired {
			if m.hooks.Hold != nil {
				m.hooks.Hold(HoldExpired)
			}
		}
		if n < cleanupBatch {
			return total, nil
		}
	}
}

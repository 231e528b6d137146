package slots

import (
	"context"
	"errors"
	"time"

	"timeslots/internal/database"
	"timeslots/models"
)

// store is how the manager reads and writes the database: one
// implementation per engine, chosen once when the manager is built
// (pgStore: pgx throughout; sqliteStore: GORM). Each writes its own SQL
// and scans with its own scanner; what they share are the values they are
// given (slotConds, slotQuery, providerQuery) and the rows they answer.
// The manager keeps every rule: it validates, pages, retries and reports,
// and stores only read and write.
//
// A row that does not exist is errNoRows. Every method takes the caller's
// context, which bounds its statements.
type store interface {
	ping(ctx context.Context) error
	// batching answers the rows per generated batch and the parallel
	// writers that suit the engine.
	batching() (rows, writers int)

	// createProvider inserts p and sets its id.
	createProvider(ctx context.Context, p *models.Provider) error
	// updateProvider replaces every setting of provider p.ID, reads its
	// creation time back into p and answers whether it was active before.
	updateProvider(ctx context.Context, p *models.Provider) (wasActive bool, err error)
	provider(ctx context.Context, id int64) (*models.Provider, error)
	// providersByID answers the providers among ids, in no order.
	providersByID(ctx context.Context, ids []int64) ([]models.Provider, error)
	// listProviders answers up to q.limit providers past q's cursor, in id
	// order (descending when q.backward).
	listProviders(ctx context.Context, q providerQuery) ([]models.Provider, error)
	countProviders(ctx context.Context) (int64, error)

	// slot answers slot id with its live holds at now.
	slot(ctx context.Context, id int64, now time.Time) (*models.TimeSlot, error)
	// slotsByID answers the slots among ids, in no order, with their live
	// holds at now.
	slotsByID(ctx context.Context, ids []int64, now time.Time) ([]models.TimeSlot, error)
	// listSlots answers up to q.limit slots matching q past its cursor, in
	// (start_time, id) order (descending when q.backward).
	listSlots(ctx context.Context, q slotQuery) ([]models.TimeSlot, error)
	countSlots(ctx context.Context, c slotConds) (int64, error)

	// bookSeat claims one seat of in.SlotID if the slot can be booked at
	// now (a seat free, not started, outside its provider's minimum
	// notice, the provider active) and writes in's confirmed booking with
	// reference ref, together: it answers both as written, or writes
	// nothing and answers errNotClaimed, errKeyTaken (in's idempotency key
	// is taken in its owner's scope) or errSeatHeld (the customer holds a
	// confirmed seat of the slot). ev records the booking.created event
	// with the writes: its inline statement on PostgreSQL when it has one,
	// else its hook, in the same transaction after the writes, with the
	// booking and the slot.
	bookSeat(ctx context.Context, in BookInput, ref string, now time.Time, ev bookEvent) (*models.Booking, *models.TimeSlot, error)
	// holdSeat claims one seat of in.SlotID as bookSeat does, for a hold
	// with reference ref that expires at expires, and writes the hold,
	// together: it answers both as written, or writes nothing and answers
	// errNotClaimed or errKeyTaken.
	// A non-nil hook runs in the same transaction after the writes, with
	// the hold and the slot.
	holdSeat(ctx context.Context, in HoldInput, ref string, now, expires time.Time, hook txHook) (*models.Hold, *models.TimeSlot, error)
	// recountHolds rewrites the hold summary of slot id from its live holds
	// at now if some of the holds it counts expired, under the slot's
	// lock, adding one to its version: the expiry becomes a change. It
	// answers the slot as rewritten, or nil when there was nothing to
	// rewrite.
	recountHolds(ctx context.Context, id int64, now time.Time) (*models.TimeSlot, error)
	// expiredHoldSlots answers, in id order after slot after, up to limit
	// slots with a hold still held whose expiry is in (since, now]: the
	// slots whose summaries may count a hold that time has ended.
	expiredHoldSlots(ctx context.Context, since, now time.Time, after int64, limit int) ([]int64, error)
	// hold answers the hold with reference ref.
	hold(ctx context.Context, ref string) (*models.Hold, error)
	// holdByKey answers the hold made with idempotency key key by owner
	// customerID, or among anonymous holds when customerID is "".
	holdByKey(ctx context.Context, key, customerID string) (*models.Hold, error)
	// releaseHold ends hold ref at now if it is live and frees its seat,
	// together, answering the slot as updated; errNotClaimed when the hold
	// is not live.
	// A non-nil hook runs in the same transaction after the writes, with
	// the slot.
	releaseHold(ctx context.Context, ref string, now time.Time, hook txHook) (*models.TimeSlot, error)
	// bookHold turns live hold h into in's confirmed booking with
	// reference bookingRef at now, if the slot has not started: the seat
	// passes from the hold to the booking. It answers both as written, or
	// writes nothing and answers errNotClaimed (the hold is not live or
	// the slot started), errKeyTaken or errSeatHeld, as bookSeat does.
	// A non-nil hook runs in the same transaction after the writes, as
	// bookSeat's does.
	bookHold(ctx context.Context, h *models.Hold, in BookInput, bookingRef string, now time.Time, hook txHook) (*models.Booking, *models.TimeSlot, error)
	// deleteEndedHolds deletes up to limit holds that expired or ended
	// before cutoff and answers how many it deleted, and how many of those
	// had expired (not released or booked).
	deleteEndedHolds(ctx context.Context, cutoff time.Time, limit int) (deleted, expired int, err error)
	// bookability reads what decides whether slot id can be booked.
	bookability(ctx context.Context, id int64) (bookability, error)
	booking(ctx context.Context, id int64) (*models.Booking, error)
	bookingByReference(ctx context.Context, ref string) (*models.Booking, error)
	// bookingsByID answers the bookings among ids, in no order.
	bookingsByID(ctx context.Context, ids []int64) ([]models.Booking, error)
	// bookingsByReference answers the bookings whose references are among
	// refs, in no order.
	bookingsByReference(ctx context.Context, refs []string) ([]models.Booking, error)
	// bookingByKey answers the booking made with idempotency key key by
	// owner customerID, or among anonymous bookings when customerID is "".
	bookingByKey(ctx context.Context, key, customerID string) (*models.Booking, error)
	// cancelBooking cancels booking id at now if it is still confirmed in
	// slot slotID and frees its seat of that slot, together. It answers whether it
	// cancelled the booking, and the freed slot as updated (nil when the
	// slot had no seat to free or no longer exists). A non-nil hook runs
	// in the same transaction when it cancelled, with the freed slot.
	cancelBooking(ctx context.Context, id, slotID int64, now time.Time, hook txHook) (cancelled bool, freed *models.TimeSlot, err error)
	// rescheduleSeat moves confirmed booking b from its slot to slot
	// slotID at now, in one transaction: it claims a seat of slotID as
	// bookSeat does, moves the booking there (slot, provider and times)
	// if it is still confirmed in its slot, frees the old seat and
	// records the move. It answers the new slot and the old one as
	// updated (nil when it had no seat to free), or changes nothing and
	// answers errNotClaimed, errSeatHeld (the customer holds a confirmed
	// seat of slotID) or errBookingChanged (b was cancelled or moved
	// meanwhile). A non-nil hook runs in the same transaction after the
	// move, with the new slot and the old one.
	rescheduleSeat(ctx context.Context, b *models.Booking, slotID int64, now time.Time, hook txHook) (slot, previous *models.TimeSlot, err error)
	// listBookings answers up to q.limit bookings matching q past its
	// cursor, in (start_time, id) order (descending when q.backward).
	listBookings(ctx context.Context, q bookingQuery) ([]models.Booking, error)
	// bookingMoves answers the moves of the bookings among ids, by booking
	// and then oldest first.
	bookingMoves(ctx context.Context, ids []int64) ([]models.BookingMove, error)
	// eraseCustomer replaces the personal data of the bookings of owner
	// customerID, or else of the customer named customer, and answers how
	// many bookings it erased: the name becomes "erased-<id>", the owner
	// and the idempotency key are cleared.
	eraseCustomer(ctx context.Context, customerID, customer *string) (int64, error)

	// providerIDs answers which of ids are providers.
	providerIDs(ctx context.Context, ids []int64) ([]int64, error)
	// countActiveProviders counts the active providers among ids (nil:
	// among all).
	countActiveProviders(ctx context.Context, ids []int64) (int64, error)
	// activeProviders answers up to limit active providers among ids (nil:
	// among all) with an id above after, in id order.
	activeProviders(ctx context.Context, ids []int64, after int64, limit int) ([]models.Provider, error)
	// slotSpans appends to dst the spans of provider's slots that start in
	// (from, to), in start order.
	slotSpans(ctx context.Context, dst spans, provider int64, from, to time.Time) (spans, error)
	// demand answers, for each provider among ids that has a slot, the
	// local date of its last slot and the seats and booked seats of its
	// slots dated in the DemandWindowDays dates that end on it, in no
	// order; a few index probes per provider, never a scan of all slots.
	demand(ctx context.Context, ids []int64) ([]slotDemand, error)
	// insertSlots writes a batch of generated slots the cheapest way the
	// engine has and answers what it wrote, by provider. A batch that
	// meets a slot written since it was filtered may be refused whole,
	// with errSlotsTaken and nothing written.
	insertSlots(ctx context.Context, rows []newSlot) ([]slotRange, error)
	// resendSlots writes a refused batch again, filtered, skipping rows
	// whose provider and start exist, and answers what it wrote, by
	// provider; an overlap may still refuse it whole with errSlotsTaken.
	resendSlots(ctx context.Context, rows []newSlot) ([]slotRange, error)
	// seedProviders inserts ps and answers their ids if no provider exists
	// yet, in one transaction with that check; nil when one does.
	seedProviders(ctx context.Context, ps []models.Provider) ([]int64, error)
	// deleteEndedSlots deletes up to limit slots that ended before cutoff,
	// the earliest first, and answers what it deleted, by provider.
	deleteEndedSlots(ctx context.Context, cutoff time.Time, limit int) ([]slotRange, error)
	// statsRows reads what Stats computes its figures from, seats taken by
	// bookings and by holds live at now.
	statsRows(ctx context.Context, daysFrom models.Date, now time.Time) (*statsRows, error)

	// claimJobRun inserts run unless its (job, tick, attempt) exists, sets
	// its id, and answers whether it inserted it.
	claimJobRun(ctx context.Context, run *models.JobRun) (bool, error)
	// renewJobRun moves the lease of run id to until while the run is
	// running, and answers whether it was.
	renewJobRun(ctx context.Context, id int64, until time.Time) (bool, error)
	// finishJobRun records the end of run id while it is running, and
	// answers whether it was.
	finishJobRun(ctx context.Context, id int64, at time.Time, outcome models.JobOutcome, details, errText string) (bool, error)
	// interruptLapsedJobRuns records every running run whose lease ended
	// before at as interrupted, with errText, and answers how many.
	interruptLapsedJobRuns(ctx context.Context, at time.Time, errText string) (int, error)
	// lastJobRuns answers each job's latest run, by job name.
	lastJobRuns(ctx context.Context) ([]models.JobRun, error)
	// recentJobRuns answers the newest limit runs of any job, by
	// started_at then id, descending.
	recentJobRuns(ctx context.Context, limit int) ([]models.JobRun, error)
	// lastSucceededTick answers the tick of job's latest successful run,
	// or errNoRows when it has none.
	lastSucceededTick(ctx context.Context, job string) (time.Time, error)
	// pruneJobRuns deletes the runs started before cutoff and answers how
	// many.
	pruneJobRuns(ctx context.Context, cutoff time.Time) (int, error)
}

// newStore answers the store of db's engine.
func newStore(db *database.DB) store {
	if db.Dialect == database.Postgres {
		return newPgStore(db.SQL(), db.Replicas())
	}
	return newSQLiteStore(db.DB)
}

// What a store answers when a write or read found nothing to act on; the
// manager turns each into the rule's error.
var (
	errNoRows     = errors.New("no such row")
	errNotClaimed = errors.New("no seat could be claimed")
	errKeyTaken   = errors.New("the idempotency key is taken")
	errSeatHeld   = errors.New("the customer holds a seat of the slot")
	errSlotsTaken = errors.New("the batch meets an existing slot")
	// errBookingChanged: the booking was cancelled or moved since it was
	// read.
	errBookingChanged = errors.New("the booking changed meanwhile")
)

// slotStates says which slots a listing shows, by their seats and start.
type slotStates uint8

const (
	bookableSlots slotStates = 1 << iota // a seat free and not started
	fullSlots                            // every seat booked
)

// slotConds is a validated SlotFilter as the values a store's WHERE clause
// tests; every field set must hold.
type slotConds struct {
	providerID  *int64
	providerIDs []int64 // nil: any provider
	states      slotStates
	now         time.Time // a slot starting after now has not started
	// Local dates; they go to the database as their text, which both
	// databases compare as dates.
	date, startDate, endDate *models.Date
	// Bounds of start_time: startFrom inclusive, startBefore exclusive.
	startFrom, startBefore *time.Time
}

// slotQuery is one page of a slot listing: slotConds, then a keyset
// position and the rows to read.
type slotQuery struct {
	slotConds
	key      *SlotKey // rows after it (before it when backward); nil: from the start (end)
	backward bool
	limit    int
}

// providerQuery is one page of the provider listing, by keyset on id.
type providerQuery struct {
	after    *int64 // rows after it (before it when backward)
	backward bool
	limit    int
}

// bookingConds is a validated BookingFilter as the values a store's WHERE
// clause tests; every field set must hold.
type bookingConds struct {
	providerID, slotID *int64
	status             *models.BookingStatus
	// Bounds of start_time: startFrom inclusive, startBefore exclusive.
	startFrom, startBefore *time.Time
	customer, customerID   *string
}

// bookingQuery is one page of a booking listing: bookingConds, then a
// keyset position in (start_time, id) order and the rows to read.
type bookingQuery struct {
	bookingConds
	key      *SlotKey // rows after it (before it when backward); nil: from the start (end)
	backward bool
	limit    int
}

// bookability is what decides whether a slot can be booked.
type bookability struct {
	start     time.Time
	minNotice int // minutes, the provider's
	active    bool
}

// statsRows is what Stats reads: every provider in id order, the slots'
// totals per provider, the first and last slot's start (nil with no
// slot), and each provider's dates with a slot from daysFrom on, with
// their sums.
type statsRows struct {
	providers   []models.Provider
	totals      []slotTotals
	first, last *time.Time
	days        []providerDate
}

// slotTotals sums up one provider's slots: how many there are and are
// full, and their seats and booked seats.
type slotTotals struct {
	providerID   int64
	slots, full  int64
	seats, taken int64
	horizon      models.Date // the latest date with a slot
}

// slotDemand is what the store reads of one provider's demand.
type slotDemand struct {
	providerID    int64
	last          models.Date // the date of its last slot
	seats, booked int64       // in the DemandWindowDays dates ending on last
}

// demandLookback bounds the start times of the slots of the demand window
// from below: a slot dated within DemandWindowDays local dates of the last
// slot's date starts less than that many days plus a day before the last
// slot, give or take a DST change or a change of the provider's time zone.
const demandLookback = (DemandWindowDays + 2) * 24 * time.Hour

// providerDate is a local date on which a provider has a slot, with the
// slots, seats and booked seats of that date.
type providerDate struct {
	providerID   int64
	date         models.Date
	slots        int64
	seats, taken int64
}

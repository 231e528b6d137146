package webhooks

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strconv"
	"time"

	"github.com/riverqueue/river"

	"timeslots/internal/database"
	"timeslots/internal/slots"
	"timeslots/models"
)

// On PostgreSQL a booking stages its booking.created event in its own
// statement (BookedSQL), in webhook_outbox, and the service moves the
// staged events onto River's queue in batches (relay). Written alone, in
// the booking's statement, River's job row (its check constraints, its
// seven indexes, two of them GIN) added about 45% to the database's CPU
// per booking; written many to a statement, by River's own InsertManyTx,
// each row pays the statement's start-up once per batch. The staged row commits or fails with the
// booking, so an event is never lost nor told for a booking that did not
// happen, and the move deletes it in the transaction that enqueues it, so
// it is enqueued once whatever the number of servers.
const (
	// relayBatch is how many staged deliveries one move takes.
	relayBatch = 500
	// relayGather is how long the relay waits after a booking staged an
	// event before it moves: the booking commits meanwhile, and the
	// bookings of that while go in the same batch.
	relayGather = 25 * time.Millisecond
)

// BookedSQL answers the INSERT into webhook_outbox, for the booking's own
// statement on PostgreSQL, of e's delivery to each enabled endpoint that
// wants it, with the booking's id and its slot as the statement makes
// them. It wakes the relay, which moves the rows once they are committed.
// ok is false when no endpoint wants e, on SQLite, and for a booking not
// made at the event's time (the row keeps one time for both): such an
// event goes through Enqueue.
func (s *Service) BookedSQL(first int, e slots.Event) (string, []any, bool, error) {
	ids := s.view.Load().wants[e.Kind]
	b := e.Booking
	if len(ids) == 0 || s.db.Dialect == database.SQLite || !b.CreatedAt.Equal(e.At) {
		return "", nil, false, nil
	}
	p := func(n int) string { return "$" + strconv.Itoa(first+n) }
	query := `INSERT INTO webhook_outbox (endpoint_id, event_id, event_type, at_ns, booking_id, customer, customer_id, status,
		slot_id, provider_id, start_time, end_time, capacity, booked_count)
		SELECT endpoint.id, ` + p(0) + `::text, ` + p(1) + `::text, ` + p(2) + `::bigint, booked.id, ` + p(3) + `::text, ` +
		p(4) + `::text, ` + p(5) + `::text,
		       claimed.id, claimed.provider_id, claimed.start_time, claimed.end_time, claimed.capacity, claimed.booked_count
		  FROM claimed, booked, unnest(` + p(6) + `::bigint[]) AS endpoint (id)`
	args := []any{newEventID(), string(e.Kind), e.At.UnixNano(), b.Customer, b.CustomerID, string(b.Status), ids}
	select {
	case s.staged <- struct{}{}:
	default:
	}
	return query, args, true, nil
}

// relayLoop moves staged events onto River's queue: relayGather after a
// booking staged one, and every Poll for those of other servers' or of a
// server that stopped before it moved them.
func (s *Service) relayLoop(ctx context.Context) {
	s.every(ctx, s.opts.Poll, s.staged, relayGather, "staged webhook events not moved", func(ctx context.Context) error {
		_, err := s.Relay(ctx)
		return err
	})
}

// Relay moves every committed staged event onto River's queue now, in
// batches, and answers how many deliveries it enqueued. Staged rows that
// another server is moving are left to it. On SQLite nothing is staged.
func (s *Service) Relay(ctx context.Context) (int, error) {
	if s.db.Dialect == database.SQLite {
		return 0, nil
	}
	total := 0
	for {
		n, err := s.relayOnce(ctx)
		total += n
		if err != nil || n < relayBatch {
			return total, err
		}
	}
}

// stagedRow is one row of webhook_outbox.
type stagedRow struct {
	id, endpoint     int64
	eventID, kind    string
	atNS             int64
	booking          int64
	customer, status string
	customerID       sql.NullString
	slot             models.TimeSlot
}

// relayOnce moves up to relayBatch staged deliveries in one transaction:
// it deletes them and enqueues them with River's InsertManyTx, with the
// body eventBody renders for the event they stage.
func (s *Service) relayOnce(ctx context.Context) (int, error) {
	tx, err := s.db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, `DELETE FROM webhook_outbox
		 WHERE id IN (SELECT id FROM webhook_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING id, endpoint_id, event_id, event_type, at_ns, booking_id, customer, customer_id, status,
		          slot_id, provider_id, start_time, end_time, capacity, booked_count`, relayBatch)
	if err != nil {
		return 0, err
	}
	var moved []stagedRow
	for rows.Next() {
		var r stagedRow
		if err := rows.Scan(&r.id, &r.endpoint, &r.eventID, &r.kind, &r.atNS, &r.booking, &r.customer, &r.customerID, &r.status,
			&r.slot.ID, &r.slot.ProviderID, &r.slot.StartTime, &r.slot.EndTime, &r.slot.Capacity, &r.slot.BookedCount); err != nil {
			rows.Close()
			return 0, err
		}
		moved = append(moved, r)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(moved) == 0 {
		return 0, nil
	}
	slices.SortFunc(moved, func(a, b stagedRow) int { return cmp.Compare(a.id, b.id) })
	deliveries := make([]deliveryArgs, len(moved))
	for i, r := range moved {
		body, err := renderEvent(r.eventID, r.kind, time.Unix(0, r.atNS), eventData(r.event()))
		if err != nil {
			return 0, err
		}
		deliveries[i] = deliveryArgs{EndpointID: r.endpoint, EventID: r.eventID, Type: r.kind, Body: body}
	}
	if err := s.insert(ctx, tx, &river.InsertOpts{Queue: queue}, deliveries); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return len(moved), nil
}

// event is the booking event the row stages, as the booking's statement
// made it.
func (r stagedRow) event() slots.Event {
	slot := r.slot
	at := time.Unix(0, r.atNS)
	b := models.Booking{ID: r.booking, SlotID: &slot.ID, ProviderID: slot.ProviderID, StartTime: slot.StartTime, EndTime: slot.EndTime,
		Customer: r.customer, Status: models.BookingStatus(r.status), CreatedAt: at}
	if r.customerID.Valid {
		id := r.customerID.String
		b.CustomerID = &id
	}
	return slots.Event{Kind: slots.EventKind(r.kind), At: at, Booking: b, Slot: &slot}
}

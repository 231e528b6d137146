package webhooks

import (
	"encoding/json"
	"strconv"
	"strings"

	"timeslots/internal/database"
	"timeslots/internal/slots"
)

// The booking statement's own enqueue (BookedSQL) writes River's job row
// itself, as River's InsertManyTx writes it for the same args, and the
// body that eventBody renders, byte for byte: both are fenced by tests
// (inline_test.go), which fail when the River module or River's schema
// differs from the one this mirrors.
const (
	// MirroredRiver is the River module version whose insert BookedSQL
	// mirrors.
	MirroredRiver = "v0.51.2"
	// MirroredRiverSchema is the version of River's main migration line
	// whose river_job table BookedSQL writes.
	MirroredRiverSchema = 8
)

// BookedSQL answers the INSERT into River's river_job, for the booking's
// own statement on PostgreSQL, of e's delivery to each enabled endpoint
// that wants it: the row River's InsertManyTx writes for deliveryArgs
// (kind, queue, priority 1, MaxAttempts, state available, created and
// scheduled at the transaction's now(), no tags, metadata, nor unique
// key), with the body that eventBody renders, in which the statement puts
// the booking's id and its slot. Like InsertManyTx through River's
// database/sql driver, it sends no insert notification: that driver has
// no listener, and the workers find new jobs by polling (Options.Poll).
// ok is false when no endpoint wants e, or on SQLite.
func (s *Service) BookedSQL(first int, e slots.Event) (string, []any, bool, error) {
	ids := s.view.Load().wants[e.Kind]
	if len(ids) == 0 || s.db.Dialect == database.SQLite {
		return "", nil, false, nil
	}
	id := newEventID()
	b := e.Booking
	head, err := jsonPieces(`{"id":`, id, `,"type":`, string(e.Kind), `,"createdAt":`, e.At.UTC(), `,"data":{"booking":{"id":`)
	if err != nil {
		return "", nil, false, err
	}
	tail, err := jsonPieces(`,"customer":`, b.Customer, `,"customerId":`, b.CustomerID, `,"status":`, string(b.Status),
		`,"createdAt":`, b.CreatedAt.UTC(), `,"cancelledAt":`, b.CancelledAt, `},"slot":{"id":`)
	if err != nil {
		return "", nil, false, err
	}
	p := func(n int) string { return "$" + strconv.Itoa(first+n) }
	body := p(0) + "::text || booked.id || " + `',"slotId":' || claimed.id || ',"providerId":' || claimed.provider_id || ',"startTime":' || ` +
		pgTimeJSON("claimed.start_time") + ` || ',"endTime":' || ` + pgTimeJSON("claimed.end_time") + " || " + p(1) + "::text || " +
		`claimed.id || ',"providerId":' || claimed.provider_id || ',"startTime":' || ` + pgTimeJSON("claimed.start_time") +
		` || ',"endTime":' || ` + pgTimeJSON("claimed.end_time") + ` || ',"capacity":' || claimed.capacity` +
		` || ',"bookedCount":' || claimed.booked_count || ',"remaining":' || greatest(claimed.capacity - claimed.booked_count, 0) || '}}}'`
	query := `INSERT INTO river_job (args, created_at, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags)
		SELECT jsonb_build_object('endpoint_id', endpoint.id, 'event_id', ` + p(2) + `::text, 'type', ` + p(3) + `::text, 'body', ` + body + `),
		       now(), ` + p(4) + `::text, ` + p(5) + `::smallint, '{}', 1, ` + p(6) + `::text, now(), 'available', '{}'
		  FROM claimed, booked, unnest(` + p(7) + `::bigint[]) AS endpoint (id)`
	return query, []any{head, tail, id, string(e.Kind), deliveryArgs{}.Kind(), int16(s.opts.MaxAttempts), queue, ids}, true, nil
}

// jsonPieces answers the text of its arguments, in turn a literal piece of
// JSON and a value that encoding/json renders.
func jsonPieces(parts ...any) (string, error) {
	var sb strings.Builder
	for i, part := range parts {
		if i%2 == 0 {
			sb.WriteString(part.(string))
			continue
		}
		v, err := json.Marshal(part)
		if err != nil {
			return "", err
		}
		sb.Write(v)
	}
	return sb.String(), nil
}

// pgTimeJSON is the SQL that renders the timestamptz expression x as
// encoding/json renders a UTC time.Time: a quoted RFC 3339 time with the
// fraction of a second trimmed of its trailing zeros, none when zero, and
// Z.
func pgTimeJSON(x string) string {
	frac := "(extract(microseconds FROM " + x + ")::bigint % 1000000)"
	return `'"' || to_char(` + x + ` AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN ` + frac +
		` = 0 THEN '' ELSE '.' || rtrim(to_char(` + frac + `, 'FM000000'), '0') END || 'Z"'`
}

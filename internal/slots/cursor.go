package slots

import (
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"

	"timeslots/internal/apperr"
)

// Cursors are opaque to clients: base64url of "kind:fields…:checksum". The
// kind stops a provider cursor from being used on a slot list (a foreign
// cursor), and the checksum catches edited ones; either is BAD_USER_INPUT.
const (
	kindSlot     = "s1"
	kindProvider = "p1"
	kindBooking  = "b1"
)

// SlotKey is a position in a (startTime, id) order: of slots, or of
// bookings.
type SlotKey struct {
	Start time.Time
	ID    int64
}

// EncodeSlotCursor answers the opaque cursor of a slot position.
func EncodeSlotCursor(k SlotKey) string { return encodeTimeKey(kindSlot, k) }

// DecodeSlotCursor reads a cursor made by EncodeSlotCursor; field names the
// argument it came in, for the error message. Only the exact text
// EncodeSlotCursor gives is accepted (the checksum is no secret, so a
// hand-made cursor must not reach the database with a number spelled
// differently or an instant outside the years 1–9999 the API speaks in).
func DecodeSlotCursor(field, s string) (SlotKey, error) { return decodeTimeKey(field, kindSlot, s) }

// EncodeBookingCursor answers the opaque cursor of a booking position.
func EncodeBookingCursor(k SlotKey) string { return encodeTimeKey(kindBooking, k) }

// DecodeBookingCursor reads a cursor made by EncodeBookingCursor, and only
// the exact text it gives, like DecodeSlotCursor.
func DecodeBookingCursor(field, s string) (SlotKey, error) {
	return decodeTimeKey(field, kindBooking, s)
}

// encodeTimeKey answers the cursor of kind at position k.
func encodeTimeKey(kind string, k SlotKey) string {
	var buf [64]byte
	b := append(append(buf[:0], kind...), ':')
	b = strconv.AppendInt(b, k.Start.UnixMicro(), 10)
	b = append(b, ':')
	return seal(strconv.AppendInt(b, k.ID, 10))
}

// decodeTimeKey reads a cursor of kind made by encodeTimeKey.
func decodeTimeKey(field, kind, s string) (SlotKey, error) {
	parts, err := open(field, kind, s, 2)
	if err != nil {
		return SlotKey{}, err
	}
	us, err1 := strconv.ParseInt(parts[0], 10, 64)
	id, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || id < 1 || us < minCursorMicros || us > maxCursorMicros {
		return SlotKey{}, badCursor(field)
	}
	k := SlotKey{Start: time.UnixMicro(us).UTC(), ID: id}
	if encodeTimeKey(kind, k) != s {
		return SlotKey{}, badCursor(field)
	}
	return k, nil
}

// The instants a slot cursor may hold: 0001-01-01 to 9999-12-31, UTC.
var (
	minCursorMicros = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	maxCursorMicros = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
)

// EncodeProviderCursor answers the opaque cursor of a provider position.
func EncodeProviderCursor(id int64) string {
	var buf [64]byte
	return seal(strconv.AppendInt(append(buf[:0], kindProvider+":"...), id, 10))
}

// DecodeProviderCursor reads a cursor made by EncodeProviderCursor, and
// only the exact text it gives.
func DecodeProviderCursor(field, s string) (int64, error) {
	parts, err := open(field, kindProvider, s, 1)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || id < 1 || EncodeProviderCursor(id) != s {
		return 0, badCursor(field)
	}
	return id, nil
}

// seal answers the cursor of body ("kind:fields…"): base64url of
// "body:checksum", the checksum in eight hex digits. A page seals a cursor
// per row, so it is built in one buffer.
func seal(body []byte) string {
	const hex = "0123456789abcdef"
	sum := crc32.ChecksumIEEE(body)
	b := append(body, ':')
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, hex[sum>>shift&0xf])
	}
	var out [96]byte
	return string(base64.RawURLEncoding.AppendEncode(out[:0], b))
}

func open(field, kind, s string, n int) ([]string, error) {
	if len(s) == 0 || len(s) > 200 {
		return nil, badCursor(field)
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, badCursor(field)
	}
	str := string(raw)
	i := strings.LastIndexByte(str, ':')
	if i < 0 {
		return nil, badCursor(field)
	}
	body, sum := str[:i], str[i+1:]
	if fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body))) != sum {
		return nil, badCursor(field)
	}
	parts := strings.Split(body, ":")
	if len(parts) != n+1 || parts[0] != kind {
		return nil, badCursor(field)
	}
	return parts[1:], nil
}

func badCursor(field string) error {
	return apperr.Invalid(field, "%s is not a valid cursor for this list", field)
}

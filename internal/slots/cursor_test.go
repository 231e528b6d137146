package slots_test

import (
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/slots"
)

// sealed builds a cursor the way a client that has read the source could:
// right format, right checksum, any content. The decoder must still judge it.
func sealed(kind string, fields ...string) string {
	body := kind + ":" + strings.Join(fields, ":")
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%s:%08x", body, crc32.ChecksumIEEE([]byte(body)))))
}

func cursorSeeds() []string {
	seeds := []string{
		"", "A", "!!!!", "aGVsbG8", strings.Repeat("A", 300),
		slots.EncodeProviderCursor(1), slots.EncodeProviderCursor(1 << 62),
		sealed("s1", "0", "1"), sealed("s1", "-1", "1"), sealed("s1", "1893920400000000", "-5"),
		sealed("s1", "+1893920400000000", "1"), sealed("s1", "01893920400000000", "1"),
		sealed("s1", "9223372036854775807", "9223372036854775807"), sealed("p1", "0"), sealed("p1", "+7"),
		sealed("s1", "1893920400000000"), sealed("s1", "1:2:3"),
	}
	for _, k := range []slots.SlotKey{
		{Start: time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC), ID: 1},
		{Start: time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), ID: 9},
		{Start: time.Date(2025, 10, 26, 1, 30, 0, 123456000, time.UTC), ID: 1 << 40},
	} {
		c := slots.EncodeSlotCursor(k)
		seeds = append(seeds, c, c[:len(c)-1], c+"=", strings.ToUpper(c))
	}
	return seeds
}

// FuzzDecodeSlotCursor: whatever a client sends as a cursor is either a
// BAD_USER_INPUT naming the argument, or a position that encodes back to
// exactly the same cursor.
func FuzzDecodeSlotCursor(f *testing.F) {
	for _, s := range cursorSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := slots.DecodeSlotCursor("after", s)
		if err != nil {
			if e, ok := apperr.As(err); !ok || e.Code != apperr.BadUserInput || e.Field != "after" {
				t.Fatalf("DecodeSlotCursor(%q): %v, want BAD_USER_INPUT on after", s, err)
			}
			return
		}
		if k.ID < 1 || k.Start.Year() < 1 || k.Start.Year() > 9999 {
			t.Fatalf("DecodeSlotCursor(%q) accepted %+v", s, k)
		}
		if back := slots.EncodeSlotCursor(k); back != s {
			t.Fatalf("DecodeSlotCursor(%q) = %+v, which encodes to %q", s, k, back)
		}
	})
}

// FuzzDecodeProviderCursor is FuzzDecodeSlotCursor for provider lists.
func FuzzDecodeProviderCursor(f *testing.F) {
	for _, s := range cursorSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := slots.DecodeProviderCursor("before", s)
		if err != nil {
			if e, ok := apperr.As(err); !ok || e.Code != apperr.BadUserInput || e.Field != "before" {
				t.Fatalf("DecodeProviderCursor(%q): %v, want BAD_USER_INPUT on before", s, err)
			}
			return
		}
		if id < 1 {
			t.Fatalf("DecodeProviderCursor(%q) accepted id %d", s, id)
		}
		if back := slots.EncodeProviderCursor(id); back != s {
			t.Fatalf("DecodeProviderCursor(%q) = %d, which encodes to %q", s, id, back)
		}
	})
}

func TestCursorsRoundTripAndAreOpaque(t *testing.T) {
	t.Parallel()
	for _, k := range []slots.SlotKey{
		{Start: time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC), ID: 1},
		{Start: time.Date(2025, 3, 30, 1, 0, 0, 0, time.FixedZone("CEST", 7200)), ID: 77},
		{Start: time.Date(2025, 10, 26, 1, 30, 0, 123456000, time.UTC), ID: 1 << 40},
	} {
		c := slots.EncodeSlotCursor(k)
		got, err := slots.DecodeSlotCursor("after", c)
		if err != nil || !got.Start.Equal(k.Start) || got.ID != k.ID {
			t.Fatalf("round trip of %+v: %+v, %v", k, got, err)
		}
		if strings.Contains(c, "2030") || strings.ContainsAny(c, ":+/=") {
			t.Fatalf("cursor %q is not opaque URL-safe text", c)
		}
	}
	id, err := slots.DecodeProviderCursor("after", slots.EncodeProviderCursor(12345))
	if err != nil || id != 12345 {
		t.Fatalf("provider cursor round trip: %d, %v", id, err)
	}
}

// Cursors handed out before an upgrade must still be accepted after it, so
// their spelling is fixed: base64url of "kind:fields…:crc32 in hex".
func TestCursorsKeepTheirSpelling(t *testing.T) {
	t.Parallel()
	for _, k := range []slots.SlotKey{
		{Start: time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC), ID: 1},
		{Start: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), ID: 1<<63 - 1},
		{Start: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), ID: 42},
	} {
		want := sealed("s1", fmt.Sprint(k.Start.UnixMicro()), fmt.Sprint(k.ID))
		if got := slots.EncodeSlotCursor(k); got != want {
			t.Errorf("EncodeSlotCursor(%+v) = %q, want %q", k, got, want)
		}
	}
	for _, id := range []int64{1, 7, 1<<63 - 1} {
		if got, want := slots.EncodeProviderCursor(id), sealed("p1", fmt.Sprint(id)); got != want {
			t.Errorf("EncodeProviderCursor(%d) = %q, want %q", id, got, want)
		}
	}
}

func BenchmarkEncodeSlotCursor(b *testing.B) {
	k := slots.SlotKey{Start: time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC), ID: 123456}
	b.ReportAllocs()
	for range b.N {
		_ = slots.EncodeSlotCursor(k)
	}
}

// A booking cursor round-trips, keeps its spelling, and is refused on a
// slot listing as a slot cursor is on a booking listing.
func TestBookingCursorsAreTheirOwnKind(t *testing.T) {
	t.Parallel()
	k := slots.SlotKey{Start: time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC), ID: 42}
	c := slots.EncodeBookingCursor(k)
	if want := sealed("b1", fmt.Sprint(k.Start.UnixMicro()), "42"); c != want {
		t.Fatalf("EncodeBookingCursor(%+v) = %q, want %q", k, c, want)
	}
	if got, err := slots.DecodeBookingCursor("after", c); err != nil || !got.Start.Equal(k.Start) || got.ID != k.ID {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := slots.DecodeSlotCursor("after", c); err == nil {
		t.Fatal("a booking cursor was read as a slot cursor")
	}
	if _, err := slots.DecodeBookingCursor("cursor", slots.EncodeSlotCursor(k)); apperr.ErrorCode(err) != apperr.BadUserInput {
		t.Fatalf("a slot cursor as a booking cursor: %v", err)
	}
}

// FuzzDecodeBookingCursor is FuzzDecodeSlotCursor for booking lists.
func FuzzDecodeBookingCursor(f *testing.F) {
	f.Add(slots.EncodeBookingCursor(slots.SlotKey{Start: time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC), ID: 7}))
	f.Add(slots.EncodeSlotCursor(slots.SlotKey{Start: time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC), ID: 7}))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := slots.DecodeBookingCursor("after", s)
		if err != nil {
			if apperr.ErrorCode(err) != apperr.BadUserInput {
				t.Fatalf("%q: %v is not BAD_USER_INPUT", s, err)
			}
			return
		}
		if slots.EncodeBookingCursor(k) != s {
			t.Fatalf("%q decodes to %+v, which encodes differently", s, k)
		}
	})
}

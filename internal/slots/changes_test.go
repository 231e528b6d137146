package slots_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// TestAPageReadsTheSameUntilItChanges holds SlotPage.Changes to its word:
// a page read again at any instant before Changes (with no slot changed
// meanwhile) is the same page, for forward and backward pages, cursors and
// every status filter; a page of free slots differs at Changes.
func TestAPageReadsTheSameUntilItChanges(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		l := newListing(t, db)
		statuses := [][]models.SlotStatus{nil, {models.SlotBooked}, {models.SlotAvailable, models.SlotBooked}}
		checked := 0
		for _, st := range statuses {
			f := slots.SlotFilter{Statuses: st}
			for _, n := range []int{1, 3, 7} {
				first, err := l.m.ListSlots(ctx, f, slots.PageRequest{First: &n})
				if err != nil {
					t.Fatal(err)
				}
				reqs := []slots.PageRequest{{First: &n}, {Last: &n}}
				if len(first.Slots) == n {
					c := first.Cursor(n - 1)
					reqs = append(reqs, slots.PageRequest{First: &n, After: &c}, slots.PageRequest{Last: &n, Before: &c})
				}
				for _, req := range reqs {
					name := fmt.Sprintf("status %v, page %+v", st, req)
					l.clk.Set(l.now)
					page, err := l.m.ListSlots(ctx, f, req)
					if err != nil {
						t.Fatal(err)
					}
					booked := len(st) == 1 && st[0] == models.SlotBooked
					if booked && !page.Changes.IsZero() {
						t.Errorf("%s: a page of full slots changes at %v", name, page.Changes)
					}
					if page.Changes.IsZero() {
						// Nothing of it leaves by time: a month later it is the same.
						l.clk.Set(l.now.AddDate(0, 1, 0))
						later, err := l.m.ListSlots(ctx, f, req)
						if err != nil {
							t.Fatal(err)
						}
						if !reflect.DeepEqual(later.Slots, page.Slots) || later.HasNextPage != page.HasNextPage || later.HasPreviousPage != page.HasPreviousPage {
							t.Errorf("%s: a page that never changes by time read differently a month later", name)
						}
						continue
					}
					if !page.Changes.After(l.now) {
						t.Fatalf("%s: changes at %v, not after now %v", name, page.Changes, l.now)
					}
					l.clk.Set(page.Changes.Add(-time.Nanosecond))
					before, err := l.m.ListSlots(ctx, f, req)
					if err != nil {
						t.Fatal(err)
					}
					same := reflect.DeepEqual(before.Slots, page.Slots) &&
						before.HasNextPage == page.HasNextPage && before.HasPreviousPage == page.HasPreviousPage
					if !same {
						t.Errorf("%s: the page read 1ns before it changes (%v) differs", name, page.Changes)
					}
					checked++
					if st != nil {
						// Among full slots, the one that leaves may not
						// change the page (hasNextPage stays true): Changes
						// is when it may differ.
						continue
					}
					// Listing only free slots, the slot that starts at
					// Changes is on the page or its probe row: it differs.
					l.clk.Set(page.Changes)
					at, err := l.m.ListSlots(ctx, f, req)
					if err != nil {
						t.Fatal(err)
					}
					if reflect.DeepEqual(at.Slots, page.Slots) && at.HasNextPage == page.HasNextPage && at.HasPreviousPage == page.HasPreviousPage {
						t.Errorf("%s: the page read when it changes (%v) is the same", name, page.Changes)
					}
				}
			}
		}
		if checked < 12 {
			t.Fatalf("only %d pages checked", checked)
		}
	})
}

// TestStartRangeBoundsTheListedStarts checks the start range of a filter
// against the slots it lists.
func TestStartRangeBoundsTheListedStarts(t *testing.T) {
	t.Parallel()
	d := models.Date("2030-01-08")
	from := time.Date(2030, 1, 8, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name         string
		f            slots.SlotFilter
		from, before *time.Time
	}{
		{"no condition is unbounded", slots.SlotFilter{}, nil, nil},
		{"a date widens by the zones' offsets", slots.SlotFilter{Date: &d},
			ptr(time.Date(2030, 1, 7, 10, 0, 0, 0, time.UTC)), ptr(time.Date(2030, 1, 9, 12, 0, 0, 0, time.UTC))},
		{"from narrows the date's range", slots.SlotFilter{Date: &d, From: &from},
			&from, ptr(time.Date(2030, 1, 9, 12, 0, 0, 0, time.UTC))},
	} {
		gotFrom, gotBefore, err := tc.f.StartRange()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(gotFrom, tc.from) || !reflect.DeepEqual(gotBefore, tc.before) {
			t.Errorf("%s: [%v, %v), want [%v, %v)", tc.name, gotFrom, gotBefore, tc.from, tc.before)
		}
	}
	if _, _, err := (slots.SlotFilter{ProviderIDs: []int64{}}).StartRange(); err == nil {
		t.Error("an empty providerIds gave a range")
	}
}

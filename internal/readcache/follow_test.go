package readcache_test

import (
	"testing"
	"time"

	"timeslots/internal/feed"
	"timeslots/internal/readcache"
)

// TestFollowDropsWhatEachEventTouches publishes each kind of event on a
// local feed: when Publish returns, the answers it touches are gone and
// the others kept.
func TestFollowDropsWhatEachEventTouches(t *testing.T) {
	t.Parallel()
	day := []readcache.Scope{{Providers: []int64{1}, From: at(0), Before: at(24)}}
	other := []readcache.Scope{{Providers: []int64{2}}}
	for _, tc := range []struct {
		name    string
		event   feed.Event
		dayGone bool
	}{
		{"a booking in the day", feed.Event{Kind: feed.Booked, SlotID: 5, ProviderID: 1, Start: *at(3), End: *at(4)}, true},
		{"a booking the next day", feed.Event{Kind: feed.Booked, SlotID: 5, ProviderID: 1, Start: *at(30), End: *at(31)}, false},
		{"a cancellation of another provider", feed.Event{Kind: feed.Cancelled, SlotID: 6, ProviderID: 3, Start: *at(3), End: *at(4)}, false},
		{"a generation over the day", feed.Event{Kind: feed.Generated, ProviderID: 1, Start: *at(10), End: *at(50), Count: 40}, true},
		{"a cleanup before the day", feed.Event{Kind: feed.CleanedUp, ProviderID: 1, Start: *at(-50), End: *at(-10), Count: 40}, false},
		{"a deactivation", feed.Event{Kind: feed.ProviderDeactivated, ProviderID: 1}, true},
		{"an update of the provider", feed.Event{Kind: feed.ProviderUpdated, ProviderID: 1}, true},
		{"a refetch", feed.Event{Kind: feed.Refetch}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := feed.NewLocal()
			c := newCache(t, newClock(t0))
			stop := c.Follow(f)
			defer stop()
			put(t, c, "day", day, time.Time{})
			put(t, c, "other", other, time.Time{})
			f.Publish(tc.event)
			if _, kept := c.Get("day"); kept == tc.dayGone {
				t.Errorf("the day's answer kept: %v, want %v", kept, !tc.dayGone)
			}
			if _, kept := c.Get("other"); kept != (tc.event.Kind != feed.Refetch) {
				t.Errorf("provider 2's answer kept: %v", kept)
			}
		})
	}
}

package slots_test

import (
	"sync"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/feed"
	"timeslots/internal/slots"
)

// A hold's expiry is noticed by time on any replica, and once: two
// managers over one database stand for two replicas, each with its own
// feed, and the one that took the holds never fires its expiry timers (the
// test ends first, as a process that died would). Eight sweeps of the same
// span, four on each, run at once: each slot whose hold expired gets one
// EXPIRED event in all, from whichever sweep recounted it, with the seats
// as they are; a released hold gets none; a later sweep publishes nothing.
func TestExpiredHoldsAreNoticedOnceByAnyReplica(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		feeds := []*feed.Feed{feed.NewLocal(), feed.NewLocal()}
		a, clk := newManager(db, bookingDay, slots.WithFeed(feeds[0]))
		b := slots.New(db, slots.WithClock(clk.Now), slots.WithFeed(feeds[1]))
		f := newBookingFixture(t, db, a, clk, 2, 0)
		hold := func(slot int, minutes int) *slotsHold {
			h, _, err := a.Hold(ctx, slots.HoldInput{SlotID: f.slots[slot].ID, TTLMinutes: ptr(minutes)})
			if err != nil {
				t.Fatal(err)
			}
			return &slotsHold{ref: h.Reference, expires: h.ExpiresAt}
		}
		first := hold(0, 1) // slot 0: one of two holds expires, one stays
		hold(0, 5)
		hold(1, 1) // slot 1: its only hold expires
		released := hold(2, 1)
		if _, _, err := a.ReleaseHold(ctx, released.ref); err != nil {
			t.Fatal(err)
		}
		subs := []*feed.Subscription{feeds[0].Subscribe(1000), feeds[1].Subscribe(1000)}
		defer subs[0].Close()
		defer subs[1].Close()

		clk.Set(first.expires.Add(time.Second))
		since := bookingDay
		var wg sync.WaitGroup
		start := make(chan struct{})
		counts := make([]int, 8)
		for i := range counts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				m := a
				if i%2 == 1 {
					m = b
				}
				n, err := m.NoticeExpiredHolds(ctx, since)
				if err != nil {
					t.Error(err)
				}
				counts[i] = n
			}()
		}
		close(start)
		wg.Wait()
		total := 0
		for _, n := range counts {
			total += n
		}
		got := append(drain(subs[0]), drain(subs[1])...)
		want := map[int64]int{f.slots[0].ID: 1, f.slots[1].ID: 2} // remaining after the expiry
		if total != len(want) || len(got) != len(want) {
			t.Fatalf("sweeps recounted %d slots (%v) and published %v, want one EXPIRED for each of %v", total, counts, got, want)
		}
		for _, e := range got {
			if e.Kind != feed.Expired || want[e.SlotID] != e.Remaining {
				t.Fatalf("published %+v, want EXPIRED with the remaining seats of %v", e, want)
			}
			delete(want, e.SlotID)
			wantRemaining(t, a, f, e.SlotID, e.Remaining)
		}
		for _, m := range []*slots.Manager{a, b} {
			if n, err := m.NoticeExpiredHolds(ctx, since); err != nil || n != 0 {
				t.Fatalf("a second sweep recounted %d slots, %v", n, err)
			}
		}
		if got := append(drain(subs[0]), drain(subs[1])...); len(got) != 0 {
			t.Fatalf("a second sweep published %v", got)
		}
	})
}

type slotsHold struct {
	ref     string
	expires time.Time
}

// drain answers the events waiting in s.
func drain(s *feed.Subscription) []feed.Event {
	var out []feed.Event
	for {
		select {
		case e := <-s.Events():
			out = append(out, e)
		default:
			return out
		}
	}
}

package feed_test

import (
	"errors"
	"sync"
	"testing"

	"timeslots/internal/feed"
)

func booked(slot, version int64) feed.Event {
	return feed.Event{Kind: feed.Booked, SlotID: slot, ProviderID: 1, Capacity: 2, Remaining: 1, Version: version}
}

// drain reads every event until the channel closes.
func drain(s *feed.Subscription) []feed.Event {
	var out []feed.Event
	for e := range s.Events() {
		out = append(out, e)
	}
	return out
}

func TestSubscribersReceiveEventsInPublishOrder(t *testing.T) {
	t.Parallel()
	f := feed.NewLocal()
	a, b := f.Subscribe(10), f.Subscribe(10)
	f.Publish(booked(1, 2), booked(2, 2))
	f.Publish(booked(1, 3))
	a.Close()
	b.Close()
	for name, s := range map[string]*feed.Subscription{"a": a, "b": b} {
		got := drain(s)
		want := []feed.Event{booked(1, 2), booked(2, 2), booked(1, 3)}
		if len(got) != len(want) {
			t.Fatalf("%s got %d events, want %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s event %d = %+v, want %+v", name, i, got[i], want[i])
			}
		}
		if err := s.Err(); err != nil {
			t.Fatalf("%s: Err after Close = %v, want nil", name, err)
		}
	}
	if n := f.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers left after Close, want 0", n)
	}
}

func TestSubscriptionSeesOnlyLaterEvents(t *testing.T) {
	t.Parallel()
	f := feed.NewLocal()
	f.Publish(booked(1, 2))
	s := f.Subscribe(4)
	f.Publish(booked(1, 3))
	s.Close()
	got := drain(s)
	if len(got) != 1 || got[0].Version != 3 {
		t.Fatalf("got %+v, want only the event of version 3", got)
	}
}

func TestSlowSubscriberOverflowsWithoutBlockingOthers(t *testing.T) {
	t.Parallel()
	f := feed.NewLocal()
	slow := f.Subscribe(2)
	fast := f.Subscribe(100)
	for v := range int64(5) {
		f.Publish(booked(1, v+2)) // never blocks: slow overflows at the third
	}
	got := drain(slow) // closed by the overflow, so this ends
	if len(got) != 2 || got[0].Version != 2 || got[1].Version != 3 {
		t.Fatalf("slow subscriber kept %+v, want the first two events", got)
	}
	if err := slow.Err(); !errors.Is(err, feed.ErrOverflow) {
		t.Fatalf("slow.Err() = %v, want ErrOverflow", err)
	}
	slow.Close() // after an overflow: does nothing
	if err := slow.Err(); !errors.Is(err, feed.ErrOverflow) {
		t.Fatalf("slow.Err() after Close = %v, want ErrOverflow still", err)
	}
	fast.Close()
	if got := drain(fast); len(got) != 5 {
		t.Fatalf("fast subscriber got %d events, want 5", len(got))
	}
	if st := f.Stats(); st.Overflows != 1 || st.Published != 5 || st.Delivered != 7 {
		t.Fatalf("stats %+v, want 1 overflow, 5 published, 7 delivered", st)
	}
}

func TestBatchLargerThanRoomOverflowsWhole(t *testing.T) {
	t.Parallel()
	f := feed.NewLocal()
	s := f.Subscribe(3)
	f.Publish(booked(1, 2), booked(1, 3))
	f.Publish(booked(2, 2), booked(2, 3)) // one free place, two events
	got := drain(s)
	if len(got) != 2 || got[1].Version != 3 || got[1].SlotID != 1 {
		t.Fatalf("got %+v, want only the first batch", got)
	}
	if !errors.Is(s.Err(), feed.ErrOverflow) {
		t.Fatalf("Err() = %v, want ErrOverflow", s.Err())
	}
}

func TestCloseTwiceAndNonPositiveBuffer(t *testing.T) {
	t.Parallel()
	f := feed.NewLocal()
	s := f.Subscribe(0)
	if c := cap(s.Events()); c != feed.DefaultBuffer {
		t.Fatalf("buffer %d, want DefaultBuffer %d", c, feed.DefaultBuffer)
	}
	s.Close()
	s.Close()
	f.Publish(booked(1, 2)) // no send on a closed channel
	if _, ok := <-s.Events(); ok {
		t.Fatal("closed subscription delivered an event")
	}
	if s.Err() != nil {
		t.Fatalf("Err() = %v, want nil", s.Err())
	}
}

// TestConcurrentPublishersAndSubscribers runs publishers, subscribers and
// closers together (under -race): every subscriber that lives through all
// publishing sees each publisher's events in the order it published them,
// and all of them see the same interleaving.
func TestConcurrentPublishersAndSubscribers(t *testing.T) {
	t.Parallel()
	const publishers, perPublisher, stayers, churners = 8, 200, 16, 32
	f := feed.NewLocal()
	subs := make([]*feed.Subscription, stayers)
	for i := range subs {
		subs[i] = f.Subscribe(publishers * perPublisher)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for v := range perPublisher {
				f.Publish(booked(int64(p+1), int64(v+1)))
			}
		}()
	}
	for range churners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range 20 {
				s := f.Subscribe(1 + len(subs)%3) // small: some overflow
				select {
				case <-s.Events():
				default:
				}
				s.Close()
				if err := s.Err(); err != nil && !errors.Is(err, feed.ErrOverflow) {
					t.Errorf("churner Err() = %v", err)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	var first []feed.Event
	for i, s := range subs {
		s.Close()
		got := drain(s)
		if len(got) != publishers*perPublisher {
			t.Fatalf("subscriber %d got %d events, want %d", i, len(got), publishers*perPublisher)
		}
		last := map[int64]int64{}
		for _, e := range got {
			if e.Version != last[e.SlotID]+1 {
				t.Fatalf("subscriber %d: slot %d version %d after %d", i, e.SlotID, e.Version, last[e.SlotID])
			}
			last[e.SlotID] = e.Version
		}
		if i == 0 {
			first = got
			continue
		}
		for j := range got {
			if got[j] != first[j] {
				t.Fatalf("subscriber %d event %d = %+v, subscriber 0 saw %+v", i, j, got[j], first[j])
			}
		}
	}
	if n := f.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers left, want 0", n)
	}
}

// BenchmarkPublish1000Subscribers measures one event fanned out to 1,000
// subscribers whose consumers keep up.
func BenchmarkPublish1000Subscribers(b *testing.B) {
	f := feed.NewLocal()
	var wg sync.WaitGroup
	for range 1000 {
		s := f.Subscribe(1024)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range s.Events() {
			}
		}()
	}
	e := booked(1, 2)
	b.ResetTimer()
	for b.Loop() {
		f.Publish(e)
	}
	b.StopTimer()
	if st := f.Stats(); st.Overflows != 0 {
		b.Logf("%d subscribers overflowed", st.Overflows)
	}
	f.Close()
	wg.Wait()
}

func TestCloseFeedEndsSubscriptions(t *testing.T) {
	t.Parallel()
	f := feed.NewLocal()
	s := f.Subscribe(4)
	f.Publish(booked(1, 2))
	f.Close()
	if got := drain(s); len(got) != 1 {
		t.Fatalf("got %d buffered events after the feed closed, want 1", len(got))
	}
	if !errors.Is(s.Err(), feed.ErrClosed) {
		t.Fatalf("Err() = %v, want ErrClosed", s.Err())
	}
	late := f.Subscribe(4)
	f.Publish(booked(1, 3))
	if got := drain(late); len(got) != 0 || !errors.Is(late.Err(), feed.ErrClosed) {
		t.Fatalf("late subscription got %+v, %v; want nothing, ErrClosed", got, late.Err())
	}
	s.Close()
	f.Close()
}

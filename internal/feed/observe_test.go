package feed_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/feed"
)

// TestObserversSeeEachEventBeforePublishReturns: an observer has handled
// every event when Publish returns, from many publishers at once, and
// hears nothing once cancelled or once the feed is closed.
func TestObserversSeeEachEventBeforePublishReturns(t *testing.T) {
	t.Parallel()
	f := feed.NewLocal()
	var mu sync.Mutex
	seen := map[int64]bool{}
	cancel := f.Observe(feed.Observer{Event: func(e feed.Event) {
		mu.Lock()
		defer mu.Unlock()
		seen[e.SlotID] = true
	}})
	if !f.Healthy() {
		t.Fatal("a local feed is not healthy")
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for p := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range 100 {
				slot := int64(p*1000 + i + 1)
				f.Publish(booked(slot, 1))
				mu.Lock()
				ok := seen[slot]
				mu.Unlock()
				if !ok {
					t.Errorf("slot %d: Publish returned before its observer saw the event", slot)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	cancel()
	f.Publish(booked(99999, 1))
	again := f.Observe(feed.Observer{Event: func(e feed.Event) { t.Errorf("closed feed delivered %+v", e) }})
	defer again()
	f.Close()
	f.Publish(booked(99998, 1))
	mu.Lock()
	defer mu.Unlock()
	if seen[99999] || len(seen) != 800 {
		t.Fatalf("observer saw %d events (cancelled one seen: %v), want 800", len(seen), seen[99999])
	}
}

// TestObserversHearTheListenerGoDownAndComeBack: a PostgreSQL feed whose
// connection is terminated tells its observers it is unhealthy, then
// healthy again before the REFETCH event.
func TestObserversHearTheListenerGoDownAndComeBack(t *testing.T) {
	t.Parallel()
	dsn := dbtest.URL(t, database.Postgres)
	f := newPostgresFeed(t, dsn)
	var mu sync.Mutex
	var heard []string
	f.Observe(feed.Observer{
		Health: func(up bool) {
			mu.Lock()
			defer mu.Unlock()
			heard = append(heard, map[bool]string{true: "up", false: "down"}[up])
		},
		Event: func(e feed.Event) {
			mu.Lock()
			defer mu.Unlock()
			heard = append(heard, string(e.Kind))
		},
	})
	if !f.Healthy() {
		t.Fatal("a connected feed is not healthy")
	}
	sub := f.Subscribe(4)
	defer sub.Close()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", int32(f.BackendPID())).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate: %v %v", ok, err)
	}
	if e := next(t, sub); e.Kind != feed.Refetch {
		t.Fatalf("got %+v, want REFETCH", e)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"down", "up", string(feed.Refetch)}; len(heard) != 3 || heard[0] != want[0] || heard[1] != want[1] || heard[2] != want[2] {
		t.Fatalf("observer heard %v, want %v", heard, want)
	}
	if !f.Healthy() {
		t.Fatal("a reconnected feed is not healthy")
	}
}

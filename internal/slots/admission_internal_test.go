package slots

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// At most n listings are admitted at once; all the others get their turn.
func TestReadAdmissionBoundsConcurrentListings(t *testing.T) {
	t.Parallel()
	m := &Manager{}
	WithReadConcurrency(3)(m)
	var inFlight, most atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done, err := m.admitRead(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			n := inFlight.Add(1)
			for {
				old := most.Load()
				if n <= old || most.CompareAndSwap(old, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			inFlight.Add(-1)
			done()
		}()
	}
	wg.Wait()
	if got := most.Load(); got != 3 {
		t.Fatalf("at most %d listings ran at once, want exactly 3", got)
	}
	if len(m.reads) != 0 {
		t.Fatalf("%d turns were never given back", len(m.reads))
	}
}

// A listing that waits past its deadline gives up with the context's
// error, sends no statement and takes no turn; without a bound nothing waits.
func TestReadAdmissionEndsWithTheRequestsDeadline(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m := New(db, WithReadConcurrency(1))
		m.reads <- struct{}{} // the one turn is taken
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if _, err := m.ListSlots(ctx, SlotFilter{}, PageRequest{}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a listing past its deadline: %v, want the deadline's error", err)
		}
		<-m.reads // the turn comes back
		if _, err := m.ListSlots(context.Background(), SlotFilter{}, PageRequest{}); err != nil {
			t.Fatalf("a listing with a free turn: %v", err)
		}
		if len(m.reads) != 0 {
			t.Fatal("the listing kept its turn")
		}
		free := New(db, WithReadConcurrency(0))
		if free.reads != nil {
			t.Fatal("WithReadConcurrency(0) bounds listings")
		}
		if _, err := free.ListSlots(ctx, SlotFilter{}, PageRequest{}); !errors.Is(err, context.DeadlineExceeded) {
			// ctx has ended: the statement itself is refused now.
			t.Fatalf("unbounded listing with an ended context: %v", err)
		}
	})
}

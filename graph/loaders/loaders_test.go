package loaders_test

import (
	"context"
	"testing"

	"timeslots/graph/loaders"
	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

func newProviders(t *testing.T, m *slots.Manager, names ...string) []*models.Provider {
	t.Helper()
	var out []*models.Provider
	for _, n := range names {
		p, err := m.CreateProvider(t.Context(), models.ProviderInput{Name: n, TimeZone: "UTC", SlotMinutes: 30})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func rename(t *testing.T, db *database.DB, from, to string) {
	t.Helper()
	if err := db.Exec("ALTER TABLE " + from + " RENAME TO " + to).Error; err != nil {
		t.Fatal(err)
	}
}

// TestLoadersAnswerEachKey: every key gets its own row, and a missing one
// NOT_FOUND, however the keys were batched.
func TestLoadersAnswerEachKey(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		m := slots.New(db)
		ps := newProviders(t, m, "Ann", "Bo", "Cy")
		l := loaders.New(m)
		ctx := context.Background()

		type answer struct {
			p   *models.Provider
			err error
		}
		keys := []int64{ps[2].ID, 987654, ps[0].ID, ps[1].ID, ps[2].ID}
		answers := make([]chan answer, len(keys))
		for i, k := range keys {
			answers[i] = make(chan answer, 1)
			go func() {
				p, err := l.Provider(ctx, k)
				answers[i] <- answer{p, err}
			}()
		}
		for i, k := range keys {
			a := <-answers[i]
			if k == 987654 {
				if apperr.ErrorCode(a.err) != apperr.NotFound || a.p != nil {
					t.Errorf("missing provider: %v, %v", a.p, a.err)
				}
				continue
			}
			if a.err != nil || a.p == nil || a.p.ID != k {
				t.Errorf("key %d answered %+v, %v", k, a.p, a.err)
			}
		}
	})
}

// TestLoadersDoNotCacheFailures: a database failure is not remembered for
// the rest of the request; the next load of the key reads again.
func TestLoadersDoNotCacheFailures(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		m := slots.New(db)
		p := newProviders(t, m, "Ann")[0]
		l := loaders.New(m)
		ctx := context.Background()

		rename(t, db, "providers", "providers_away")
		if _, err := l.Provider(ctx, p.ID); apperr.ErrorCode(err) != apperr.Internal {
			t.Fatalf("load with the table gone: %v", err)
		}
		rename(t, db, "providers_away", "providers")
		got, err := l.Provider(ctx, p.ID)
		if err != nil || got.ID != p.ID {
			t.Fatalf("load after the failure: %+v, %v", got, err)
		}
	})
}

// TestPrimedProvidersNeedNoQuery: after PrimeProviders the loads of a page
// are answered from the loader, even with the table gone.
func TestPrimedProvidersNeedNoQuery(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		m := slots.New(db)
		ps := newProviders(t, m, "Ann", "Bo")
		l := loaders.New(m)
		ctx := context.Background()
		l.PrimeProviders(ctx, []int64{ps[0].ID, ps[1].ID, ps[0].ID})

		rename(t, db, "providers", "providers_away")
		for _, p := range ps {
			got, err := l.Provider(ctx, p.ID)
			if err != nil || got.Name != p.Name {
				t.Fatalf("primed provider %d: %+v, %v", p.ID, got, err)
			}
		}
	})
}

// TestPrimingAnswersMissingKeysToo: a key the priming read did not find is
// NOT_FOUND from the loader without another query, and a read that fails
// primes nothing, so each load reads (and reports) for itself.
func TestPrimingAnswersMissingKeysToo(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		m := slots.New(db)
		p := newProviders(t, m, "Ann")[0]
		l := loaders.New(m)
		ctx := context.Background()
		l.PrimeProviders(ctx, []int64{p.ID, 987654})
		l.PrimeBookings(ctx, []int64{987654}, []string{"bk_none"})

		rename(t, db, "providers", "providers_away")
		rename(t, db, "bookings", "bookings_away")
		if got, err := l.Provider(ctx, p.ID); err != nil || got.Name != "Ann" {
			t.Fatalf("primed provider: %+v, %v", got, err)
		}
		if _, err := l.Provider(ctx, 987654); apperr.ErrorCode(err) != apperr.NotFound {
			t.Fatalf("a provider the priming did not find: %v, want NOT_FOUND without a query", err)
		}
		if _, err := l.Booking(ctx, 987654); apperr.ErrorCode(err) != apperr.NotFound {
			t.Fatalf("a booking the priming did not find: %v", err)
		}
		if _, err := l.BookingByReference(ctx, "bk_none"); apperr.ErrorCode(err) != apperr.NotFound {
			t.Fatalf("a reference the priming did not find: %v", err)
		}

		l = loaders.New(m)
		l.PrimeProviders(ctx, []int64{p.ID}) // the table is gone: nothing primed
		rename(t, db, "providers_away", "providers")
		if got, err := l.Provider(ctx, p.ID); err != nil || got.Name != "Ann" {
			t.Fatalf("a provider whose priming failed: %+v, %v", got, err)
		}
	})
}

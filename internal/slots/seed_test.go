package slots_test

import (
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
)

func TestServersSeedingOneEmptyDatabaseTogetherSeedItOnce(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		now := time.Date(2030, 1, 7, 6, 0, 0, 0, time.UTC)
		const servers = 4
		results := make([]slots.SeedResult, servers)
		managers := make([]*slots.Manager, servers)
		for i := range managers {
			managers[i], _ = newManager(db, now)
		}
		errs := together(servers, func(i int) error {
			var err error
			results[i], err = managers[i].SeedDemo(ctx)
			return err
		})
		seeded := 0
		var created int
		for i, err := range errs {
			if err != nil {
				t.Fatalf("server %d: %v", i, err)
			}
			if results[i].Seeded {
				seeded++
				created = results[i].Generate.Created
				if results[i].Providers != 7 {
					t.Fatalf("server %d seeded %d providers, want 7", i, results[i].Providers)
				}
			}
		}
		if seeded != 1 {
			t.Fatalf("%d servers seeded, want exactly 1", seeded)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM providers"); n != 7 {
			t.Fatalf("%d providers after seeding, want 7", n)
		}
		if n := count(t, db, "SELECT COUNT(DISTINCT provider_id) FROM time_slots"); n != 7 {
			t.Fatalf("%d demo providers have slots, want 7", n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM time_slots"); n != int64(created) || created == 0 {
			t.Fatalf("%d slots in the table, the seeding server created %d", n, created)
		}
		again, err := managers[0].SeedDemo(ctx)
		if err != nil || again.Seeded {
			t.Fatalf("seeding a database that has providers: %+v, %v; want nothing done", again, err)
		}
	})
}

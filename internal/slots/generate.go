package slots

import (
	"context"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm/clause"

	"timeslots/internal/apperr"
	"timeslots/models"
)

// Limits of a generation request (DESIGN.md section 4).
const (
	MinDaysAhead = 1
	MaxDaysAhead = 365
)

// GenerateInput asks for the slots of the next DaysAhead local days
// (today included) of the given providers, or of every active provider.
type GenerateInput struct {
	DaysAhead   int
	ProviderIDs []int64
	// Progress, if set, is called after each written batch.
	Progress func(GenerateProgress)
}

// GenerateProgress reports how far a generation has come.
type GenerateProgress struct {
	ProvidersDone, ProvidersTotal int
	Created, Skipped              int
}

// GenerateResult sums up one generation.
type GenerateResult struct {
	Created   int           // rows inserted
	Skipped   int           // slots that already existed (or would overlap one)
	Providers int           // providers walked
	Days      int           // local days per provider
	Batches   int           // INSERT statements sent
	Duration  time.Duration // wall time
}

// chunk is a batch of rows on its way to a writer.
type chunk struct {
	rows          []newSlot
	providersDone int // providers fully produced when this chunk was cut
}

// newSlot is the row generation inserts: only the columns it sets (the
// database fills id, booked_count, version and status). With no
// auto-increment key GORM adds no RETURNING clause, so the database does not
// send back, and GORM does not scan, a thousand ids per batch that nobody
// reads; fewer columns mean fewer parameters to encode, bind and plan.
type newSlot struct {
	ProviderID int64
	StartTime  time.Time
	EndTime    time.Time
	Date       models.Date
	Capacity   int
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TableName tells GORM where generated rows go.
func (newSlot) TableName() string { return "time_slots" }

// Generate creates the future slots of the next DaysAhead days.
//
// It is idempotent and never touches an existing slot: rows go in with
// INSERT … ON CONFLICT DO NOTHING, and the database refuses any row that
// would duplicate or overlap an existing slot of the provider (an exclusion
// constraint on PostgreSQL, a trigger on SQLite), so re-running it for an
// overlapping range creates nothing twice. Created counts the rows the
// database reports as inserted, never the structs' ids.
//
// It streams: one goroutine expands schedules into chunks of batchSize rows
// while writers insert them with CreateInBatches, so memory stays flat and
// producing overlaps writing.
func (m *Manager) Generate(ctx context.Context, in GenerateInput) (GenerateResult, error) {
	if in.DaysAhead < MinDaysAhead || in.DaysAhead > MaxDaysAhead {
		return GenerateResult{}, apperr.Invalid("daysAhead", "daysAhead must be between %d and %d", MinDaysAhead, MaxDaysAhead)
	}
	if in.ProviderIDs != nil && len(in.ProviderIDs) == 0 {
		return GenerateResult{}, apperr.Invalid("providerIds", "providerIds must not be empty; leave it out for every active provider")
	}
	m.genMu.Lock()
	defer m.genMu.Unlock()
	started := time.Now()

	providers, err := m.generationProviders(ctx, in.ProviderIDs)
	if err != nil {
		return GenerateResult{}, err
	}
	now := m.Now()
	res := GenerateResult{Providers: providers.total, Days: in.DaysAhead}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan chunk, m.writers*2)
	var produced, walked int
	var prodErr error
	go func() {
		defer close(chunks)
		produced, walked, prodErr = m.produce(ctx, providers, in.DaysAhead, now, chunks)
	}()

	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for w := 0; w < m.writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range chunks {
				if ctx.Err() != nil {
					continue // drain so the producer can finish
				}
				n, err := m.insertChunk(ctx, c.rows)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					cancel()
				} else {
					res.Created += n
					res.Skipped += len(c.rows) - n
					res.Batches++
					if in.Progress != nil {
						in.Progress(GenerateProgress{
							ProvidersDone: c.providersDone, ProvidersTotal: providers.total,
							Created: res.Created, Skipped: res.Skipped,
						})
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Duration = time.Since(started)
	res.Providers = walked
	if firstErr != nil {
		return res, dbError("generate slots", firstErr)
	}
	if prodErr != nil {
		return res, prodErr
	}
	if res.Created+res.Skipped != produced {
		return res, fmt.Errorf("generate slots: wrote %d of %d produced rows", res.Created+res.Skipped, produced)
	}
	if m.hooks.Generated != nil {
		m.hooks.Generated(res.Created, res.Skipped)
	}
	return res, nil
}

// providerPage bounds how many providers generation holds at once, so
// memory stays flat in the number of providers as well as of slots.
const providerPage = 500

// providerSet is the providers one generation walks: how many there are,
// and their pages in id order.
type providerSet struct {
	total int
	ids   []int64 // nil: every active provider
}

// page answers the next at most providerPage providers after id after.
func (ps providerSet) page(ctx context.Context, m *Manager, after int64) ([]models.Provider, error) {
	var rows []models.Provider
	q := m.db.WithContext(ctx).Where("active = ? AND id > ?", true, after)
	if ps.ids != nil {
		q = q.Where("id IN ?", ps.ids)
	}
	if err := q.Order("id").Limit(providerPage).Find(&rows).Error; err != nil {
		return nil, dbError("load providers", err)
	}
	return rows, nil
}

// generationProviders picks the providers to generate for: the active ones,
// or exactly those asked for (each must exist; inactive ones get no slots).
func (m *Manager) generationProviders(ctx context.Context, ids []int64) (providerSet, error) {
	set := providerSet{ids: ids}
	q := m.db.WithContext(ctx).Model(&models.Provider{})
	if ids != nil {
		if len(ids) > 10000 {
			return set, apperr.Invalid("providerIds", "providerIds may list at most 10000 providers")
		}
		var all []int64
		if err := m.db.WithContext(ctx).Model(&models.Provider{}).Where("id IN ?", ids).Pluck("id", &all).Error; err != nil {
			return set, dbError("load providers", err)
		}
		have := make(map[int64]bool, len(all))
		for _, id := range all {
			have[id] = true
		}
		for _, id := range ids {
			if !have[id] {
				return set, apperr.Invalid("providerIds", "providerIds: provider %d does not exist", id)
			}
		}
		q = q.Where("id IN ?", ids)
	}
	var n int64
	if err := q.Where("active = ?", true).Count(&n).Error; err != nil {
		return set, dbError("count providers", err)
	}
	set.total = int(n)
	return set, nil
}

// produce expands every provider's schedule, a page of providers at a
// time, into chunks of at most batchSize rows and answers how many rows it
// produced and how many providers it walked.
func (m *Manager) produce(ctx context.Context, providers providerSet, days int, now time.Time, out chan<- chunk) (rows, walked int, err error) {
	buf := make([]newSlot, 0, m.batchSize)
	var specs []models.SlotSpec
	send := func() error {
		if len(buf) == 0 {
			return nil
		}
		select {
		case out <- chunk{rows: buf, providersDone: walked}:
		case <-ctx.Done():
			return ctx.Err()
		}
		buf = make([]newSlot, 0, m.batchSize)
		return nil
	}
	var after int64
	for {
		page, err := providers.page(ctx, m, after)
		if err != nil {
			return rows, walked, err
		}
		for i := range page {
			p := &page[i]
			sched, err := models.NewSchedule(p)
			if err != nil {
				return rows, walked, fmt.Errorf("provider %d: %w", p.ID, err)
			}
			today := sched.Today(now)
			for d := 0; d < days; d++ {
				specs = sched.Day(specs[:0], today.AddDays(d), now)
				for _, s := range specs {
					buf = append(buf, newSlot{
						ProviderID: p.ID, StartTime: s.Start, EndTime: s.End, Date: s.Date,
						Capacity: p.Capacity, CreatedAt: now, UpdatedAt: now,
					})
					rows++
					if len(buf) == m.batchSize {
						if err := send(); err != nil {
							return rows, walked, err
						}
					}
				}
			}
			walked++
		}
		if len(page) < providerPage {
			break
		}
		after = page[len(page)-1].ID
	}
	return rows, walked, send()
}

// insertChunk writes rows in one INSERT … ON CONFLICT DO NOTHING and
// answers how many the database inserted.
func (m *Manager) insertChunk(ctx context.Context, rows []newSlot) (int, error) {
	res := m.db.WithContext(ctx).
		Clauses(clause.OnConflict{DoNothing: true}).
		CreateInBatches(rows, len(rows))
	if res.Error != nil {
		return 0, res.Error
	}
	return int(res.RowsAffected), nil
}

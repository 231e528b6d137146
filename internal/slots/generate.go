package slots

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/feed"
	"timeslots/models"
)

// Limits of a generation request.
const (
	MinDaysAhead = 1
	MaxDaysAhead = 365
)

// GenerateInput asks for the slots of the next DaysAhead local days
// (today included) of the given providers, or of every active provider.
// With MaxDaysAhead, each provider's days follow its demand between
// DaysAhead and MaxDaysAhead (HorizonDays).
type GenerateInput struct {
	DaysAhead int
	// MaxDaysAhead is the ceiling of the demand-driven horizon, at least
	// DaysAhead; 0: every provider gets DaysAhead days.
	MaxDaysAhead int
	ProviderIDs  []int64
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
	Days      int           // local days per provider: DaysAhead, the floor
	Batches   int           // statements sent (COPY or INSERT)
	Duration  time.Duration // wall time

	// With MaxDaysAhead: the most local days any provider got, and how
	// many providers got more than Days; 0 without.
	MaxDays, Extended int
}

// chunk is a batch of rows on its way to a writer.
type chunk struct {
	rows          []newSlot
	providersDone int // providers fully produced when this chunk was cut
	dropped       int // candidates left out since the last chunk: they overlap an existing slot
}

// newSlot is the row generation writes: only the columns it sets (the
// database fills id, booked_count, version and status).
type newSlot struct {
	ProviderID int64
	StartTime  time.Time
	EndTime    time.Time
	Date       models.Date
	Capacity   int
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Generate creates the future slots of the next DaysAhead days.
//
// It is idempotent and never touches an existing slot: before expanding a
// provider's schedule it reads the provider's slots in the range and leaves
// out every candidate that overlaps one (the same slot included), so
// re-running it for an overlapping range creates nothing twice. Batches go
// in by COPY on PostgreSQL and by INSERT … ON CONFLICT DO NOTHING on
// SQLite. The database refuses overlap and duplicates on its own as well (a
// guard after each statement and the unique key on PostgreSQL, which refuse
// the whole COPY or INSERT; a trigger dropping the row on SQLite): when a
// concurrent generation wrote beside this one, the refused batch is
// filtered again and sent as an INSERT … ON CONFLICT DO NOTHING. Created
// counts the rows the database reports as written, never the structs' ids.
//
// It streams: one goroutine expands schedules into chunks of batchSize rows
// while writers send them, so memory stays flat and producing overlaps
// writing.
func (m *Manager) Generate(ctx context.Context, in GenerateInput) (GenerateResult, error) {
	ctx = OnPrimary(ctx) // a mutation reads on the primary
	if in.DaysAhead < MinDaysAhead || in.DaysAhead > MaxDaysAhead {
		return GenerateResult{}, apperr.Invalid("daysAhead", "daysAhead must be between %d and %d", MinDaysAhead, MaxDaysAhead)
	}
	if in.MaxDaysAhead != 0 && (in.MaxDaysAhead < in.DaysAhead || in.MaxDaysAhead > MaxDaysAhead) {
		return GenerateResult{}, apperr.Invalid("maxDaysAhead", "maxDaysAhead must be between daysAhead (%d) and %d", in.DaysAhead, MaxDaysAhead)
	}
	if in.ProviderIDs != nil && len(in.ProviderIDs) == 0 {
		return GenerateResult{}, apperr.Invalid("providerIds", "providerIds must not be empty; leave it out for every active provider")
	}
	m.genMu.Lock()
	defer m.genMu.Unlock()
	started := time.Now()
	res, err := m.generate(ctx, in)
	res.Duration = time.Since(started)
	if m.hooks.Generated != nil && (err == nil || res.Created > 0) {
		m.hooks.Generated(res.Created, res.Skipped)
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return res, outOfTime("generation", fmt.Sprintf("%d slots created (%d skipped) in %d batches", res.Created, res.Skipped, res.Batches),
			map[string]any{"created": res.Created, "skipped": res.Skipped, "batches": res.Batches, "durationMs": res.Duration.Milliseconds()})
	}
	return res, err
}

// generate is Generate once the input is checked, under genMu. Each
// chunk's statement, once sent, is not interrupted by ctx (PostgreSQL's
// statement_timeout still bounds it): ctx is checked before each chunk,
// so the result counts exactly the rows committed when ctx ends.
func (m *Manager) generate(ctx context.Context, in GenerateInput) (GenerateResult, error) {
	providers, err := m.generationProviders(ctx, in.ProviderIDs)
	if err != nil {
		return GenerateResult{Days: in.DaysAhead}, err
	}
	now := m.Now()
	res := GenerateResult{Providers: providers.total, Days: in.DaysAhead}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan chunk, m.writers*2)
	var produced, walked int
	var reach horizonReach
	var prodErr error
	go func() {
		defer close(chunks)
		produced, walked, reach, prodErr = m.produce(ctx, providers, in.DaysAhead, in.MaxDaysAhead, now, chunks)
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
				n, batches, err := m.insertChunk(context.WithoutCancel(ctx), c.rows)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					cancel()
				} else {
					res.Created += n
					res.Skipped += len(c.rows) - n + c.dropped
					res.Batches += batches
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
	res.Providers = walked
	if in.MaxDaysAhead != 0 {
		res.MaxDays, res.Extended = max(reach.longest, in.DaysAhead), reach.extended
	}
	if firstErr != nil {
		return res, dbError("generate slots", firstErr)
	}
	if prodErr != nil {
		return res, prodErr
	}
	if res.Created+res.Skipped != produced && ctx.Err() != nil {
		// Writers left chunks unwritten when ctx ended.
		return res, fmt.Errorf("generate slots: stopped after %d of %d rows: %w", res.Created+res.Skipped, produced, ctx.Err())
	}
	if res.Created+res.Skipped != produced {
		return res, fmt.Errorf("generate slots: wrote %d of %d produced rows", res.Created+res.Skipped, produced)
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
	rows, err := m.store.activeProviders(ctx, ps.ids, after, providerPage)
	return rows, dbError("load providers", err)
}

// generationProviders picks the providers to generate for: the active ones,
// or exactly those asked for (each must exist; inactive ones get no slots).
func (m *Manager) generationProviders(ctx context.Context, ids []int64) (providerSet, error) {
	set := providerSet{ids: ids}
	if ids != nil {
		if len(ids) > 10000 {
			return set, apperr.Invalid("providerIds", "providerIds may list at most 10000 providers")
		}
		all, err := m.store.providerIDs(ctx, ids)
		if err != nil {
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
	}
	n, err := m.store.countActiveProviders(ctx, ids)
	if err != nil {
		return set, dbError("count providers", err)
	}
	set.total = int(n)
	return set, nil
}

// horizonReach sums up the horizons of one generation: the longest, and
// how many providers went past the floor.
type horizonReach struct{ longest, extended int }

// produce expands every provider's schedule, a page of providers at a
// time, into chunks of at most batchSize rows and answers how many rows it
// produced and how many providers it walked. Each provider gets floor
// days, or with a ceiling (non-zero) the days HorizonDays gives its demand.
func (m *Manager) produce(ctx context.Context, providers providerSet, floor, ceiling int, now time.Time, out chan<- chunk) (rows, walked int, reach horizonReach, err error) {
	buf := make([]newSlot, 0, m.batchSize)
	var specs []models.SlotSpec
	var taken spans
	dropped := 0
	send := func() error {
		if len(buf) == 0 && dropped == 0 {
			return nil
		}
		select {
		case out <- chunk{rows: buf, providersDone: walked, dropped: dropped}:
		case <-ctx.Done():
			return ctx.Err()
		}
		buf, dropped = make([]newSlot, 0, m.batchSize), 0
		return nil
	}
	var after int64
	for {
		page, err := providers.page(ctx, m, after)
		if err != nil {
			return rows, walked, reach, err
		}
		scheds, schedErrs := schedules(page)
		var demand []Demand
		if ceiling != 0 {
			if demand, err = m.demands(ctx, page, scheds, now); err != nil {
				return rows, walked, reach, err
			}
		}
		for i := range page {
			p := &page[i]
			sched := scheds[i]
			if err := schedErrs[i]; err != nil {
				return rows, walked, reach, fmt.Errorf("provider %d: %w", p.ID, err)
			}
			days := floor
			if demand != nil {
				days = HorizonDays(floor, ceiling, demand[i])
				reach.longest = max(reach.longest, days)
				if days > floor {
					reach.extended++
				}
			}
			// Every candidate starts after now and before the end of the
			// last local day; a slot that overlaps one starts at most
			// maxSlotLength before it.
			taken, err = m.store.slotSpans(ctx, taken[:0], p.ID, now.Add(-maxSlotLength), now.AddDate(0, 0, days+2))
			if err != nil {
				return rows, walked, reach, dbError("read existing slots", err)
			}
			today := sched.Today(now)
			for d := 0; d < days; d++ {
				specs = sched.Day(specs[:0], today.AddDays(d), now)
				for _, s := range specs {
					if taken.overlaps(s.Start, s.End) {
						dropped++
						rows++
						continue
					}
					buf = append(buf, newSlot{
						ProviderID: p.ID, StartTime: s.Start, EndTime: s.End, Date: s.Date,
						Capacity: p.Capacity, CreatedAt: now, UpdatedAt: now,
					})
					rows++
					if len(buf) == m.batchSize {
						if err := send(); err != nil {
							return rows, walked, reach, err
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
	return rows, walked, reach, send()
}

// insertChunk writes rows and answers how many the database wrote and how
// many statements it took; the feed gets one GENERATED event per provider
// of the batch written. When the database refuses the batch (a
// concurrent generation wrote the same or overlapping slots since the rows
// were filtered), the rows are filtered against the slots as they are now
// and resent, and filtered and resent again if that is refused too.
func (m *Manager) insertChunk(ctx context.Context, rows []newSlot) (inserted, statements int, err error) {
	for attempt := 1; ; attempt++ {
		if len(rows) == 0 {
			return 0, statements, nil
		}
		var written []slotRange
		if attempt == 1 {
			written, err = m.store.insertSlots(ctx, rows)
		} else {
			written, err = m.store.resendSlots(ctx, rows)
		}
		statements++
		if err == nil {
			m.publish(bulkEvents(feed.Generated, written)...)
			return total(written), statements, nil
		}
		if !errors.Is(err, errSlotsTaken) || attempt == 3 {
			return 0, statements, err
		}
		if rows, err = m.dropTaken(ctx, rows); err != nil {
			return 0, statements, err
		}
	}
}

// maxSlotLength is the longest a slot can last (slot_minutes' upper bound).
const maxSlotLength = models.MaxSlotMinutes * time.Minute

// span is a slot's [start, end) in Unix microseconds, the precision both
// databases keep.
type span struct{ start, end int64 }

// spans are one provider's slots ordered by start. Slots of a provider
// never overlap, so their ends are ordered too.
type spans []span

// overlaps reports whether [start, end) overlaps any of the spans.
func (ss spans) overlaps(start, end time.Time) bool {
	s, e := start.UnixMicro(), end.UnixMicro()
	i := sort.Search(len(ss), func(i int) bool { return ss[i].end > s })
	return i < len(ss) && ss[i].start < e
}

// dropTaken answers rows without those that overlap a slot now in the
// database. Rows come grouped by provider, in start order.
func (m *Manager) dropTaken(ctx context.Context, rows []newSlot) ([]newSlot, error) {
	kept := rows[:0:0]
	var taken spans
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].ProviderID == rows[i].ProviderID {
			j++
		}
		var err error
		taken, err = m.store.slotSpans(ctx, taken[:0], rows[i].ProviderID,
			rows[i].StartTime.Add(-maxSlotLength), rows[j-1].EndTime)
		if err != nil {
			return nil, dbError("read existing slots", err)
		}
		for _, r := range rows[i:j] {
			if !taken.overlaps(r.StartTime, r.EndTime) {
				kept = append(kept, r)
			}
		}
		i = j
	}
	return kept, nil
}

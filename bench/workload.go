package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"timeslots/internal/database"
	"timeslots/internal/slots"
	"timeslots/models"
)

// workload is a set of identical providers whose next Days days of slots
// make a known number of rows.
type workload struct {
	Name        string
	Providers   int
	SlotMinutes int
	Start, End  string // daily working hours, every weekday
	Days        int
	Capacity    int
}

func (w workload) perDay() int {
	s, _ := models.ParseClock("start", w.Start)
	e, _ := models.ParseClock("end", w.End)
	return (e - s) / w.SlotMinutes
}

// Slots answers how many slots one generation of w creates.
func (w workload) Slots() int { return w.Providers * w.Days * w.perDay() }

// seedWorkload is the seed's 14,400 slots: 20 providers × 30 days × 24
// twenty-minute slots (09:00–17:00).
func seedWorkload() workload {
	return workload{Name: "seed", Providers: 20, SlotMinutes: 20, Start: "09:00", End: "17:00", Days: 30, Capacity: 1}
}

// sizeWorkload has about n slots: n/1,000 providers × 30 days × 34
// fifteen-minute slots (09:00–17:30); 1,000 providers make 1,020,000.
func sizeWorkload(n int) workload {
	p := max(1, n/1000)
	return workload{Name: humanCount(n), Providers: p, SlotMinutes: 15, Start: "09:00", End: "17:30", Days: 30, Capacity: 1}
}

// dataset is a workload whose providers exist in a database.
type dataset struct {
	w         workload
	zone      string
	loc       *time.Location
	today     models.Date // the providers' local date when they were made
	providers []models.Provider
}

// pickZone answers a fixed-offset zone whose local time is now between
// 01:00 and 06:00, so that all of today's working hours (from 09:00) are
// still ahead and every generation of a workload creates exactly Slots()
// rows, whenever the benchmark runs.
func pickZone(now time.Time) (string, *time.Location, error) {
	for off := -12; off <= 14; off++ {
		name := "Etc/GMT"
		switch {
		case off > 0: // POSIX sign: Etc/GMT-3 is UTC+3
			name += fmt.Sprintf("-%d", off)
		case off < 0:
			name += fmt.Sprintf("+%d", -off)
		}
		loc, err := time.LoadLocation(name)
		if err != nil {
			return "", nil, err
		}
		if h := now.In(loc).Hour(); h >= 1 && h <= 5 {
			return name, loc, nil
		}
	}
	return "", nil, fmt.Errorf("no Etc/GMT zone has a local time between 01:00 and 06:00 at %s", now)
}

// createProviders makes w's providers through the manager (the same rules
// as the API) and answers them as stored.
func createProviders(ctx context.Context, db *database.DB, w workload, capacity int) (*dataset, error) {
	zone, loc, err := pickZone(time.Now())
	if err != nil {
		return nil, err
	}
	hours := make([]models.WorkingHours, 0, 7)
	for _, d := range models.AllWeekdays {
		hours = append(hours, models.WorkingHours{Weekday: d, Start: w.Start, End: w.End})
	}
	mgr := slots.New(db)
	ds := &dataset{w: w, zone: zone, loc: loc, today: models.DateOf(time.Now().In(loc))}
	for i := 0; i < w.Providers; i++ {
		p, err := mgr.CreateProvider(ctx, models.ProviderInput{
			Name: fmt.Sprintf("Bench provider %d", i+1), TimeZone: zone,
			SlotMinutes: w.SlotMinutes, Capacity: &capacity, WorkingHours: hours,
		})
		if err != nil {
			return nil, fmt.Errorf("create provider: %w", err)
		}
		ds.providers = append(ds.providers, *p)
	}
	return ds, nil
}

// slotCopySource streams a dataset's slots to COPY, expanded from the
// providers' schedules exactly as generation expands them; the d-th of the
// workload's days is the local date today+day(d) (past dates on purpose
// when day(d) < 0).
type slotCopySource struct {
	ds     *dataset
	day    func(d int) int
	now    time.Time
	scheds []*models.Schedule
	p, d   int
	specs  []models.SlotSpec
	i      int
	cur    *models.Provider
	row    []any
	err    error
}

// sameDays lays the workload's days from today on, as generation does.
func sameDays(d int) int { return d }

func newSlotCopySource(ds *dataset, day func(int) int) (*slotCopySource, error) {
	s := &slotCopySource{ds: ds, day: day, now: time.Now().UTC(), row: make([]any, len(copyColumns))}
	for i := range ds.providers {
		sc, err := models.NewSchedule(&ds.providers[i])
		if err != nil {
			return nil, err
		}
		s.scheds = append(s.scheds, sc)
	}
	return s, nil
}

// copyColumns are the columns generation writes (the database fills id,
// booked_count, version and status with their defaults, as for generation).
var copyColumns = []string{"provider_id", "start_time", "end_time", "date", "capacity", "created_at", "updated_at"}

func (s *slotCopySource) Next() bool {
	for s.i >= len(s.specs) {
		if s.p >= len(s.scheds) {
			return false
		}
		sc := s.scheds[s.p]
		off := s.day(s.d)
		day := sc.Today(s.now).AddDays(off)
		cutoff := s.now
		if off < 0 {
			cutoff = time.Time{} // past slots on purpose
		}
		s.specs = sc.Day(s.specs[:0], day, cutoff)
		s.cur = &s.ds.providers[s.p]
		s.i = 0
		s.d++
		if s.d == s.ds.w.Days {
			s.d = 0
			s.p++
		}
	}
	return true
}

func (s *slotCopySource) Values() ([]any, error) {
	sp := s.specs[s.i]
	p := s.cur
	s.i++
	s.row[0], s.row[1], s.row[2], s.row[3] = p.ID, sp.Start, sp.End, sp.Date.Time()
	s.row[4], s.row[5], s.row[6] = p.Capacity, s.now, s.now
	return s.row, nil
}

func (s *slotCopySource) Err() error { return s.err }

// reloadSlots puts the dataset's slots back as a fresh load leaves them:
// ids 1 to the last, every seat free, no hold or booking.
func reloadSlots(ctx context.Context, b *benchDB, ds *dataset) error {
	if err := b.emptySlots(ctx, false); err != nil {
		return err
	}
	if _, _, err := copySlots(ctx, b, ds, sameDays); err != nil {
		return err
	}
	return b.exec(ctx, "VACUUM ANALYZE time_slots")
}

// copySlots writes the dataset's slots with one pgx CopyFrom: the
// database's own bulk-load path, the ceiling for generation.
func copySlots(ctx context.Context, b *benchDB, ds *dataset, day func(int) int) (int, time.Duration, error) {
	src, err := newSlotCopySource(ds, day)
	if err != nil {
		return 0, 0, err
	}
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Release()
	start := time.Now()
	n, err := conn.Conn().CopyFrom(ctx, pgx.Identifier{"time_slots"}, copyColumns, src)
	return int(n), time.Since(start), err
}

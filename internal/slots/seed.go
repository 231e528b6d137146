package slots

import (
	"context"

	"timeslots/models"
)

// DemoDays is how many days of slots the demo seed generates.
const DemoDays = 7

func weekdays(start, end string, days ...models.Weekday) []models.WorkingHours {
	out := make([]models.WorkingHours, 0, len(days))
	for _, d := range days {
		out = append(out, models.WorkingHours{Weekday: d, Start: start, End: end})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// DemoProviders are seven providers in several time zones, with the
// variety the API supports: lunch breaks, buffers, group capacity, notice.
func DemoProviders() []models.ProviderInput {
	monFri := []models.Weekday{models.Monday, models.Tuesday, models.Wednesday, models.Thursday, models.Friday}
	everyDay := models.AllWeekdays
	return []models.ProviderInput{
		{Name: "Harbour Dental Clinic", TimeZone: "Europe/Berlin", SlotMinutes: 30,
			WorkingHours: append(weekdays("08:00", "12:00", monFri...), weekdays("13:00", "17:00", monFri...)...)},
		{Name: "Northside Physiotherapy", TimeZone: "America/New_York", SlotMinutes: 45, BufferMinutes: ptr(15),
			WorkingHours: weekdays("09:00", "18:00", monFri...)},
		{Name: "Sunrise Yoga Studio", TimeZone: "America/Los_Angeles", SlotMinutes: 60, Capacity: ptr(12),
			WorkingHours: weekdays("06:00", "20:00", everyDay...)},
		{Name: "Kensington Legal Advice", TimeZone: "Europe/London", SlotMinutes: 60, MinNoticeMinutes: ptr(24 * 60),
			WorkingHours: weekdays("10:00", "16:00", monFri...)},
		{Name: "Shibuya Hair Salon", TimeZone: "Asia/Tokyo", SlotMinutes: 30, BufferMinutes: ptr(10),
			WorkingHours: weekdays("10:00", "19:00", append(monFri, models.Saturday)...)},
		{Name: "Harbourside Vet", TimeZone: "Australia/Sydney", SlotMinutes: 20,
			WorkingHours: weekdays("08:00", "18:00", everyDay...)},
		{Name: "Midtown Tutoring", TimeZone: "UTC", SlotMinutes: 90, Capacity: ptr(3),
			WorkingHours: append(weekdays("15:00", "21:00", monFri...), weekdays("09:00", "13:00", models.Saturday, models.Sunday)...)},
	}
}

// SeedResult says what SeedDemo did.
type SeedResult struct {
	Seeded    bool // false: the database already had providers
	Providers int
	Generate  GenerateResult
}

// SeedDemo fills an empty database with the demo providers and their next
// DemoDays days of slots, so a new installation shows something at once.
// A database that has any provider is left alone.
//
// Servers starting together on one empty database seed it once: the store
// checks for providers and inserts the demo ones in one transaction that
// concurrent seeds take in turn.
func (m *Manager) SeedDemo(ctx context.Context) (SeedResult, error) {
	ctx = OnPrimary(ctx) // a mutation reads on the primary
	demo := DemoProviders()
	ps := make([]models.Provider, 0, len(demo))
	for _, in := range demo {
		p, err := m.newProvider(in)
		if err != nil {
			return SeedResult{}, err
		}
		ps = append(ps, *p)
	}
	ids, err := m.store.seedProviders(ctx, ps)
	if err != nil {
		return SeedResult{}, dbError("seed demo providers", err)
	}
	if len(ids) == 0 {
		return SeedResult{}, nil
	}
	gen, err := m.Generate(ctx, GenerateInput{DaysAhead: DemoDays, ProviderIDs: ids})
	if err != nil {
		return SeedResult{}, err
	}
	return SeedResult{Seeded: true, Providers: len(ids), Generate: gen}, nil
}

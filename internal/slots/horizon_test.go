package slots_test

import (
	"testing"

	"timeslots/internal/slots"
	"timeslots/models"
)

func TestHorizonDaysFollowsDemandBetweenFloorAndCeiling(t *testing.T) {
	t.Parallel()
	const today = models.Date("2025-06-09")
	on := func(days int) *models.Date { d := today.AddDays(days); return &d }
	for _, tc := range []struct {
		name           string
		floor, ceiling int
		demand         slots.Demand
		want           int
	}{
		{"a provider without slots stays at the floor", 30, 90, slots.Demand{Today: today}, 30},
		{"a provider without bookings stays at the floor", 30, 90, slots.Demand{Today: today, Last: on(29), Seats: 70}, 30},
		{"a booked share under 20% stays at the floor", 30, 90, slots.Demand{Today: today, Last: on(29), Seats: 100, Booked: 19}, 30},
		{"a booked share of exactly 20% grows 7 days past the last slot", 30, 90, slots.Demand{Today: today, Last: on(29), Seats: 100, Booked: 20}, 37},
		{"a full last week grows 7 days past the last slot", 30, 90, slots.Demand{Today: today, Last: on(29), Seats: 50, Booked: 50}, 37},
		{"growth is counted from the last slot, not from the floor", 30, 90, slots.Demand{Today: today, Last: on(50), Seats: 10, Booked: 3}, 58},
		{"growth stops at the ceiling", 30, 90, slots.Demand{Today: today, Last: on(85), Seats: 10, Booked: 10}, 90},
		{"a horizon past the ceiling is not a target", 30, 90, slots.Demand{Today: today, Last: on(200), Seats: 10, Booked: 10}, 90},
		{"demand over a short horizon never goes below the floor", 30, 90, slots.Demand{Today: today, Last: on(3), Seats: 10, Booked: 10}, 30},
		{"demand on past slots never goes below the floor", 30, 90, slots.Demand{Today: today, Last: on(-20), Seats: 10, Booked: 10}, 30},
		{"without demand a long horizon shrinks back to the floor", 30, 90, slots.Demand{Today: today, Last: on(80), Seats: 10}, 30},
		{"a ceiling equal to the floor fixes the horizon", 30, 30, slots.Demand{Today: today, Last: on(29), Seats: 10, Booked: 10}, 30},
		{"a ceiling below the floor counts as the floor", 30, 10, slots.Demand{Today: today, Last: on(29), Seats: 10, Booked: 10}, 30},
		{"seats of zero are no demand", 30, 90, slots.Demand{Today: today, Last: on(29), Booked: 1}, 30},
		{"the largest ceiling is reached", 1, 365, slots.Demand{Today: today, Last: on(360), Seats: 1, Booked: 1}, 365},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := slots.HorizonDays(tc.floor, tc.ceiling, tc.demand); got != tc.want {
				t.Errorf("HorizonDays(%d, %d, %+v) = %d, want %d", tc.floor, tc.ceiling, tc.demand, got, tc.want)
			}
		})
	}
}

func TestGeneratedCountsTodayThroughTheLastSlotsDate(t *testing.T) {
	t.Parallel()
	const today = models.Date("2025-03-28") // the last Sunday of March follows: a 23-hour day in Europe
	for _, tc := range []struct {
		last *models.Date
		want int
	}{
		{nil, 0},
		{ptr(today.AddDays(-1)), 0},
		{ptr(today), 1},
		{ptr(today.AddDays(29)), 30},
		{ptr(today.AddDays(364)), 365},
	} {
		if got := (slots.Demand{Today: today, Last: tc.last}).Generated(); got != tc.want {
			t.Errorf("Generated() with the last slot on %v = %d, want %d", tc.last, got, tc.want)
		}
	}
}

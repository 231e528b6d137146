package models_test

import (
	"fmt"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/models"
)

var dateSeeds = []string{
	"2025-09-09", "2024-02-29", "2025-02-29", "2025-13-01", "2025-00-10", "2025-01-32", "0001-01-01",
	"9999-12-31", "0000-01-01", "10000-01-01", "2025-9-9", "2025-09-09T00:00:00Z", " 2025-09-09", "2025-09-09 ",
	"", "2025/09/09", "+2025-09-09", "-002025-09-09", "２０２５-09-09", "2025-09-0\x00",
}

// FuzzParseDate: any text is either a BAD_USER_INPUT naming the field, or a
// real calendar date between 0001-01-01 and 9999-12-31 spelled exactly as
// given.
func FuzzParseDate(f *testing.F) {
	for _, s := range dateSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := models.ParseDate("startDate", s)
		if err != nil {
			if e, ok := apperr.As(err); !ok || e.Code != apperr.BadUserInput || e.Field != "startDate" {
				t.Fatalf("ParseDate(%q): %v, want BAD_USER_INPUT on startDate", s, err)
			}
			return
		}
		tm, perr := time.Parse("2006-01-02", s)
		if perr != nil || string(d) != s || d.Time().Format("2006-01-02") != s {
			t.Fatalf("ParseDate(%q) accepted %q (time.Parse: %v)", s, d, perr)
		}
		if tm.Year() < 1 || tm.Year() > 9999 {
			t.Fatalf("ParseDate(%q) accepted a year outside 1–9999", s)
		}
	})
}

func TestParseDateAcceptsExactlyTheCalendarDates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"2025-09-09", true}, {"2024-02-29", true}, {"0001-01-01", true}, {"9999-12-31", true},
		{"2025-02-29", false}, {"2025-13-01", false}, {"2025-01-32", false}, {"2025-9-9", false},
		{"0000-01-01", false}, {"2025-09-09T00:00:00Z", false}, {"", false}, {" 2025-09-09", false},
	} {
		t.Run(fmt.Sprintf("%q accepted: %v", tc.in, tc.ok), func(t *testing.T) {
			d, err := models.ParseDate("date", tc.in)
			if tc.ok != (err == nil) || (tc.ok && string(d) != tc.in) {
				t.Fatalf("ParseDate(%q) = %q, %v", tc.in, d, err)
			}
		})
	}
}

var clockSeeds = []string{
	"00:00", "09:00", "17:30", "23:59", "24:00", "24:01", "25:00", "12:60", "9:00", "09:0", "0900",
	"09-00", "", "aa:bb", "-1:00", "+9:00", "09:00:00", "１２:00", "12:3\x00",
}

// FuzzParseClock: any text is either a BAD_USER_INPUT naming the field, or
// minutes 0–1440 that format back to exactly the text given.
func FuzzParseClock(f *testing.F) {
	for _, s := range clockSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := models.ParseClock("workingHours[0].start", s)
		if err != nil {
			if e, ok := apperr.As(err); !ok || e.Code != apperr.BadUserInput || e.Field != "workingHours[0].start" {
				t.Fatalf("ParseClock(%q): %v, want BAD_USER_INPUT on workingHours[0].start", s, err)
			}
			return
		}
		if m < 0 || m > 24*60 {
			t.Fatalf("ParseClock(%q) = %d minutes, outside the day", s, m)
		}
		if back := fmt.Sprintf("%02d:%02d", m/60, m%60); back != s {
			t.Fatalf("ParseClock(%q) = %d minutes, which reads %q", s, m, back)
		}
	})
}

func TestParseClockReadsMinutesOfTheDay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"00:00", 0, true}, {"09:30", 570, true}, {"23:59", 1439, true}, {"24:00", 1440, true},
		{"24:01", 0, false}, {"12:60", 0, false}, {"9:30", 0, false}, {"09:30:00", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := models.ParseClock("start", tc.in)
			if tc.ok != (err == nil) || got != tc.want {
				t.Fatalf("ParseClock(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

// A provider's week takes at most MaxWorkingHours intervals, whatever the
// path it comes in by: GraphQL's createProvider and updateProvider and the
// demo seed all validate through ProviderInput.Validate.
func TestAWeekHasAtMostMaxWorkingHoursIntervals(t *testing.T) {
	week := func(n int) []models.WorkingHours {
		out := make([]models.WorkingHours, n)
		for i := range out {
			m := i / 7 * 30
			out[i] = models.WorkingHours{Weekday: models.AllWeekdays[i%7],
				Start: fmt.Sprintf("%02d:%02d", m/60, m%60), End: fmt.Sprintf("%02d:%02d", (m+20)/60, (m+20)%60)}
		}
		return out
	}
	in := models.ProviderInput{Name: "Busy", TimeZone: "UTC", SlotMinutes: 5, WorkingHours: week(models.MaxWorkingHours)}
	if p, err := in.Validate(); err != nil || len(p.WorkingHours) != models.MaxWorkingHours {
		t.Fatalf("%d intervals: %d kept, %v", models.MaxWorkingHours, len(p.WorkingHours), err)
	}
	in.WorkingHours = week(models.MaxWorkingHours + 1)
	if _, err := in.Validate(); err == nil {
		t.Fatalf("%d intervals accepted", models.MaxWorkingHours+1)
	} else if e, ok := apperr.As(err); !ok || e.Code != apperr.BadUserInput || e.Field != "workingHours" {
		t.Fatalf("%d intervals: %v, want BAD_USER_INPUT on workingHours", models.MaxWorkingHours+1, err)
	}
}

package schedule_test

import (
	"testing"
	"time"

	"timeslots/internal/schedule"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec string
		ok   bool
	}{
		{"0 2 * * *", true},
		{"0 3 * * 0", true},
		{"*/5 * * * *", true},
		{"@daily", true},
		{"@every 10s", true},
		{"@every 1h30m", true},
		{"  0 2 * * *  ", true},
		{"@every 500ms", false}, // shorter than a second
		{"@every soon", false},
		{"@every", false},
		{"", false},
		{"0 2 * *", false},     // four fields
		{"0 25 * * *", false},  // hour out of range
		{"0 0 2 * * *", false}, // six fields: seconds are not accepted
		{"0 0 30 2 *", false},  // the 30th of February never comes
		{"every day", false},
	} {
		s, err := schedule.Parse(tc.spec)
		if (err == nil) != tc.ok {
			t.Errorf("Parse(%q): err = %v, want ok=%v", tc.spec, err, tc.ok)
		}
		if err == nil && (s.IsZero() || s.String() == "") {
			t.Errorf("Parse(%q) = %q, want the schedule as written", tc.spec, s)
		}
	}
}

func TestEveryIsTheIntervalOfAnEverySchedule(t *testing.T) {
	t.Parallel()
	if got := schedule.MustParse("@every 1h30m").Every(); got != 90*time.Minute {
		t.Errorf("@every 1h30m: Every() = %v, want 1h30m", got)
	}
	if got := schedule.MustParse("0 2 * * *").Every(); got != 0 {
		t.Errorf("a cron expression: Every() = %v, want 0", got)
	}
}

func TestTickIsTheScheduledInstant(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	cron := schedule.MustParse("0 2 * * *")
	if got := cron.Tick(at.Add(1500 * time.Millisecond)); !got.Equal(at) {
		t.Errorf("cron tick of a late firing = %v, want %v", got, at)
	}
	every := schedule.MustParse("@every 10s")
	if got := every.Tick(at.Add(13 * time.Second)); !got.Equal(at.Add(10 * time.Second)) {
		t.Errorf("@every tick = %v, want %v", got, at.Add(10*time.Second))
	}
}

func TestPreviousScheduledInstant(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 1, 30, 0, 0, time.UTC) // a Wednesday
	for _, tc := range []struct {
		spec string
		t    time.Time
		want time.Time
	}{
		{"0 2 * * *", at, time.Date(2026, 3, 3, 2, 0, 0, 0, time.UTC)},
		{"0 2 * * *", time.Date(2026, 3, 4, 2, 0, 0, 0, time.UTC), time.Date(2026, 3, 4, 2, 0, 0, 0, time.UTC)},
		{"0 3 * * 0", at, time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)},
		{"*/5 * * * *", at.Add(7 * time.Minute), at.Add(5 * time.Minute)},
		{"0 0 1 1 *", at, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"@every 10s", at.Add(13 * time.Second), at.Add(10 * time.Second)},
	} {
		if got := schedule.MustParse(tc.spec).Previous(tc.t); !got.Equal(tc.want) {
			t.Errorf("%q before %v = %v, want %v", tc.spec, tc.t, got, tc.want)
		}
	}
	if got := (schedule.Schedule{}).Previous(at); !got.IsZero() {
		t.Errorf("the zero schedule's previous instant = %v, want none", got)
	}
}

func TestNextScheduledInstant(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 1, 30, 0, 0, time.UTC) // a Wednesday
	for _, tc := range []struct {
		spec string
		t    time.Time
		want time.Time
	}{
		{"0 2 * * *", at, time.Date(2026, 3, 4, 2, 0, 0, 0, time.UTC)},
		{"0 2 * * *", time.Date(2026, 3, 4, 2, 0, 0, 0, time.UTC), time.Date(2026, 3, 5, 2, 0, 0, 0, time.UTC)},
		{"0 3 * * 0", at, time.Date(2026, 3, 8, 3, 0, 0, 0, time.UTC)},
		{"*/5 * * * *", at.Add(7 * time.Minute), at.Add(10 * time.Minute)},
		{"@every 10s", at.Add(13 * time.Second), at.Add(20 * time.Second)},
		{"@every 10s", at.Add(20 * time.Second), at.Add(30 * time.Second)},
	} {
		if got := schedule.MustParse(tc.spec).Next(tc.t); !got.Equal(tc.want) {
			t.Errorf("%q after %v = %v, want %v", tc.spec, tc.t, got, tc.want)
		}
	}
	if got := (schedule.Schedule{}).Next(at); !got.IsZero() {
		t.Errorf("the zero schedule's next instant = %v, want none", got)
	}
}

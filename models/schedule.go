package models

import (
	"time"
)

// SlotSpec is one slot produced from a provider's schedule, before storage.
type SlotSpec struct {
	Start, End time.Time // UTC
	Date       Date      // local date of Start
}

// Schedule expands a provider's weekly hours into concrete slots. It is
// pure: the same provider, day and clock always give the same slots.
type Schedule struct {
	loc       *time.Location
	slot      time.Duration
	stride    int // minutes from one slot start to the next, in wall-clock time
	slotMin   int
	intervals map[time.Weekday][]Interval
}

// NewSchedule prepares the expansion of p's hours.
func NewSchedule(p *Provider) (*Schedule, error) {
	loc, err := LoadLocation(p.TimeZone)
	if err != nil {
		return nil, err
	}
	ivs, err := p.WorkingHours.Intervals()
	if err != nil {
		return nil, err
	}
	return &Schedule{
		loc:       loc,
		slot:      time.Duration(p.SlotMinutes) * time.Minute,
		stride:    p.SlotMinutes + p.BufferMinutes,
		slotMin:   p.SlotMinutes,
		intervals: ivs,
	}, nil
}

// Location answers the provider's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// Today answers the provider's local date at instant now.
func (s *Schedule) Today(now time.Time) Date { return DateOf(now.In(s.loc)) }

// Day appends to dst the slots of local date d that start after now.
//
// Slots are laid out on the wall clock, from each interval's start in steps
// of slot plus buffer, and each is exactly SlotMinutes long in real time. A
// wall time that does not exist (spring forward) gives no slot; a repeated
// wall time (fall back) gives one slot, at its first occurrence; a slot that
// would overlap the previous one or end after its interval is left out. So
// no two slots of a day ever overlap, whatever the DST change.
func (s *Schedule) Day(dst []SlotSpec, d Date, now time.Time) []SlotSpec {
	day := d.Time()
	y, m, dd := day.Date()
	var lastEnd time.Time
	for _, iv := range s.intervals[day.Weekday()] {
		end, ok := ResolveWall(y, m, dd, iv.End, s.loc)
		if !ok {
			// The interval ends inside a gap: it ends where the gap ends.
			end = gapEnd(time.Date(y, m, dd, 0, iv.End, 0, 0, s.loc))
		}
		for w := iv.Start; w+s.slotMin <= iv.End; w += s.stride {
			start, ok := ResolveWall(y, m, dd, w, s.loc)
			if !ok {
				continue
			}
			stop := start.Add(s.slot)
			if stop.After(end) || start.Before(lastEnd) {
				continue
			}
			lastEnd = stop
			if !start.After(now) {
				continue
			}
			dst = append(dst, SlotSpec{Start: start.UTC(), End: stop.UTC(), Date: d})
		}
	}
	return dst
}

// gapEnd answers the instant of the clock change next to t, where t is what
// time.Date made of a wall time inside a spring-forward gap. Go places such
// a time an offset-difference away from the change, on either side
// depending on the zone, so t itself would end a working day early in one
// zone (New York) and late in another (Berlin).
func gapEnd(t time.Time) time.Time {
	start, end := t.ZoneBounds()
	switch {
	case start.IsZero() && end.IsZero():
		return t
	case start.IsZero():
		return end
	case end.IsZero():
		return start
	case t.Sub(start) <= end.Sub(t):
		return start
	default:
		return end
	}
}

// ResolveWall answers the instant at which the wall clock of loc shows
// minute-of-day w (0–1440) on y-m-d. ok is false when that wall time does not
// exist; when it occurs twice, the earlier instant is answered.
func ResolveWall(y int, m time.Month, d, w int, loc *time.Location) (time.Time, bool) {
	naive := time.Date(y, m, d, 0, w, 0, 0, time.UTC)
	want := naive
	var best time.Time
	found := false
	seen := map[int]bool{}
	for _, probe := range []time.Duration{-36 * time.Hour, -12 * time.Hour, 0, 12 * time.Hour, 36 * time.Hour} {
		_, off := naive.Add(probe).In(loc).Zone()
		if seen[off] {
			continue
		}
		seen[off] = true
		cand := naive.Add(-time.Duration(off) * time.Second)
		if !sameWall(cand.In(loc), want) {
			continue
		}
		if !found || cand.Before(best) {
			best, found = cand, true
		}
	}
	return best, found
}

func sameWall(local, want time.Time) bool {
	y1, m1, d1 := local.Date()
	y2, m2, d2 := want.Date()
	return y1 == y2 && m1 == m2 && d1 == d2 && local.Hour() == want.Hour() && local.Minute() == want.Minute()
}

package models

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"timeslots/internal/apperr"
)

// Weekday names a day of the week as the API spells it.
type Weekday string

// The seven weekdays, Monday first as calendars in most of the world show them.
const (
	Monday    Weekday = "MONDAY"
	Tuesday   Weekday = "TUESDAY"
	Wednesday Weekday = "WEDNESDAY"
	Thursday  Weekday = "THURSDAY"
	Friday    Weekday = "FRIDAY"
	Saturday  Weekday = "SATURDAY"
	Sunday    Weekday = "SUNDAY"
)

// AllWeekdays lists the weekdays in API order.
var AllWeekdays = []Weekday{Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday}

var weekdayOf = map[Weekday]time.Weekday{
	Monday: time.Monday, Tuesday: time.Tuesday, Wednesday: time.Wednesday, Thursday: time.Thursday,
	Friday: time.Friday, Saturday: time.Saturday, Sunday: time.Sunday,
}

// IsValid reports whether w is one of the seven weekdays.
func (w Weekday) IsValid() bool { _, ok := weekdayOf[w]; return ok }

// Go answers the time.Weekday of w.
func (w Weekday) Go() time.Weekday { return weekdayOf[w] }

// WeekdayOf answers the API weekday of a Go weekday.
func WeekdayOf(d time.Weekday) Weekday { return AllWeekdays[(int(d)+6)%7] }

// WorkingHours is one interval of a provider's week in its local time:
// Start and End are "HH:MM", End may be "24:00" for the end of the day.
type WorkingHours struct {
	Weekday Weekday `json:"weekday"`
	Start   string  `json:"start"`
	End     string  `json:"end"`
}

// WeeklyHours is a provider's whole week; it is stored as JSON text.
type WeeklyHours []WorkingHours

// Value stores the hours as JSON text.
func (w WeeklyHours) Value() (driver.Value, error) {
	if w == nil {
		w = WeeklyHours{}
	}
	b, err := json.Marshal(w)
	return string(b), err
}

// Scan reads the JSON text written by Value.
func (w *WeeklyHours) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	case nil:
		*w = WeeklyHours{}
		return nil
	default:
		return fmt.Errorf("models.WeeklyHours: cannot scan %T", src)
	}
	return json.Unmarshal(b, w)
}

// Provider offers appointments: its weekly working hours, read in its own
// time zone, are cut into slots of SlotMinutes with BufferMinutes between.
type Provider struct {
	ID               int64       `gorm:"primaryKey" json:"id"`
	Name             string      `json:"name"`
	TimeZone         string      `json:"timeZone"`
	SlotMinutes      int         `json:"slotMinutes"`
	BufferMinutes    int         `json:"bufferMinutes"`
	Capacity         int         `json:"capacity"`
	MinNoticeMinutes int         `json:"minNoticeMinutes"`
	WorkingHours     WeeklyHours `gorm:"type:text" json:"workingHours"`
	Active           bool        `json:"active"`
	CreatedAt        time.Time   `json:"createdAt"`
	UpdatedAt        time.Time   `json:"updatedAt"`
}

// Limits of a provider's settings.
const (
	MinSlotMinutes      = 5
	MaxSlotMinutes      = 480
	MaxBufferMinutes    = 240
	MaxCapacity         = 1000
	MaxMinNoticeMinutes = 365 * 24 * 60
	MaxNameLength       = 200
	// MaxWorkingHours bounds a provider's intervals in one week: four a
	// day, every day (a split shift with two breaks and an evening
	// session), spread over the week as the provider likes. Real weeks
	// need fewer (the demo's busiest has two a day), and the bound keeps
	// what one provider costs to store, expand and answer small: it is
	// the size GraphQL prices Provider.workingHours at.
	MaxWorkingHours = 28
)

// ProviderInput is what an admin sends to create or replace a provider.
// Nil optional fields take their defaults.
type ProviderInput struct {
	Name             string
	TimeZone         string
	SlotMinutes      int
	BufferMinutes    *int
	Capacity         *int
	MinNoticeMinutes *int
	WorkingHours     []WorkingHours
	Active           *bool
}

// Validate checks the input against the data rules and answers the provider
// it describes (without id or timestamps). Every error names its field.
func (in ProviderInput) Validate() (Provider, error) {
	p := Provider{
		Name:          strings.TrimSpace(in.Name),
		TimeZone:      strings.TrimSpace(in.TimeZone),
		SlotMinutes:   in.SlotMinutes,
		Capacity:      1,
		Active:        true,
		WorkingHours:  WeeklyHours{},
		BufferMinutes: 0,
	}
	if in.BufferMinutes != nil {
		p.BufferMinutes = *in.BufferMinutes
	}
	if in.Capacity != nil {
		p.Capacity = *in.Capacity
	}
	if in.MinNoticeMinutes != nil {
		p.MinNoticeMinutes = *in.MinNoticeMinutes
	}
	if in.Active != nil {
		p.Active = *in.Active
	}
	if p.Name == "" {
		return p, apperr.Invalid("name", "name must not be empty")
	}
	if err := CheckText("name", p.Name, MaxNameLength); err != nil {
		return p, err
	}
	if _, err := LoadLocation(p.TimeZone); err != nil {
		return p, err
	}
	if p.SlotMinutes < MinSlotMinutes || p.SlotMinutes > MaxSlotMinutes {
		return p, apperr.Invalid("slotMinutes", "slotMinutes must be between %d and %d", MinSlotMinutes, MaxSlotMinutes)
	}
	if p.BufferMinutes < 0 || p.BufferMinutes > MaxBufferMinutes {
		return p, apperr.Invalid("bufferMinutes", "bufferMinutes must be between 0 and %d", MaxBufferMinutes)
	}
	if p.Capacity < 1 || p.Capacity > MaxCapacity {
		return p, apperr.Invalid("capacity", "capacity must be between 1 and %d", MaxCapacity)
	}
	if p.MinNoticeMinutes < 0 || p.MinNoticeMinutes > MaxMinNoticeMinutes {
		return p, apperr.Invalid("minNoticeMinutes", "minNoticeMinutes must be between 0 and %d", MaxMinNoticeMinutes)
	}
	hours, err := NormalizeHours(in.WorkingHours)
	if err != nil {
		return p, err
	}
	p.WorkingHours = hours
	return p, nil
}

// LoadLocation resolves an IANA time zone name; "Local" and names the
// database does not know are refused, so a provider's zone is always explicit.
func LoadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, apperr.Invalid("timeZone", "timeZone must be an IANA time zone such as Europe/Berlin")
	}
	if err := CheckText("timeZone", name, MaxTimeZoneLength); err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, apperr.Invalid("timeZone", "timeZone %q is not a known IANA time zone", name)
	}
	return loc, nil
}

// Interval is a parsed working-hours interval in minutes from local midnight.
type Interval struct {
	Start, End int
}

// ParseClock reads "HH:MM" (00:00–24:00) as minutes after midnight.
func ParseClock(field, s string) (int, error) {
	bad := apperr.Invalid(field, "%s must be a time like 09:00 or 17:30, got %q", field, s)
	if len(s) != 5 || s[2] != ':' {
		return 0, bad
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, bad
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, bad
	}
	return h*60 + m, nil
}

// NormalizeHours validates a week of intervals (at most MaxWorkingHours,
// well-formed, start before end, no overlap within a day) and returns them
// sorted by weekday and start.
func NormalizeHours(hours []WorkingHours) (WeeklyHours, error) {
	if len(hours) > MaxWorkingHours {
		return nil, apperr.Invalid("workingHours", "workingHours must have at most %d intervals in the week, got %d", MaxWorkingHours, len(hours))
	}
	type parsed struct {
		wh WorkingHours
		iv Interval
	}
	byDay := map[Weekday][]parsed{}
	for i, wh := range hours {
		field := fmt.Sprintf("workingHours[%d]", i)
		if !wh.Weekday.IsValid() {
			return nil, apperr.Invalid(field+".weekday", "%s.weekday must be one of MONDAY…SUNDAY", field)
		}
		start, err := ParseClock(field+".start", wh.Start)
		if err != nil {
			return nil, err
		}
		end, err := ParseClock(field+".end", wh.End)
		if err != nil {
			return nil, err
		}
		if start >= end {
			return nil, apperr.Invalid(field, "%s: start %s must be before end %s", field, wh.Start, wh.End)
		}
		byDay[wh.Weekday] = append(byDay[wh.Weekday], parsed{wh, Interval{start, end}})
	}
	out := WeeklyHours{}
	for _, day := range AllWeekdays {
		ivs := byDay[day]
		sort.Slice(ivs, func(a, b int) bool { return ivs[a].iv.Start < ivs[b].iv.Start })
		for i := range ivs {
			if i > 0 && ivs[i].iv.Start < ivs[i-1].iv.End {
				return nil, apperr.Invalid("workingHours", "workingHours: %s %s–%s overlaps %s–%s",
					day, ivs[i].wh.Start, ivs[i].wh.End, ivs[i-1].wh.Start, ivs[i-1].wh.End)
			}
			out = append(out, ivs[i].wh)
		}
	}
	return out, nil
}

// Intervals answers the parsed intervals of each Go weekday. The hours are
// validated on the way in, so an error here means the row was corrupted.
func (w WeeklyHours) Intervals() (map[time.Weekday][]Interval, error) {
	out := map[time.Weekday][]Interval{}
	for _, wh := range w {
		s, err := ParseClock("start", wh.Start)
		if err != nil {
			return nil, err
		}
		e, err := ParseClock("end", wh.End)
		if err != nil {
			return nil, err
		}
		if !wh.Weekday.IsValid() || s >= e {
			return nil, fmt.Errorf("corrupt working hours %+v", wh)
		}
		out[wh.Weekday.Go()] = append(out[wh.Weekday.Go()], Interval{s, e})
	}
	return out, nil
}

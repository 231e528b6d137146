package models

import (
	"database/sql/driver"
	"fmt"
	"time"

	"timeslots/internal/apperr"
)

// DateLayout is the only accepted spelling of a calendar date.
const DateLayout = "2006-01-02"

// Date is a calendar date (YYYY-MM-DD) without a time zone: a slot's date is
// the local date of its start in the provider's time zone.
type Date string

// ParseDate validates s as a calendar date; field names the argument in the
// error so clients learn which input was wrong. Years run 0001–9999: Go
// parses a year 0000 that PostgreSQL's DATE refuses.
func ParseDate(field, s string) (Date, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil || t.Format(DateLayout) != s || t.Year() < 1 {
		return "", apperr.Invalid(field, "%s must be a date like 2025-09-09", field)
	}
	return Date(s), nil
}

// ParseInstant validates s as an RFC 3339 instant (any offset) and answers
// it in UTC; field names the argument in the error. Its UTC date keeps to
// the years ParseDate takes, 0001–9999: Go parses a year 0000 (and, with
// an offset, reaches year 10000) that PostgreSQL's timestamptz and the
// RFC 3339 answers cannot hold.
func ParseInstant(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if t = t.UTC(); err != nil || t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, apperr.Invalid(field, "%s must be an RFC 3339 time such as 2025-09-09T09:00:00Z, in the years 0001 to 9999", field)
	}
	return t, nil
}

// DateOf answers the calendar date of t as seen in t's location.
func DateOf(t time.Time) Date { return Date(t.Format(DateLayout)) }

// Time answers midnight UTC of the date, for calendar arithmetic.
func (d Date) Time() time.Time {
	t, _ := time.Parse(DateLayout, string(d))
	return t
}

// AddDays answers the date n days later (earlier when n < 0).
func (d Date) AddDays(n int) Date { return DateOf(d.Time().AddDate(0, 0, n)) }

// String implements fmt.Stringer.
func (d Date) String() string { return string(d) }

// Value stores the date as its YYYY-MM-DD text, which both PostgreSQL's DATE
// and SQLite's TEXT columns compare correctly.
func (d Date) Value() (driver.Value, error) { return string(d), nil }

// Scan reads a DATE column (PostgreSQL hands back a time.Time, SQLite text).
func (d *Date) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*d = Date(v.Format(DateLayout))
	case string:
		*d = Date(trimDate(v))
	case []byte:
		*d = Date(trimDate(string(v)))
	case nil:
		*d = ""
	default:
		return fmt.Errorf("models.Date: cannot scan %T", src)
	}
	return nil
}

func trimDate(s string) string {
	if len(s) > len(DateLayout) {
		return s[:len(DateLayout)]
	}
	return s
}

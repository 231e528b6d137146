// Package schedule reads the schedules of the maintenance jobs
// (GENERATE_SCHEDULE, CLEANUP_SCHEDULE): a 5-field cron expression in UTC
// or "@every <duration>". It is pure time arithmetic over robfig/cron's
// parser, the parser gocron runs the jobs with, so the configuration can
// validate a schedule without depending on the scheduler.
package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a validated schedule: a 5-field cron expression (UTC) or
// "@every <Go duration>".
type Schedule struct {
	spec  string
	every time.Duration // > 0 for "@every d"
	cron  cron.Schedule // the parsed expression otherwise
}

// MinEvery is the shortest "@every" interval: shorter ones would make the
// scheduled tick ambiguous between replicas' clocks.
const MinEvery = time.Second

// Parse checks spec the way gocron checks a cron job's expression (robfig's
// standard parser in UTC, and at least one instant to come), so a schedule
// accepted at start-up is one the scheduler can run.
func Parse(spec string) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	if rest, ok := strings.CutPrefix(spec, "@every"); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil || d < MinEvery {
			return Schedule{}, fmt.Errorf("%q is not a valid \"@every <duration>\" of at least %s", spec, MinEvery)
		}
		return Schedule{spec: spec, every: d}, nil
	}
	if spec == "" {
		return Schedule{}, fmt.Errorf("empty schedule")
	}
	withZone := spec
	if !strings.HasPrefix(spec, "TZ=") && !strings.HasPrefix(spec, "CRON_TZ=") {
		withZone = "CRON_TZ=UTC " + spec
	}
	parsed, err := cron.ParseStandard(withZone)
	if err != nil || parsed.Next(time.Now()).IsZero() {
		return Schedule{}, fmt.Errorf("%q is not a 5-field cron expression or \"@every <duration>\"", spec)
	}
	return Schedule{spec: spec, cron: parsed}, nil
}

// MustParse is Parse for literals known to be valid.
func MustParse(spec string) Schedule {
	s, err := Parse(spec)
	if err != nil {
		panic(err)
	}
	return s
}

// String answers the schedule as written.
func (s Schedule) String() string { return s.spec }

// IsZero reports whether s was never parsed.
func (s Schedule) IsZero() bool { return s.spec == "" }

// Every answers the interval of an "@every" schedule, 0 for a cron
// expression.
func (s Schedule) Every() time.Duration { return s.every }

// Tick answers the scheduled instant that a firing at t belongs to (the
// latest scheduled instant at or before t). Every replica firing for the
// same scheduled instant computes the same tick; "@every d" jobs start on
// multiples of d, so the multiple is their tick.
func (s Schedule) Tick(t time.Time) time.Time { return s.Previous(t) }

// Next answers the first scheduled instant after t (the zero time if there
// is none).
func (s Schedule) Next(t time.Time) time.Time {
	t = t.UTC()
	if s.every > 0 {
		return t.Truncate(s.every).Add(s.every)
	}
	if s.cron == nil {
		return time.Time{}
	}
	return s.cron.Next(t).UTC()
}

// Previous answers the latest scheduled instant at or before t (the zero
// time if there is none within a year): the tick a replica that was down
// at that instant catches up on when it starts.
func (s Schedule) Previous(t time.Time) time.Time {
	t = t.UTC()
	if s.every > 0 {
		return t.Truncate(s.every)
	}
	if s.cron == nil {
		return time.Time{}
	}
	// Look back in widening windows, so a frequent schedule takes few
	// steps and a rare one is still found.
	for _, back := range []time.Duration{time.Hour, 25 * time.Hour, 8 * 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour} {
		var last time.Time
		for next := s.cron.Next(t.Add(-back)); !next.IsZero() && !next.After(t); next = s.cron.Next(next) {
			last = next
		}
		if !last.IsZero() {
			return last.UTC()
		}
	}
	return time.Time{}
}

package jobs

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/robfig/cron/v3"
)

// Schedule is a validated GENERATE_SCHEDULE or CLEANUP_SCHEDULE: a 5-field
// cron expression (UTC) or "@every <Go duration>".
type Schedule struct {
	spec  string
	every time.Duration // > 0 for "@every d"
	cron  cron.Schedule // the parsed expression otherwise
}

// minEvery is the shortest "@every" interval: shorter ones would make the
// scheduled tick ambiguous between replicas' clocks.
const minEvery = time.Second

// ParseSchedule checks spec with the scheduler's own cron parser, so a
// schedule accepted at start-up is one the scheduler can run.
func ParseSchedule(spec string) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	if rest, ok := strings.CutPrefix(spec, "@every"); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil || d < minEvery {
			return Schedule{}, fmt.Errorf("%q is not a valid \"@every <duration>\" of at least %s", spec, minEvery)
		}
		return Schedule{spec: spec, every: d}, nil
	}
	if spec == "" {
		return Schedule{}, fmt.Errorf("empty schedule")
	}
	if err := gocron.NewDefaultCron(false).IsValid(spec, time.UTC, time.Now()); err != nil {
		return Schedule{}, fmt.Errorf("%q is not a 5-field cron expression or \"@every <duration>\"", spec)
	}
	// The same parser gocron uses, in the scheduler's zone (UTC), kept to
	// find the latest scheduled instant (Previous).
	withZone := spec
	if !strings.HasPrefix(spec, "TZ=") && !strings.HasPrefix(spec, "CRON_TZ=") {
		withZone = "CRON_TZ=UTC " + spec
	}
	parsed, err := cron.ParseStandard(withZone)
	if err != nil {
		return Schedule{}, fmt.Errorf("%q is not a 5-field cron expression or \"@every <duration>\"", spec)
	}
	return Schedule{spec: spec, cron: parsed}, nil
}

// MustParseSchedule is ParseSchedule for literals known to be valid.
func MustParseSchedule(spec string) Schedule {
	s, err := ParseSchedule(spec)
	if err != nil {
		panic(err)
	}
	return s
}

// String answers the schedule as written.
func (s Schedule) String() string { return s.spec }

// IsZero reports whether s was never parsed.
func (s Schedule) IsZero() bool { return s.spec == "" }

// Tick answers the scheduled instant that a firing at t belongs to (the
// latest scheduled instant at or before t). Every replica firing for the
// same scheduled instant computes the same tick; "@every d" jobs start on
// multiples of d (see definition), so the multiple is their tick.
func (s Schedule) Tick(t time.Time) time.Time { return s.Previous(t) }

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

// definition answers the gocron job definition and the options that align
// it: an "@every d" job first fires at the next multiple of d, so replicas
// started at different moments fire for the same ticks.
func (s Schedule) definition(now time.Time) (gocron.JobDefinition, []gocron.JobOption) {
	if s.every > 0 {
		first := now.UTC().Truncate(s.every).Add(s.every)
		return gocron.DurationJob(s.every), []gocron.JobOption{gocron.WithStartAt(gocron.WithStartDateTime(first))}
	}
	return gocron.CronJob(s.spec, false), nil
}

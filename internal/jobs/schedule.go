package jobs

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-co-op/gocron/v2"
)

// Schedule is a validated GENERATE_SCHEDULE or CLEANUP_SCHEDULE: a 5-field
// cron expression (UTC) or "@every <Go duration>".
type Schedule struct {
	spec  string
	every time.Duration // > 0 for "@every d"
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
	return Schedule{spec: spec}, nil
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

// Tick answers the scheduled instant that a firing at t belongs to. Every
// replica firing for the same scheduled instant computes the same tick:
// cron fires at most once a minute, so the minute is the tick; "@every d"
// jobs start on multiples of d (see definition), so the multiple is.
func (s Schedule) Tick(t time.Time) time.Time {
	if s.every > 0 {
		return t.UTC().Truncate(s.every)
	}
	return t.UTC().Truncate(time.Minute)
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

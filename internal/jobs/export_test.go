package jobs

import (
	"context"
	"time"
)

// SetReading makes CatchUp call f as it reads the past runs, just before
// the query: a delay in the read.
func SetReading(s *Scheduler, f func()) { s.reading = f }

// SetBeforeRun makes every claimed run call f, with the run's context,
// before the job itself runs.
func SetBeforeRun(s *Scheduler, f func(ctx context.Context, job string, tick time.Time)) {
	s.beforeRun = f
}

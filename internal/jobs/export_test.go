package jobs

import "time"

// SetReading makes CatchUp call f as it reads the past runs, just before
// the query: a delay in the read.
func SetReading(s *Scheduler, f func()) { s.reading = f }

// SetBeforeRun makes every claimed run call f before the job itself runs.
func SetBeforeRun(s *Scheduler, f func(job string, tick time.Time)) { s.beforeRun = f }

package jobs

import (
	"context"
	"time"
)

// Standing is where a job stands, read from job_runs so that every
// replica answers alike: the tick of its latest successful run, by any
// replica, and the tick it owes next, the first scheduled one after that.
// A job whose Due tick is long past has missed runs or failed them.
type Standing struct {
	Job         string
	LastSuccess time.Time
	Due         time.Time
}

// Standings answers the standing of each job that has succeeded at least
// once; a job that never has is left out.
func (m Maintenance) Standings(ctx context.Context) ([]Standing, error) {
	var out []Standing
	for _, j := range m.Plan.jobs() {
		last, err := m.Slots.LastSucceededJobTick(ctx, j.name)
		if err != nil {
			return nil, err
		}
		if last.IsZero() {
			continue
		}
		out = append(out, Standing{Job: j.name, LastSuccess: last, Due: j.sched.Next(last)})
	}
	return out, nil
}

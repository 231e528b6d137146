package models

import "time"

// JobOutcome is how a scheduled job's run ended.
type JobOutcome string

// The outcomes of a job run as stored.
const (
	JobRunning   JobOutcome = "running"
	JobSucceeded JobOutcome = "succeeded"
	JobFailed    JobOutcome = "failed"
	// JobInterrupted is a run that stopped before its end: its process
	// stopped it on shutdown, or died and its lease lapsed. Another
	// attempt redoes the tick.
	JobInterrupted JobOutcome = "interrupted"
)

// JobRun records one attempt at a scheduled maintenance job's tick.
// (Job, Tick, Attempt) is unique: the row doubles as the claim that lets
// exactly one replica run an attempt, and while it runs it is a lease
// that its runner renews until LeaseUntil.
type JobRun struct {
	ID         int64      `gorm:"primaryKey" json:"-"`
	Job        string     `json:"job"`
	Tick       time.Time  `json:"tick"`
	Attempt    int        `json:"attempt"`
	Instance   string     `json:"instance"`
	StartedAt  time.Time  `json:"startedAt"`
	LeaseUntil time.Time  `json:"leaseUntil"`
	FinishedAt *time.Time `json:"finishedAt"`
	Outcome    JobOutcome `json:"outcome"`
	Details    string     `json:"details,omitempty"`
	Error      string     `json:"error,omitempty"`
}

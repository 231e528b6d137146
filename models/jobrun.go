package models

import "time"

// JobOutcome is how a scheduled job's run ended.
type JobOutcome string

// The outcomes of a job run as stored.
const (
	JobRunning   JobOutcome = "running"
	JobSucceeded JobOutcome = "succeeded"
	JobFailed    JobOutcome = "failed"
)

// JobRun records one run of a scheduled maintenance job. (Job, Tick) is
// unique: the row doubles as the claim that lets exactly one replica run a
// scheduled tick.
type JobRun struct {
	ID         int64      `gorm:"primaryKey" json:"-"`
	Job        string     `json:"job"`
	Tick       time.Time  `json:"tick"`
	Instance   string     `json:"instance"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt"`
	Outcome    JobOutcome `json:"outcome"`
	Details    string     `json:"details,omitempty"`
	Error      string     `json:"error,omitempty"`
}
